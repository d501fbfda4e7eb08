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
public static class CpuFeatures
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

        // x86/x64: bits 0..31.
        Set(0, Sse3.IsSupported);
        Set(1, Ssse3.IsSupported);
        Set(2, Sse41.IsSupported);
        Set(3, Sse42.IsSupported);
        Set(4, Popcnt.IsSupported);
        Set(5, Avx.IsSupported);
        Set(6, Avx2.IsSupported);
        Set(7, Fma.IsSupported);
        Set(8, Bmi1.IsSupported);
        Set(9, Bmi2.IsSupported);
        Set(10, Lzcnt.IsSupported);
        Set(11, Avx512F.IsSupported);
        Set(12, Avx512BW.IsSupported);
        Set(13, Avx512DQ.IsSupported);
        Set(14, Avx512Vbmi.IsSupported);
        // What Cranelift's host detection also uses (cranelift-native): AVX-512 VL and BITALG, CMPXCHG16B.
        Set(15, Avx512F.VL.IsSupported);
        Set(16, Avx512F.IsSupported && CpuIdBit(7, 0, ecx: true, 12)); // AVX512_BITALG; usable only where the OS enabled AVX-512 (Avx512F)
        Set(17, CpuIdBit(1, 0, ecx: true, 13)); // CMPXCHG16B
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

    private static bool CpuIdBit(int leaf, int subleaf, bool ecx, int bit)
    {
        if (!X86Base.IsSupported)
        {
            return false;
        }

        var (_, _, c, d) = X86Base.CpuId(leaf, subleaf);
        return ((ecx ? c : d) & (1 << bit)) != 0;
    }

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
