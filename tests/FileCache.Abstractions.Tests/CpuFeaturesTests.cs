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
}
