using System.Globalization;

namespace FileCache.RolloutSimulation;

internal enum Tier
{
    /// <summary>Disk + Azure Blob: record, lease, ranged body reads (what FileCache.AzureBlob does).</summary>
    Blob,

    /// <summary>Disk + one Redis shard holding the whole value; the fleet lock polled every 100 ms.</summary>
    Redis,

    /// <summary>Blob behind regional relays: hosts read bodies from their relay, each relay reads the origin once (records still come from the origin).</summary>
    BlobWithRelays,
}

/// <summary>The store's published limits and the library's policies (defaults: a 30 MB esbuild-sized module).</summary>
internal sealed record Parameters
{
    public double ModuleBytes { get; init; } = 30e6;
    public double CompileSeconds { get; init; } = 7;
    public double RolloutWindowSeconds { get; init; } = 60; // hosts restart uniformly over this window
    public double RequestLatencySeconds { get; init; } = 0.020;
    public double HostBytesPerSecond { get; init; } = 125e6; // 1 Gbit/s per host
    public double AccountEgressBytesPerSecond { get; init; } = 6.25e9; // 50 Gbit/s account egress
    public double BlobReadsPerSecond { get; init; } = 3_000; // Azure's target for one block blob
    public double RangeBytes { get; init; } = 4 * 1024 * 1024; // RangeSize
    public int RangeConcurrency { get; init; } = 4; // MaxConcurrency
    public double RedisShardBytesPerSecond { get; init; } = 1.25e9; // one shard behind a 10 Gbit/s NIC
    public double RedisLockPollSeconds { get; init; } = 0.1;
    public int Relays { get; init; } = 10;
    public double ReadPricePer10k { get; init; } = 0.0044; // Azure hot tier, read operations
    public double WritePricePer10k { get; init; } = 0.055;
    public double InternetPricePerGB { get; init; } = 0.087; // Azure egress, first 10 TB

    public int RangesPerBody => (int)Math.Ceiling(ModuleBytes / RangeBytes);

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"Module {ModuleBytes / 1e6:F0} MB, compile {CompileSeconds:F0} s, rolling restart over {RolloutWindowSeconds:F0} s; request latency {RequestLatencySeconds * 1000:F0} ms; " +
        $"host {HostBytesPerSecond * 8 / 1e9:F0} Gbit/s; account egress {AccountEgressBytesPerSecond * 8 / 1e9:F0} Gbit/s; one blob {BlobReadsPerSecond:N0} reads/s; " +
        $"ranges {RangeBytes / 1048576:F0} MiB x {RangeConcurrency} at once ({RangesPerBody} per body); Redis shard {RedisShardBytesPerSecond * 8 / 1e9:F0} Gbit/s, lock polled every {RedisLockPollSeconds * 1000:F0} ms; " +
        $"{Relays} relays; prices: reads ${ReadPricePer10k}/10k, writes ${WritePricePer10k}/10k, internet egress ${InternetPricePerGB}/GB.");
}

internal sealed class Result(Parameters parameters, int hosts, Tier tier)
{
    public int Hosts { get; } = hosts;
    public Tier Tier { get; } = tier;
    public int Compiles { get; set; }
    public long Gets { get; set; }
    public long LockRequests { get; set; }
    public long Puts { get; set; }
    public double BytesOut { get; set; }
    public double AllWarmSeconds { get; set; }
    public double MedianWarmSeconds { get; set; }
    public double PeakBodyReadsPerSecond { get; set; }
    public List<(double Time, double WarmFraction)> Warm { get; } = [];
    public List<(double Time, double BytesPerSecond)> Egress { get; } = [];

    private double Operations => ((Gets + LockRequests) / 10_000.0 * parameters.ReadPricePer10k) + (Puts / 10_000.0 * parameters.WritePricePer10k);

    public string Row() => string.Create(CultureInfo.InvariantCulture,
        $"| {Hosts:N0} | {Label} | {Compiles} | {Gets:N0} | {LockRequests:N0} | {Puts} | {BytesOut / 1e9:F1} GB | {AllWarmSeconds:F1} s | {MedianWarmSeconds:F1} s | {(Tier == Tier.Redis ? "-" : PeakBodyReadsPerSecond.ToString("N0", CultureInfo.InvariantCulture))} | ${Operations:F4} | ${Operations + (BytesOut / 1e9 * parameters.InternetPricePerGB):F2} |");

    public string Label => Tier switch
    {
        Tier.Blob => "Azure Blob",
        Tier.Redis => "Redis (one shard)",
        _ => $"Azure Blob + {parameters.Relays} relays",
    };
}

/// <summary>One rollout, stepped every 10 ms.</summary>
internal sealed class Simulation(Parameters p, int hosts, Tier tier, int seed)
{
    private const double Step = 0.010;

    private enum State { NotStarted, LookingUp, Waiting, Compiling, Downloading, Warm }

    private sealed class Host
    {
        public State State;
        public double Start;
        public double Until; // when the current request, pause or compile ends
        public double Pause = 0.2;
        public bool Rechecked; // asked the record again after taking the lock
        public double Remaining; // bytes left to download
        public int RangesLeft;
        public int InFlight;
        public double WarmAt;
        public int Relay;
    }

    public Result Run()
    {
        var random = new Random(seed);
        var result = new Result(p, hosts, tier);
        var fleet = Enumerable.Range(0, hosts).Select(i => new Host { Start = random.NextDouble() * p.RolloutWindowSeconds, Relay = i % p.Relays }).ToArray();
        foreach (var h in fleet)
        {
            h.Until = h.Start;
        }

        double entryAt = double.PositiveInfinity; // when the compiled entry is in the store
        double lockFreeAt = double.NegativeInfinity; // the fleet lock: held until the compiler's entry is stored
        bool locked = false;
        var relayWarmAt = new double[p.Relays];
        Array.Fill(relayWarmAt, double.PositiveInfinity);
        var relayFiller = new Host?[p.Relays]; // the one host whose download fills its relay from the origin
        double readTokens = 0;
        int warm = 0;
        double t = 0;
        double bucketBytes = 0, bucketStart = 0;
        int bucketReads = 0;
        while (warm < hosts && t < 3_600)
        {
            t += Step;
            readTokens = Math.Min(p.BlobReadsPerSecond * Step * 10, readTokens + (p.BlobReadsPerSecond * Step));
            if (locked && t >= lockFreeAt)
            {
                locked = false;
            }

            int downloading = fleet.Count(h => h.State == State.Downloading);
            double hostRate = tier == Tier.Redis
                ? Math.Min(p.HostBytesPerSecond, p.RedisShardBytesPerSecond / Math.Max(1, downloading))
                : Math.Min(p.HostBytesPerSecond, p.AccountEgressBytesPerSecond / Math.Max(1, downloading));
            double stepBytes = 0;
            int stepReads = 0;
            foreach (var h in fleet)
            {
                if (h.State == State.Warm || t < h.Until)
                {
                    if (h.State == State.Downloading)
                    {
                        Download(h);
                    }

                    continue;
                }

                switch (h.State)
                {
                    case State.NotStarted:
                        h.State = State.LookingUp; // a fresh host misses its disk and asks the store for the record
                        result.Gets++;
                        h.Until = t + p.RequestLatencySeconds;
                        break;
                    case State.LookingUp:
                        if (t >= entryAt)
                        {
                            BeginDownload(h);
                        }
                        else
                        {
                            TryLock(h);
                        }

                        break;
                    case State.Waiting:
                        TryLock(h);
                        break;
                    case State.Compiling:
                        result.Puts += 2; // body and record
                        entryAt = t + (p.ModuleBytes / p.HostBytesPerSecond);
                        lockFreeAt = entryAt;
                        result.Compiles++;
                        h.State = State.Warm; // its own compile is live: warm now, the upload behind it
                        h.WarmAt = t;
                        warm++;
                        break;
                    case State.Downloading:
                        Download(h);
                        break;
                }
            }

            if (t - bucketStart >= 1 - 1e-9)
            {
                result.Egress.Add((bucketStart + 1, bucketBytes));
                result.PeakBodyReadsPerSecond = Math.Max(result.PeakBodyReadsPerSecond, bucketReads);
                bucketBytes = 0;
                bucketReads = 0;
                bucketStart = t;
                result.Warm.Add((t, warm / (double)hosts));
            }

            bucketBytes += stepBytes;
            bucketReads += stepReads;

            void TryLock(Host h)
            {
                if (t >= entryAt && h.State == State.Waiting && !h.Rechecked)
                {
                    // The lock is free again: take it, ask the record once more, find the entry.
                    result.LockRequests++;
                    result.Gets++;
                    h.Rechecked = true;
                    h.Until = t + (2 * p.RequestLatencySeconds);
                    h.State = State.LookingUp;
                    return;
                }

                result.LockRequests++;
                if (!locked && double.IsPositiveInfinity(entryAt))
                {
                    locked = true;
                    lockFreeAt = double.PositiveInfinity;
                    h.State = State.Compiling;
                    h.Until = t + p.RequestLatencySeconds + p.CompileSeconds;
                    return;
                }

                h.State = State.Waiting;
                if (tier == Tier.Redis)
                {
                    h.Until = t + p.RedisLockPollSeconds;
                }
                else
                {
                    h.Until = t + (h.Pause * (0.5 + random.NextDouble())); // jittered, growing, as the blob tier waits
                    h.Pause = Math.Min(h.Pause * 1.5, 2);
                }
            }

            void BeginDownload(Host h)
            {
                h.State = State.Downloading;
                h.Remaining = p.ModuleBytes;
                h.RangesLeft = tier == Tier.Redis ? 1 : p.RangesPerBody;
                h.InFlight = 0;
            }

            void Download(Host h)
            {
                bool origin = tier != Tier.BlobWithRelays || double.IsPositiveInfinity(relayWarmAt[h.Relay]);
                if (tier == Tier.BlobWithRelays && origin)
                {
                    relayFiller[h.Relay] ??= h;
                    if (relayFiller[h.Relay] != h)
                    {
                        return; // its relay is filling: the hosts behind it wait, the origin is read once per relay
                    }
                }

                // Start ranges up to the concurrency; from the origin blob each needs a read of the body's budget.
                while (h.RangesLeft > 0 && h.InFlight < (tier == Tier.Redis ? 1 : p.RangeConcurrency))
                {
                    if (tier != Tier.Redis && origin)
                    {
                        if (readTokens < 1)
                        {
                            break; // the blob's read limit: throttled (a real store answers 503 and the client backs off)
                        }

                        readTokens--;
                        stepReads++;
                    }

                    if (origin)
                    {
                        result.Gets++; // a relay's reads are not the store's
                    }

                    h.RangesLeft--;
                    h.InFlight++;
                }

                if (h.InFlight == 0)
                {
                    return;
                }

                double bytes = Math.Min(h.Remaining, hostRate * Step);
                h.Remaining -= bytes;
                if (origin)
                {
                    stepBytes += bytes;
                    result.BytesOut += bytes;
                }

                double done = p.ModuleBytes - h.Remaining;
                int finishedRanges = tier == Tier.Redis ? (h.Remaining <= 0 ? 1 : 0) : (int)Math.Floor(done / p.RangeBytes);
                int started = (tier == Tier.Redis ? 1 : p.RangesPerBody) - h.RangesLeft;
                h.InFlight = Math.Max(0, started - finishedRanges);
                if (h.Remaining <= 0)
                {
                    h.State = State.Warm;
                    h.WarmAt = t;
                    warm++;
                    if (tier == Tier.BlobWithRelays && double.IsPositiveInfinity(relayWarmAt[h.Relay]))
                    {
                        relayWarmAt[h.Relay] = t; // the first host of a relay filled it: the rest read from the relay
                    }
                }
            }
        }

        result.AllWarmSeconds = t;
        var waits = fleet.Select(h => h.WarmAt - h.Start).Order().ToArray();
        result.MedianWarmSeconds = waits[waits.Length / 2];
        result.Warm.Add((t, 1));
        return result;
    }
}
