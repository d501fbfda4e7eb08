using System.Buffers;
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
/// A fleet-wide tier over any <see cref="IDistributedCache"/> (Redis, SQL Server, Garnet...), writing
/// through the buffer API of <see cref="IBufferDistributedCache"/> when the store offers it (and reading
/// through it into a bounded writer with <see cref="DistributedCodeCacheOptions.BoundReadsBeforeAllocation"/>). Every value is
/// the payload followed by the same integrity frame as disk entries, with an HMAC-SHA256 tag over
/// the cache key and payload: forged, truncated or foreign values are misses, counted with their
/// reason; damaged ones are removed, ones that fail authentication are left for nodes that may use
/// them (key rotation). <see cref="DistributedCodeCacheOptions.AdditionalVerificationKeys"/> rotates keys.
/// </summary>
/// <remarks>
/// A store that fails or is slow never fails a caller: the operation is logged, counted
/// (<c>filecache.tier_failures</c>) and treated as a miss (or a skipped write); after repeated
/// failures a circuit breaker (Polly) skips the store for <see cref="DistributedCodeCacheOptions.BreakDuration"/>
/// and then tries it again. A value is written with one SET, so a reader never sees a mix of two
/// writes; entries up to <see cref="DistributedCodeCacheOptions.MaxEntrySize"/> need no chunking
/// (Redis takes strings up to 512 MB).
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
                // An oversized value is the value's fault, not the store's: it must not open the circuit.
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not (OperationCanceledException or BoundedBufferWriter.TooLargeException) || e is TimeoutRejectedException),
            })
            .AddTimeout(options.Timeout)
            .Build();
    }

    /// <summary>The store key of a cache key: the prefix and the key's 64 hex characters.</summary>
    /// <param name="key">The cache key.</param>
    /// <returns>The store key.</returns>
    public string GetStoreKey(CacheKey key) => _options.KeyPrefix + key.ToString();

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
        string storeKey = GetStoreKey(key);
        byte[]? value;
        try
        {
            value = await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Self.ReadAsync(state.StoreKey, ct), ct).ConfigureAwait(false), (Self: this, StoreKey: storeKey), cancellationToken).ConfigureAwait(false);
        }
        catch (BoundedBufferWriter.TooLargeException e)
        {
            RejectTooLarge(key, storeKey, e.AtLeast);
            return null;
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            OnStoreFailure("get", key, e);
            _metrics.Miss();
            return null;
        }

        var content = Accept(key, storeKey, value, out bool remove);
        if (remove)
        {
            await RemoveQuietlyAsync(key, storeKey).ConfigureAwait(false);
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
    private MemoryStream? Accept(CacheKey key, string storeKey, byte[]? value, out bool remove)
    {
        remove = false;
        if (value is null)
        {
            _metrics.Miss();
            return null;
        }

        if (value.Length > ValueLimit)
        {
            // A store without the buffer API hands over the whole value; still, an oversized one costs no MAC.
            RejectTooLarge(key, storeKey, value.Length);
            return null;
        }

        var status = EntryFrame.Verify(key, value, _authenticationKey, out long payloadLength);
        for (int i = 0; status == FrameStatus.BadTag && i < _additionalKeys.Length; i++)
        {
            status = EntryFrame.Verify(key, value, _additionalKeys[i], out payloadLength);
        }

        if (status != FrameStatus.Valid)
        {
            remove = status is not (FrameStatus.BadTag or FrameStatus.NotAuthenticated or FrameStatus.UnknownVersion);
            _metrics.Corrupt(status.ToString());
            _metrics.Miss();
            LogRejectedValue(_logger, key, storeKey, status.ToString(), remove ? "removed" : "left in the store");
            return null;
        }

        _metrics.Hit(payloadLength);
        return new MemoryStream(value, 0, (int)payloadLength, writable: false, publiclyVisible: true);
    }

    /// <summary>The largest value accepted: a payload of <see cref="DistributedCodeCacheOptions.MaxEntrySize"/> and its frame.</summary>
    private long ValueLimit => _options.MaxEntrySize + EntryFrame.TrailerSize;

    /// <summary>
    /// Reads a value. With <see cref="DistributedCodeCacheOptions.BoundReadsBeforeAllocation"/> and a
    /// store that has the buffer API, into a writer bounded by <see cref="ValueLimit"/>: an oversized
    /// value stops the read before this process allocates for it (the store's client has received
    /// it whole). Otherwise through the byte[] API, which measured faster.
    /// </summary>
    private async Task<byte[]?> ReadAsync(string storeKey, CancellationToken cancellationToken)
    {
        if (_bufferStore is null || !_options.BoundReadsBeforeAllocation)
        {
            return await _store.GetAsync(storeKey, cancellationToken).ConfigureAwait(false);
        }

        var writer = new BoundedBufferWriter(ValueLimit);
        return await _bufferStore.TryGetAsync(storeKey, writer, cancellationToken).ConfigureAwait(false) ? writer.ToArray() : null;
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
            await RemoveQuietlyAsync(key, storeKey).ConfigureAwait(false); // replace semantics: the old value must not stay
            return;
        }

        try
        {
            await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Self.WriteAsync(state.StoreKey, state.Framed.Payload, state.Framed.Trailer, ct).AsTask(), ct).ConfigureAwait(false), (Self: this, StoreKey: storeKey, Framed: framed), cancellationToken).ConfigureAwait(false);
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
            await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Store.RemoveAsync(state.StoreKey, ct), ct).ConfigureAwait(false), (Store: _store, StoreKey: GetStoreKey(key)), cancellationToken).ConfigureAwait(false);
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

    private static byte[] Join(byte[] payload, byte[] trailer)
    {
        var framed = GC.AllocateUninitializedArray<byte>(payload.Length + trailer.Length);
        payload.CopyTo(framed, 0);
        trailer.CopyTo(framed, payload.Length);
        return framed;
    }

    private async ValueTask WriteAsync(string storeKey, byte[] payload, byte[] trailer, CancellationToken cancellationToken)
    {
        if (_bufferStore is not null)
        {
            // Payload and frame go out as one two-segment sequence: no copy to join them.
            await _bufferStore.SetAsync(storeKey, Sequence(payload, trailer), _entryOptions, cancellationToken).ConfigureAwait(false);
            return;
        }

        await _store.SetAsync(storeKey, Join(payload, trailer), _entryOptions, cancellationToken).ConfigureAwait(false);
    }

    private static ReadOnlySequence<byte> Sequence(byte[] first, byte[] second)
    {
        var head = new Segment(first, 0);
        var tail = new Segment(second, first.Length);
        head.SetNext(tail);
        return new ReadOnlySequence<byte>(head, 0, tail, second.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] bytes, long runningIndex)
        {
            Memory = bytes;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }

    private async ValueTask RemoveQuietlyAsync(CacheKey key, string storeKey)
    {
        try
        {
            await _pipeline.ExecuteAsync(static async (state, ct) => await Abandonable(state.Store.RemoveAsync(state.StoreKey, ct), ct).ConfigureAwait(false), (Store: _store, StoreKey: storeKey), CancellationToken.None).ConfigureAwait(false);
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
