using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace FileCache;

/// <summary>
/// The CPU features that a code generator may use, as a stable bit set (the bit numbers are part
/// of the key encoding and never change; new features get new bits).
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
        // Arm64: bits 32..63.
        Set(32, AdvSimd.IsSupported);
        Set(33, Crc32.IsSupported);
        Set(34, Dp.IsSupported);
        Set(35, Rdm.IsSupported);
        Set(36, System.Runtime.Intrinsics.Arm.Aes.IsSupported);
        Set(37, System.Runtime.Intrinsics.Arm.Sha256.IsSupported);
        return bits;
    }

    /// <summary>The process architecture's name as encoded in keys (for example <c>X64</c>, <c>Arm64</c>).</summary>
    public static string Architecture { get; } = RuntimeInformation.ProcessArchitecture.ToString();
}
