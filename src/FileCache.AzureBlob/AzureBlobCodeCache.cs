using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using FileCache.Diagnostics;
using FileCache.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace FileCache.AzureBlob;

/// <summary>
/// A fleet tier on Azure Blob Storage. A key names a small authenticated index record
/// (<c>{prefix}index/{key}</c>, <see cref="IndexRecord"/>); the payload is a body named by its own
/// digest (<c>{prefix}body/{name}</c>), written once with <c>If-None-Match: *</c>. A read authenticates
/// the record with the key, then reads the body in parallel ranges and checks every 1 MiB chunk against
/// the record before anything is returned. Whatever the store returns that does not verify is a miss
/// and a metric, never a delete of the shared object; any store failure is a miss, and repeated ones
/// open a circuit that skips the store for <see cref="AzureBlobCodeCacheOptions.BreakDuration"/>.
/// </summary>
internal sealed partial class AzureBlobCodeCache : IWasmCodeCache, IMeteredWasmCodeCache, ISharedWasmCodeCache, ICompileLockSource
{
    private readonly AzureBlobCodeCacheOptions _options;
    private readonly BlobContainerClient _container;
    private readonly byte[] _authenticationKey;
    private readonly WasmCodeCacheMetrics _metrics;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _bytesDownloaded;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _pipeline;
    private readonly CircuitBreakerStateProvider _circuit = new();
    private volatile bool _readOnly;
    private volatile bool _writesChecked;
    private Task? _containerReady;

    WasmCodeCacheMetrics IMeteredWasmCodeCache.Metrics => _metrics;

    public AzureBlobCodeCache(AzureBlobCodeCacheOptions options, IMeterFactory? meterFactory = null, ILogger<AzureBlobCodeCache>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Problems().FirstOrDefault() is { } problem)
        {
            throw new ArgumentException(problem.ErrorMessage, nameof(options));
        }

        _options = options;
        _authenticationKey = options.AuthenticationKey!.ToArray();
        _readOnly = options.ReadOnly;
        _container = options.Container ?? new BlobContainerClient(options.ConnectionString, options.ContainerName, ClientOptions());
        _metrics = new WasmCodeCacheMetrics(meterFactory, "azureblob");
        var meter = WasmCodeCacheMetrics.GetMeter(meterFactory);
        _requests = meter.CreateCounter<long>("filecache.azureblob.requests", "{request}", "Requests sent to Azure Blob Storage, tagged by filecache.operation (get_index, get_range, put_body, put_index, delete_index): what a rollout costs.");
        _bytesDownloaded = meter.CreateCounter<long>("filecache.azureblob.bytes_downloaded", "By", "Body bytes downloaded from Azure Blob Storage.");
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = timeProvider ?? TimeProvider.System }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = 0.5,
                MinimumThroughput = 2,
                // Long enough to see two failed calls even when each ran into the timeout.
                SamplingDuration = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(10).Ticks, 3 * options.Timeout.Ticks)),
                BreakDuration = options.BreakDuration,
                StateProvider = _circuit,
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException || e is TimeoutRejectedException),
            })
            .AddTimeout(options.Timeout)
            .Build();
    }

    /// <summary>
    /// No transfer validation: the SDK's CRC64 structured messages are stored as content by endpoints
    /// that do not speak them (Azurite, measured), and every byte is verified against the record anyway.
    /// </summary>
    internal static BlobClientOptions ClientOptions()
    {
        var options = new BlobClientOptions();
        options.Retry.MaxRetries = 1; // a miss is cheap; the tier's own timeout and circuit bound the rest
        options.TransferValidation.Upload.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        options.TransferValidation.Download.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        return options;
    }

    /// <summary>Whether writes are off: configured, or learned from a 403.</summary>
    public bool IsReadOnly => _readOnly;

    internal string IndexName(CacheKey key) => _options.Prefix + "index/" + key.ToString();

    internal string BodyName(string name) => _options.Prefix + "body/" + name;

    /// <inheritdoc/>
    /// <remarks>The tier is asynchronous inside: this waits for <see cref="GetAsync"/> (the tier's one blocking point).</remarks>
    public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
    {
        content = Completed.WaitForStore(GetAsync(key));
        return content is not null;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The index record is authenticated first; the body is then read as a <see cref="VerifiedBodyStream"/>:
    /// by default one GET read 1 MiB at a time (else parallel ranges), each chunk verified before any
    /// of its bytes is handed out, memory bounded to a window (4 MiB by default; <c>MaxConcurrency ×
    /// RangeSize</c> with ranges). The first window is verified before this returns, so an entry that
    /// fits in it and does not verify is a miss here; in a larger one, a later chunk that does not
    /// verify makes the stream's read throw <see cref="IOException"/> (<c>BodyNotVerifiedException</c>):
    /// a tier set then counts a miss and its disk tier discards the partial temp file.
    /// </remarks>
    public async ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        VerifiedBodyStream? body = null;
        try
        {
            var record = await _pipeline.ExecuteAsync(static (state, ct) => state.Self.ReadRecordAsync(state.Key, ct), (Self: this, Key: key), cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                _metrics.Miss();
                return null;
            }

            body = OpenBody(key, record, cancellationToken);
            await body.VerifyFirstWindowAsync().ConfigureAwait(false);
            _metrics.Hit(record.Length);
            return body;
        }
        catch (BodyNotVerifiedException)
        {
            body?.Dispose(); // counted and logged where it was found
            _metrics.Miss();
            return null;
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            body?.Dispose();
            OnStoreFailure("get", key, e);
            _metrics.Miss();
            return null;
        }
    }

    /// <summary>The index record, authenticated; <see langword="null"/> for a miss (absent or not verified).</summary>
    private async ValueTask<IndexRecord?> ReadRecordAsync(CacheKey key, CancellationToken cancellationToken)
    {
        var (record, problem) = await FetchRecordAsync(key, cancellationToken).ConfigureAwait(false);
        if (record is null && problem is not "Missing")
        {
            Reject(key, problem!);
        }

        return record;
    }

    /// <summary>Downloads and authenticates a key's record; without one, why ("Missing" when there is none).</summary>
    private async ValueTask<(IndexRecord? Record, string? Problem)> FetchRecordAsync(CacheKey key, CancellationToken cancellationToken)
    {
        BinaryData recordBytes;
        try
        {
            _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "get_index"));
            recordBytes = (await _container.GetBlobClient(IndexName(key)).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return (null, "Missing"); // no record (or no container yet): a miss, not a failure
        }

        var record = IndexRecord.Verify(key, recordBytes.ToMemory().Span, _authenticationKey, _options.MaxEntrySize, out string? problem);
        return (record, problem);
    }

    /// <summary>The container this tier reads and writes.</summary>
    internal BlobContainerClient Container => _container;

    /// <summary>
    /// An entry checked as <see cref="GetAsync"/> does, but with the reason kept (for the tool): its
    /// record with the key, then every range of its body, copied to <paramref name="payload"/> when
    /// given. No circuit: the operator asked for this call.
    /// </summary>
    internal async Task<string?> CheckAsync(CacheKey key, Stream? payload, CancellationToken cancellationToken)
    {
        var (record, problem) = await FetchRecordAsync(key, cancellationToken).ConfigureAwait(false);
        if (record is null)
        {
            return problem;
        }

        try
        {
            using var body = OpenBody(key, record, cancellationToken);
            await body.CopyToAsync(payload ?? Stream.Null, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (BodyNotVerifiedException e)
        {
            return e.Reason;
        }
    }

    /// <summary>A value that does not verify: a miss and a metric, never a delete of the shared object (repair is an operator's action).</summary>
    private void Reject(CacheKey key, string reason)
    {
        _metrics.Corrupt(reason);
        LogRejected(_logger, key, reason);
    }

    /// <summary>Anything but the caller's own cancellation is the store's failure.</summary>
    private static bool IsStoreFailure(Exception e, CancellationToken callerToken)
        => !(e is OperationCanceledException && callerToken.IsCancellationRequested) && e is not OutOfMemoryException;

    private void OnStoreFailure(string operation, CacheKey key, Exception e)
    {
        if (e is BrokenCircuitException)
        {
            LogSkipped(_logger, operation, key);
            return;
        }

        _metrics.TierFailure(operation);
        LogStoreFailed(_logger, operation, key, e);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Azure Blob Storage failed to {Operation} key {Key}; continuing without it")]
    private static partial void LogStoreFailed(ILogger logger, string operation, CacheKey key, Exception exception);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Azure Blob Storage is skipped after repeated failures; did not {Operation} key {Key}")]
    private static partial void LogSkipped(ILogger logger, string operation, CacheKey key);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "The Azure Blob entry of key {Key} did not verify ({Reason}): a miss; the shared object is left for an operator")]
    private static partial void LogRejected(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Did not send key {Key} to Azure Blob Storage: {Length} bytes exceed MaxEntrySize {MaxEntrySize}")]
    private static partial void LogTooLarge(ILogger logger, CacheKey key, long length, long maxEntrySize);

    [LoggerMessage(EventId = 6, Level = LogLevel.Error, Message = "Azure Blob Storage did not store the {Length}-byte body of key {Key} as sent: the client or endpoint alters content (for example CRC64 transfer validation on an endpoint that does not support it). Writes are off; no record was written")]
    private static partial void LogStoreAltersContent(ILogger logger, CacheKey key, long length, Exception? exception);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "The Azure Blob body {Body} (key {Key}) did not match its name; it was replaced with the verified bytes")]
    private static partial void LogBodyRepaired(ILogger logger, CacheKey key, string body);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Azure Blob Storage refused a write of key {Key} ({ErrorCode}): this host's identity can only read; writes are off from now on, reads go on")]
    private static partial void LogWritesRefused(ILogger logger, CacheKey key, string? errorCode);
}
