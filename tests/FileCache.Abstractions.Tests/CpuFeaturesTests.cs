using System.Runtime.InteropServices;

namespace FileCache.Abstractions.Tests;

/// <summary>The CPU feature bits agree with what the kernel reports in /proc/cpuinfo.</summary>
public sealed class CpuFeaturesTests
{
    [SkippableFact]
    public void TheBitsCraneliftAlsoUses_MatchTheKernelsFlags()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo"), "Compared against Linux's /proc/cpuinfo.");
        var cpuinfo = File.ReadAllText("/proc/cpuinfo");
        var flags = cpuinfo.Split('\n').First(l => l.StartsWith("flags", StringComparison.Ordinal) || l.StartsWith("Features", StringComparison.Ordinal))
            .Split(':')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        bool Bit(int n) => (CpuFeatures.Current & (1UL << n)) != 0;
        if (RuntimeInformation.ProcessArchitecture == Architecture.X64)
        {
            Assert.Equal(flags.Contains("cx16"), Bit(17));
            Assert.Equal(flags.Contains("avx512vl"), Bit(15));
            Assert.Equal(flags.Contains("avx512_bitalg"), Bit(16));
            Assert.Equal(flags.Contains("avx2"), Bit(6)); // an old bit, unchanged
        }
        else if (RuntimeInformation.ProcessArchitecture == Architecture.Arm64)
        {
            Assert.Equal(flags.Contains("atomics"), Bit(38));
            Assert.Equal(flags.Contains("paca") || flags.Contains("pacg"), Bit(39));
            Assert.Equal(flags.Contains("fphp"), Bit(40));
        }
    }

    [SkippableFact]
    public void EveryX64Bit_MatchesTheKernelsFlags_SoJitAndNativeAotProcessesAgree()
    {
        // The bits come from CPUID, not from .NET's IsSupported (which under NativeAOT describes the
        // compile target): /proc/cpuinfo is the machine's own account, the same for every process.
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo") && RuntimeInformation.ProcessArchitecture == Architecture.X64, "Compared against Linux's /proc/cpuinfo on x64.");
        var flags = File.ReadAllText("/proc/cpuinfo").Split('\n').First(l => l.StartsWith("flags", StringComparison.Ordinal))
            .Split(':')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        string[] names = ["pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "avx2", "fma", "bmi1", "bmi2", "abm", "avx512f", "avx512bw", "avx512dq", "avx512vbmi", "avx512vl", "avx512_bitalg", "cx16"];
        for (int bit = 0; bit < names.Length; bit++)
        {
            bool expected = flags.Contains(names[bit]);
            if (names[bit] == "abm" && !expected)
            {
                // Some kernels do not list abm although CPUID reports LZCNT (Linux 6.18 under Firecracker,
                // checked with gcc's __get_cpuid on leaf 0x80000001). Cranelift detects lzcnt with CPUID,
                // so the key follows CPUID; the oracle for this bit is then the JIT's own CPUID reading
                // (in a JIT process IsSupported describes the machine; only NativeAOT's describes its target).
                expected = System.Runtime.Intrinsics.X86.Lzcnt.IsSupported;
            }

            Assert.True(expected == ((CpuFeatures.Current & (1UL << bit)) != 0), $"bit {bit} ({names[bit]})");
        }
    }
}
