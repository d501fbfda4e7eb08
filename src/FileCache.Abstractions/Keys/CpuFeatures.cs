using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace FileCache;

/// <summary>
/// The CPU features that a code generator may use, as a stable bit set (the bit numbers are part
/// of the key encoding and never change; new features get new bits). It covers every flag that
/// Cranelift's native host detection uses on x64 and arm64 (arm64's LSE, pointer authentication
/// and FP16 are read from Linux's AT_HWCAP; on macOS they stay 0).
/// </summary>
internal static class CpuFeatures
{
    /// <summary>The features of the CPU this process runs on.</summary>
    public static ulong Current { get; } = Detect();

    private static ulong Detect()
    {
        ulong bits = 0;
        void Set(int bit, bool on)
        {
            if (on)
            {
                bits |= 1UL << bit;
            }
        }

        // x86/x64: bits 0..31, read from CPUID itself, never from .NET's Sse3.IsSupported and the like:
        // those describe the instruction sets .NET compiled this process for, and under NativeAOT
        // (compiled for a baseline) they differ from a JIT process on the same machine, which would
        // give the same code two keys. Cranelift detects the CPU, so the key does too.
        var (_, _, c1, _) = CpuId(1, 0);
        var (_, b7, c7, _) = CpuId(7, 0);
        var (_, _, cx1, _) = CpuId(unchecked((int)0x80000001), 0);
        bool avx = Has(c1, 28) && Has(c1, 27); // AVX and OSXSAVE: the OS saves the AVX state
        Set(0, Has(c1, 0)); // SSE3
        Set(1, Has(c1, 9)); // SSSE3
        Set(2, Has(c1, 19)); // SSE4.1
        Set(3, Has(c1, 20)); // SSE4.2
        Set(4, Has(c1, 23)); // POPCNT
        Set(5, avx);
        Set(6, avx && Has(b7, 5)); // AVX2
        Set(7, avx && Has(c1, 12)); // FMA
        Set(8, Has(b7, 3)); // BMI1
        Set(9, Has(b7, 8)); // BMI2
        Set(10, Has(cx1, 5)); // LZCNT (ABM)
        bool avx512 = avx && Has(b7, 16);
        Set(11, avx512); // AVX512F
        Set(12, avx512 && Has(b7, 30)); // AVX512BW
        Set(13, avx512 && Has(b7, 17)); // AVX512DQ
        Set(14, avx512 && Has(c7, 1)); // AVX512VBMI
        // What Cranelift's host detection also uses (cranelift-native): AVX-512 VL and BITALG, CMPXCHG16B.
        Set(15, avx512 && Has(b7, 31)); // AVX512VL
        Set(16, avx512 && Has(c7, 12)); // AVX512_BITALG
        Set(17, Has(c1, 13)); // CMPXCHG16B
        // Arm64: bits 32..63.
        Set(32, AdvSimd.IsSupported);
        Set(33, Crc32.IsSupported);
        Set(34, Dp.IsSupported);
        Set(35, Rdm.IsSupported);
        Set(36, System.Runtime.Intrinsics.Arm.Aes.IsSupported);
        Set(37, System.Runtime.Intrinsics.Arm.Sha256.IsSupported);
        // What Cranelift's host detection also uses on arm64: LSE atomics, pointer authentication,
        // half-precision floats. .NET has no intrinsic class for them; Linux reports them in AT_HWCAP.
        ulong hwcap = ArmHardwareCapabilities();
        Set(38, (hwcap & (1UL << 8)) != 0); // HWCAP_ATOMICS (LSE)
        Set(39, (hwcap & ((1UL << 30) | (1UL << 31))) != 0); // HWCAP_PACA | HWCAP_PACG
        Set(40, (hwcap & (1UL << 9)) != 0); // HWCAP_FPHP
        return bits;
    }

    /// <summary>CPUID, or zeros where the leaf does not exist (or the CPU is not x86).</summary>
    private static (int Eax, int Ebx, int Ecx, int Edx) CpuId(int leaf, int subleaf)
    {
        if (!X86Base.IsSupported)
        {
            return default;
        }

        int highest = X86Base.CpuId(leaf & unchecked((int)0x80000000), 0).Eax; // leaf 0 or 0x80000000: the highest leaf of its range
        return (uint)leaf <= (uint)highest ? X86Base.CpuId(leaf, subleaf) : default;
    }

    private static bool Has(int register, int bit) => (register & (1 << bit)) != 0;

    /// <summary>AT_HWCAP of an arm64 Linux process, read from /proc/self/auxv (0 elsewhere or when unreadable).</summary>
    private static ulong ArmHardwareCapabilities()
    {
        if (RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.Arm64 || !OperatingSystem.IsLinux())
        {
            return 0;
        }

        try
        {
            // Pairs of 64-bit (type, value); AT_HWCAP is type 16.
            var auxv = File.ReadAllBytes("/proc/self/auxv");
            for (int i = 0; i + 16 <= auxv.Length; i += 16)
            {
                if (BitConverter.ToUInt64(auxv, i) == 16)
                {
                    return BitConverter.ToUInt64(auxv, i + 8);
                }
            }
        }
        catch (IOException)
        {
            // No /proc: the features stay unknown (0), which only costs cache hits, never correctness of keys between equal hosts.
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0;
    }

    /// <summary>The process architecture's name as encoded in keys (for example <c>X64</c>, <c>Arm64</c>).</summary>
    public static string Architecture { get; } = RuntimeInformation.ProcessArchitecture.ToString();
}
