using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using FileCache.Diagnostics;
using FileCache.Internal;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace FileCache.Distributed;

/// <summary>
/// A fleet-wide tier over any <see cref="IDistributedCache"/> (Redis, SQL Server, Garnet...). An entry
/// is a head value (the same 64-byte integrity frame as disk entries, with an HMAC-SHA256 tag over the
/// cache key and the payload's chunk digests) and the payload in 1 MiB chunk values, read all at once
/// and digested as they arrive (DistributedCodeCache.Values.cs). Forged, truncated or foreign values
/// are misses, counted with their reason; damaged ones are removed, ones that fail authentication are
/// left for nodes that may use them (key rotation). <see cref="DistributedCodeCacheOptions.AdditionalVerificationKeys"/> rotates keys.
/// </summary>
/// <remarks>
/// A store that fails or is slow never fails a caller: the operation is logged, counted
/// (<c>filecache.tier_failures</c>) and treated as a miss (or a skipped write); after repeated
/// failures a circuit breaker (Polly) skips the store for <see cref="DistributedCodeCacheOptions.BreakDuration"/>
/// and then tries it again. Chunks are written before their head and named by the head's content id,
/// so a reader never sees a mix of two writes; a chunk lost to eviction makes the entry a miss until
/// the next Add of the key writes it again.
/// </remarks>
internal sealed partial class DistributedCodeCache : IWasmCodeCache, IMeteredWasmCodeCache, ISharedWasmCodeCache, ICompileLockSource, Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
{
    private readonly IDistributedCache _store;
    private readonly IBufferDistributedCache? _bufferStore;
    private readonly DistributedCodeCacheOptions _options;
    private readonly byte[]? _authenticationKey; // signs, and verifies first
    private readonly byte[][] _additionalKeys; // verify only (key rotation)
    private readonly DistributedCacheEntryOptions _entryOptions;
    private readonly ResiliencePipeline _pipeline;
    private readonly WasmCodeCacheMetrics _metrics;

    WasmCodeCacheMetrics IMeteredWasmCodeCache.Metrics => _metrics;
    private readonly ILogger _logger;
    private readonly CircuitBreakerStateProvider _circuit = new();

    /// <summary>Creates the tier over a store.</summary>
    /// <param name="store">The distributed cache.</param>
    /// <param name="options">The options; an authentication key is required unless explicitly waived.</param>
    /// <param name="meterFactory">Creates the meter; optional.</param>
    /// <param name="logger">Receives store failures and rejected entries; optional.</param>
    /// <param name="timeProvider">The clock of the circuit breaker and timeouts; optional.</param>
    /// <exception cref="ArgumentException">No authentication key and no explicit opt-out, or a key shorter than 16 bytes.</exception>
    public DistributedCodeCache(IDistributedCache store, DistributedCodeCacheOptions options, IMeterFactory? meterFactory = null, ILogger<DistributedCodeCache>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems().ToArray();
        if (problems.Length > 0)
        {
            throw new ArgumentException(problems[0].ErrorMessage, nameof(options));
        }

        _store = store;
        _bufferStore = store as IBufferDistributedCache; // capability light-up, as HybridCache does
        _options = options;
        _authenticationKey = options.AuthenticationKey?.ToArray();
        _additionalKeys = [.. options.AdditionalVerificationKeys.Select(k => k.ToArray())];
        _entryOptions = new DistributedCacheEntryOptions { SlidingExpiration = options.SlidingExpiration, AbsoluteExpirationRelativeToNow = options.AbsoluteExpiration };
        _metrics = new WasmCodeCacheMetrics(meterFactory, "distributed");
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = timeProvider ?? TimeProvider.System }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = 0.5,
                MinimumThroughput = 2,
                SamplingDuration = TimeSpan.FromSeconds(10),
                BreakDuration = options.BreakDuration,
                StateProvider = _circuit,
                // An oversized value never reaches here (ReadValueAsync turns it into a wrong-length value).
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException || e is TimeoutRejectedException),
            })
            .AddTimeout(options.Timeout)
            .Build();
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The tier is asynchronous inside: this waits for <see cref="GetAsync"/> at the tier's one blocking
    /// point (<c>Completed.WaitForStore</c>). The wait is a task wait, which the runtime's thread pool sees and
    /// compensates for by adding threads; a store client's own synchronous API (StackExchange.Redis's)
    /// blocks where the pool cannot see it, and many such callers stall every completion. A host that
    /// blocks many pool threads on the store sets its pool's minimum itself (README, "Synchronous callers");
    /// the library never changes it.
    /// </remarks>
    public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
    {
        content = Completed.WaitForStore(GetAsync(key));
        return content is not null;
    }

    /// <inheritdoc/>
    public async ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        string headKey = GetStoreKey(key);
        Fetched? fetched;
        try
        {
            fetched = await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Self.FetchAsync(state.Key, state.HeadKey, ct), ct).ConfigureAwait(false), (Self: this, Key: key, HeadKey: headKey), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            OnStoreFailure("get", key, e);
            _metrics.Miss();
            return null;
        }

        var content = Accept(key, headKey, fetched, out bool remove);
        if (remove)
        {
            await RemoveQuietlyAsync(key, headKey, fetched!.Value.Head).ConfigureAwait(false);
        }

        return content;
    }

    /// <summary>
    /// Verifies a value read from the store. A bad one is a miss, counted with its reason and logged.
    /// A damaged value (truncated, not an entry, wrong checksum) is garbage to every node and is
    /// removed; one that fails authentication or has a newer format is left in the store: a node
    /// with another key (during a rotation) or a newer version may use it, and this node's own Add
    /// replaces it. One misconfigured node never wipes the fleet's entries.
    /// </summary>
    private MemoryStream? Accept(CacheKey key, string storeKey, Fetched? fetched, out bool remove)
    {
        remove = false;
        if (fetched is not { } value)
        {
            _metrics.Miss();
            return null;
        }

        if (value.Status == FrameStatus.TooLarge)
        {
            // Rejected from the head alone: no chunk was fetched and nothing allocated for it.
            RejectTooLarge(key, storeKey, value.Length);
            return null;
        }

        if (value.Status != FrameStatus.Valid)
        {
            // A missing chunk is eviction, not damage: the next Add of the key writes it again.
            remove = value.Status is not (FrameStatus.BadTag or FrameStatus.NotAuthenticated or FrameStatus.UnknownVersion or FrameStatus.MissingChunk);
            if (value.Status != FrameStatus.MissingChunk)
            {
                _metrics.Corrupt(value.Status.ToString());
            }

            _metrics.Miss();
            LogRejectedValue(_logger, key, storeKey, value.Status.ToString(), remove ? "removed" : "left in the store");
            return null;
        }

        _metrics.Hit(value.Length);
        return new MemoryStream(value.Payload!, 0, (int)value.Length, writable: false, publiclyVisible: true);
    }

    private void RejectTooLarge(CacheKey key, string storeKey, long atLeast)
    {
        _metrics.Rejected("TooLarge");
        _metrics.Miss();
        LogRejectedValue(_logger, key, storeKey, $"TooLarge: at least {atLeast} bytes, MaxEntrySize {_options.MaxEntrySize}", "left in the store");
    }

    /// <inheritdoc/>
    /// <remarks>Waits for <see cref="AddAsync"/> at the tier's one blocking point (see <see cref="TryGet"/>).</remarks>
    public void Add(CacheKey key, Stream content) => Completed.WaitForStore(AddAsync(key, content));

    /// <inheritdoc/>
    public async ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        cancellationToken.ThrowIfCancellationRequested();
        string storeKey = GetStoreKey(key);
        if (Frame(key, await StreamBytes.ReadToEndAsync(content, cancellationToken).ConfigureAwait(false)) is not { } framed)
        {
            await RemoveQuietlyAsync(key, storeKey, head: null).ConfigureAwait(false); // replace semantics: the old value must not stay
            return;
        }

        try
        {
            await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Self.StoreAsync(state.Key, state.StoreKey, state.Framed.Payload, state.Framed.Trailer, ct), ct).ConfigureAwait(false), (Self: this, Key: key, StoreKey: storeKey, Framed: framed), cancellationToken).ConfigureAwait(false);
            _metrics.Added(framed.Payload.Length);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            OnStoreFailure("add", key, e); // the fleet just does not share this one
        }
    }

    /// <summary>The payload and its frame, or <see langword="null"/> (counted, logged) when it is too large to send.</summary>
    private (byte[] Payload, byte[] Trailer)? Frame(CacheKey key, byte[] payload)
    {
        if (payload.Length > _options.MaxEntrySize)
        {
            _metrics.Rejected("TooLarge");
            LogTooLarge(_logger, key, payload.Length, _options.MaxEntrySize);
            return null;
        }

        var trailer = new byte[EntryFrame.TrailerSize];
        using var frame = new EntryFrame.Writer(key, _authenticationKey);
        frame.Append(payload);
        frame.WriteTrailer(trailer);
        return (payload, trailer);
    }

    /// <inheritdoc/>
    /// <remarks>Waits for <see cref="DeleteAsync"/> at the tier's one blocking point (see <see cref="TryGet"/>).</remarks>
    public void Delete(CacheKey key) => Completed.WaitForStore(DeleteAsync(key));

    /// <inheritdoc/>
    public async ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Self.RemoveEntryAsync(state.Key, state.Self.GetStoreKey(state.Key), null, ct), ct).ConfigureAwait(false), (Self: this, Key: key), cancellationToken).ConfigureAwait(false);
            _metrics.Deleted();
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            // A value left behind is still verified on every read.
            OnStoreFailure("delete", key, e);
        }
    }

    /// <summary>
    /// Stops waiting when the token fires even if the store ignores it (StackExchange.Redis does:
    /// its operations end only at its own timeout), so Polly's timeout really bounds a call. The
    /// abandoned operation finishes in the background; its failure is observed and dropped.
    /// </summary>
    private static Task Abandonable(Task operation, CancellationToken cancellationToken)
    {
        _ = operation.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return operation.WaitAsync(cancellationToken);
    }

    private static Task<T> Abandonable<T>(Task<T> operation, CancellationToken cancellationToken)
    {
        _ = operation.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return operation.WaitAsync(cancellationToken);
    }

    private async ValueTask RemoveQuietlyAsync(CacheKey key, string headKey, byte[]? head)
    {
        try
        {
            await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Self.RemoveEntryAsync(state.Key, state.HeadKey, state.Head, ct), ct).ConfigureAwait(false), (Self: this, Key: key, HeadKey: headKey, Head: head), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, CancellationToken.None))
        {
            OnStoreFailure("delete", key, e);
        }
    }

    /// <summary>Anything but the caller's own cancellation is the store's failure.</summary>
    private static bool IsStoreFailure(Exception e, CancellationToken callerToken)
        => !(e is OperationCanceledException && callerToken.IsCancellationRequested) && e is not (OutOfMemoryException or StackOverflowException);

    private void OnStoreFailure(string operation, CacheKey key, Exception e)
    {
        _metrics.TierFailure(operation);
        if (e is BrokenCircuitException)
        {
            LogSkipped(_logger, operation, key);
        }
        else
        {
            LogStoreFailed(_logger, operation, key, e);
        }
    }
}
