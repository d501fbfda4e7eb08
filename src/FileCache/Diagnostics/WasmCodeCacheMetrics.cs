using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace FileCache.Diagnostics;

/// <summary>
/// Records the library's metrics. Backends create one per instance with their backend name;
/// all instances share the instruments of the <see cref="MeterName"/> meter.
/// </summary>
/// <remarks>
/// Instruments (counters, each tagged with <see cref="BackendTag"/>): <c>filecache.hits</c>,
/// <c>filecache.misses</c>, <c>filecache.adds</c>, <c>filecache.deletes</c>,
/// <c>filecache.evictions</c>, <c>filecache.corrupt_entries</c>, <c>filecache.bytes_read</c>,
/// <c>filecache.bytes_written</c>, <c>filecache.rejected_entries</c> and
/// <c>filecache.tier_failures</c> (also tagged with <see cref="OperationTag"/>).
/// </remarks>
internal sealed class WasmCodeCacheMetrics
{
    /// <summary>The name of the library's meter.</summary>
    public const string MeterName = "FileCache";

    /// <summary>The tag naming the backend that recorded a measurement (memory, disk, tiered, ...).</summary>
    public const string BackendTag = "filecache.backend";

    /// <summary>The tag naming the operation (get, add, delete) of a tier failure.</summary>
    public const string OperationTag = "filecache.operation";

    // Without a meter factory (no DI), every instance records into one process-wide meter.
    private static readonly Meter SharedMeter = new(MeterName);
    private static readonly ConditionalWeakTable<Meter, Instruments> InstrumentsByMeter = new();

    private readonly Instruments _instruments;
    private readonly KeyValuePair<string, object?> _backend;

    /// <summary>
    /// The library's one meter: from <paramref name="meterFactory"/> when there is one (DI), else the
    /// process-wide instance every FileCache component shares, so exporters see one <c>FileCache</c> meter.
    /// </summary>
    /// <param name="meterFactory">The DI meter factory, or <see langword="null"/>.</param>
    /// <returns>The meter.</returns>
    public static Meter GetMeter(IMeterFactory? meterFactory) => meterFactory?.Create(new MeterOptions(MeterName)) ?? SharedMeter;

    /// <summary>Creates the metrics of one backend instance.</summary>
    /// <param name="meterFactory">The DI meter factory, or <see langword="null"/> for the process-wide meter.</param>
    /// <param name="backend">The backend's name, recorded in <see cref="BackendTag"/>.</param>
    public WasmCodeCacheMetrics(IMeterFactory? meterFactory, string backend)
    {
        ArgumentException.ThrowIfNullOrEmpty(backend);
        var meter = GetMeter(meterFactory);
        _instruments = InstrumentsByMeter.GetValue(meter, static m => new Instruments(m));
        _backend = new(BackendTag, backend);
        Backend = backend;
    }

    /// <summary>The backend name recorded with every measurement.</summary>
    public string Backend { get; }

    /// <summary>The tag naming the tier of a tier set that answered a lookup (memory, disk, distributed, ...).</summary>
    public const string TierTag = "filecache.tier";

    /// <summary>
    /// Whether this backend counts its own hits and misses. A tier set turns it off for its tiers and
    /// counts each lookup once itself, tagged with the tier that answered (<see cref="TierTag"/>), so a
    /// cold load through three tiers is one miss, not four.
    /// </summary>
    public bool CountsLookups { get; set; } = true;

    /// <summary>Records a hit.</summary>
    /// <param name="bytes">The entry's size in bytes, when known; otherwise 0.</param>
    public void Hit(long bytes)
    {
        if (!CountsLookups)
        {
            return;
        }

        _instruments.Hits.Add(1, _backend);
        if (bytes > 0)
        {
            _instruments.BytesRead.Add(bytes, _backend);
        }
    }

    /// <summary>Records a hit of a tier set, naming the tier that answered.</summary>
    /// <param name="bytes">The entry's size in bytes, when known; otherwise 0.</param>
    /// <param name="tier">The answering tier's backend name.</param>
    public void Hit(long bytes, string tier)
    {
        var tags = new TagList { _backend, new(TierTag, tier) };
        _instruments.Hits.Add(1, tags);
        if (bytes > 0)
        {
            _instruments.BytesRead.Add(bytes, tags);
        }
    }

    /// <summary>Records a miss.</summary>
    public void Miss()
    {
        if (CountsLookups)
        {
            _instruments.Misses.Add(1, _backend);
        }
    }

    /// <summary>Records a completed add.</summary>
    /// <param name="bytes">The number of payload bytes stored.</param>
    public void Added(long bytes)
    {
        _instruments.Adds.Add(1, _backend);
        _instruments.BytesWritten.Add(bytes, _backend);
    }

    /// <summary>Records a delete request.</summary>
    public void Deleted() => _instruments.Deletes.Add(1, _backend);

    /// <summary>Records evicted entries.</summary>
    /// <param name="count">How many entries were evicted.</param>
    public void Evicted(long count = 1) => _instruments.Evictions.Add(count, _backend);

    /// <summary>The tag naming why an entry was rejected (for example <c>ChecksumMismatch</c>, <c>ForeignOwner</c>).</summary>
    public const string ReasonTag = "filecache.reason";

    /// <summary>Records an entry that failed an integrity or trust check and was treated as a miss.</summary>
    /// <param name="reason">Why, recorded in <see cref="ReasonTag"/>; <see langword="null"/> for no tag.</param>
    public void Corrupt(string? reason = null)
    {
        if (reason is null)
        {
            _instruments.CorruptEntries.Add(1, _backend);
            return;
        }

        _instruments.CorruptEntries.Add(1, _backend, new KeyValuePair<string, object?>(ReasonTag, reason));
    }

    /// <summary>Records an entry that a backend declined to store or to read (for example larger than its limit).</summary>
    /// <param name="reason">Why, recorded in <see cref="ReasonTag"/>; <see langword="null"/> for no tag.</param>
    public void Rejected(string? reason = null)
    {
        if (reason is null)
        {
            _instruments.RejectedEntries.Add(1, _backend);
            return;
        }

        _instruments.RejectedEntries.Add(1, _backend, new KeyValuePair<string, object?>(ReasonTag, reason));
    }

    /// <summary>Records a failure of one tier of a tiered cache, or of a backend's remote store.</summary>
    /// <param name="operation">The operation that failed: get, add or delete.</param>
    public void TierFailure(string operation)
    {
        var tags = new TagList { _backend, new(OperationTag, operation) };
        _instruments.TierFailures.Add(1, tags);
    }

    private sealed class Instruments(Meter meter)
    {
        public readonly Counter<long> Hits = meter.CreateCounter<long>("filecache.hits", "{entry}", "Lookups that returned an entry.");
        public readonly Counter<long> Misses = meter.CreateCounter<long>("filecache.misses", "{entry}", "Lookups that found no usable entry.");
        public readonly Counter<long> Adds = meter.CreateCounter<long>("filecache.adds", "{entry}", "Entries stored.");
        public readonly Counter<long> Deletes = meter.CreateCounter<long>("filecache.deletes", "{entry}", "Delete requests.");
        public readonly Counter<long> Evictions = meter.CreateCounter<long>("filecache.evictions", "{entry}", "Entries removed to respect a size or age limit.");
        public readonly Counter<long> CorruptEntries = meter.CreateCounter<long>("filecache.corrupt_entries", "{entry}", "Entries that failed an integrity or trust check and were treated as misses.");
        public readonly Counter<long> BytesRead = meter.CreateCounter<long>("filecache.bytes_read", "By", "Payload bytes returned by hits.");
        public readonly Counter<long> BytesWritten = meter.CreateCounter<long>("filecache.bytes_written", "By", "Payload bytes stored.");
        public readonly Counter<long> RejectedEntries = meter.CreateCounter<long>("filecache.rejected_entries", "{entry}", "Entries a backend declined to store, for example above its size limit.");
        public readonly Counter<long> TierFailures = meter.CreateCounter<long>("filecache.tier_failures", "{failure}", "Operations that failed on one tier of a tiered cache.");
    }
}
