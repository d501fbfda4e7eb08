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

    internal VerifiedBodyStream OpenBody(CacheKey key, IndexRecord record, CancellationToken cancellationToken)
    {
        var body = _container.GetBlobClient(BodyName(record.BodyName));
        if (_options.MaxConcurrency == 1)
        {
            return OpenStreamedBody(key, body, record, cancellationToken);
        }

        int rejected = 0;
        return new VerifiedBodyStream(record.Length, _options.RangeSize, _options.MaxConcurrency, (range, ct) => ReadRangeAsync(range, ct), cancellationToken);

        async Task<BodyRange> ReadRangeAsync(long range, CancellationToken ct)
        {
            long offset = range * _options.RangeSize;
            int length = (int)Math.Min(_options.RangeSize, record.Length - offset);
            var buffer = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                // Through the circuit and the timeout, as every store call; a bad range is not a store failure.
                int read = await _pipeline.ExecuteAsync(static async (state, token) => await state.Self.DownloadRangeAsync(state.Body, state.Offset, state.Buffer, state.Length, token).ConfigureAwait(false),
                    (Self: this, Body: body, Offset: offset, Buffer: buffer, Length: length), ct).ConfigureAwait(false);
                string? problem = read < 0 ? "BodyMissing" : read < length ? "Truncated" : read > length ? "WrongLength" : null;
                for (long chunk = offset / IndexRecord.ChunkSize; problem is null && chunk * IndexRecord.ChunkSize < offset + length; chunk++)
                {
                    long start = chunk * IndexRecord.ChunkSize;
                    int size = (int)Math.Min(IndexRecord.ChunkSize, record.Length - start);
                    if (!record.ChunkMatches((int)chunk, buffer.AsSpan((int)(start - offset), size)))
                    {
                        problem = "ChecksumMismatch";
                    }
                }

                if (problem is not null)
                {
                    if (Interlocked.Exchange(ref rejected, 1) == 0)
                    {
                        Reject(key, problem); // once per read, however many ranges fail
                    }

                    throw new BodyNotVerifiedException(problem, $"The Azure Blob body of key {key} did not verify at bytes {offset}..{offset + length} ({problem}); nothing of it was returned.");
                }

                return new BodyRange(buffer, length);
            }
            catch
            {
                ArrayPool<byte>.Shared.Return(buffer);
                throw;
            }
        }
    }

    /// <summary>
    /// Reads one range into <paramref name="buffer"/>: the number of bytes the store returned (one
    /// more than asked when it returned more), or -1 when the body is gone or shorter.
    /// </summary>
    private async Task<int> DownloadRangeAsync(BlobClient body, long offset, byte[] buffer, int length, CancellationToken cancellationToken)
    {
        _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "get_range"));
        try
        {
            var response = await body.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(offset, length) }, cancellationToken).ConfigureAwait(false);
            using var content = response.Value.Content;
            int read = await content.ReadAtLeastAsync(buffer.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            _bytesDownloaded.Add(read);
            if (read == length && await content.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) > 0)
            {
                read++; // a longer answer than the range asked for
            }

            return read;
        }
        catch (RequestFailedException e) when (e.Status is 404 or 416)
        {
            return -1; // the record names a body that is gone or shorter: a miss
        }
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

    /// <inheritdoc/>
    /// <remarks>Waits for <see cref="AddAsync"/> (the tier's one blocking point).</remarks>
    public void Add(CacheKey key, Stream content) => Completed.WaitForStore(AddAsync(key, content));

    /// <inheritdoc/>
    /// <remarks>
    /// The body is created once under its own name (<c>If-None-Match: *</c>; a conflict means the same
    /// bytes are there). The record is created the same way; when another record is there already, it is
    /// kept if it is this key's and names the same body (racing writers of one compile), and replaced
    /// under <c>If-Match</c> otherwise, so Add replaces as the contract says. A 403 turns writes off
    /// (a reader identity); any other failure is logged and the fleet does not share this entry.
    /// </remarks>
    public async ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (_readOnly)
        {
            throw new ReadOnlyWasmCodeCacheException($"The Azure Blob tier is read-only; key {key} was not added.");
        }

        var payload = await StreamBytes.ReadToEndAsync(content, cancellationToken).ConfigureAwait(false);
        if (payload.Length > _options.MaxEntrySize)
        {
            _metrics.Rejected("TooLarge");
            LogTooLarge(_logger, key, payload.Length, _options.MaxEntrySize);
            return;
        }

        var record = IndexRecord.Create(key, payload, _authenticationKey, out string bodyName);
        try
        {
            await _pipeline.ExecuteAsync(static (state, ct) => state.Self.WriteAsync(state.Key, state.Payload, state.Record, state.BodyName, ct), (Self: this, Key: key, Payload: payload, Record: record, BodyName: bodyName), cancellationToken).ConfigureAwait(false);
            _metrics.Added(payload.Length);
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            _readOnly = true;
            LogWritesRefused(_logger, key, e.ErrorCode);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            OnStoreFailure("add", key, e);
        }
    }

    private async ValueTask WriteAsync(CacheKey key, byte[] payload, byte[] record, string bodyName, CancellationToken cancellationToken)
    {
        await EnsureContainerAsync(cancellationToken).ConfigureAwait(false);
        _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "put_body"));
        var body = _container.GetBlobClient(BodyName(bodyName));
        if (!await WriteBodyAsync(key, body, payload, cancellationToken).ConfigureAwait(false))
        {
            return; // no record for a body the fleet could not verify; writes are off
        }

        var index = _container.GetBlobClient(IndexName(key));
        _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "put_index"));
        if (await CreateOnceAsync(index, record, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        // Another record is there: keep it if it is ours for the same body, else replace that version.
        _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "get_index"));
        var existing = await index.DownloadContentAsync(cancellationToken).ConfigureAwait(false);
        var theirs = IndexRecord.Verify(key, existing.Value.Content.ToMemory().Span, _authenticationKey, long.MaxValue, out _);
        if (theirs is not null && theirs.BodyName == bodyName)
        {
            return;
        }

        _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "put_index"));
        await index.UploadAsync(new BinaryData(record), Upload(new BlobRequestConditions { IfMatch = existing.Value.Details.ETag }), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates the body once. A body already there (another writer's) is read back in part, as is the
    /// first body this process creates: a client or endpoint that stores other bytes than were sent (the
    /// SDK's CRC64 structured messages on an endpoint that keeps their framing as content: Azurite,
    /// measured) would otherwise leave the fleet records whose bodies never verify, forever, since the
    /// name is taken. A body that does not match its name is replaced (under <c>If-Match</c>, so a
    /// concurrent repair is not overwritten); <see langword="false"/> when this writer's own store
    /// alters content (writes turn off).
    /// </summary>
    private async ValueTask<bool> WriteBodyAsync(CacheKey key, BlobClient body, byte[] payload, CancellationToken cancellationToken)
    {
        bool created;
        try
        {
            created = await CreateOnceAsync(body, payload, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            // The SDK's own warning that what was stored may not be what was sent.
            return StoreAltersContent(key, payload.Length, e);
        }

        if (created && _writesChecked)
        {
            return true;
        }

        var (matches, etag) = await BodyMatchesAsync(body, payload, cancellationToken).ConfigureAwait(false);
        if (!matches && !created)
        {
            LogBodyRepaired(_logger, key, body.Name);
            _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "put_body"));
            await body.UploadAsync(new BinaryData(payload), Upload(new BlobRequestConditions { IfMatch = etag }), cancellationToken).ConfigureAwait(false);
            (matches, _) = _writesChecked ? (true, default) : await BodyMatchesAsync(body, payload, cancellationToken).ConfigureAwait(false);
        }

        if (!matches)
        {
            return StoreAltersContent(key, payload.Length, null);
        }

        _writesChecked = true;
        return true;
    }

    /// <summary>Whether the stored body has the payload's length and first chunk (framing or a wrong upload shows there), and its ETag.</summary>
    private async ValueTask<(bool Matches, ETag ETag)> BodyMatchesAsync(BlobClient body, byte[] payload, CancellationToken cancellationToken)
    {
        if (payload.Length == 0)
        {
            return (true, default);
        }

        int length = Math.Min(payload.Length, IndexRecord.ChunkSize);
        _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "get_range"));
        var stored = (await body.DownloadContentAsync(new BlobDownloadOptions { Range = new HttpRange(0, length) }, cancellationToken).ConfigureAwait(false)).Value;
        string? range = stored.Details.ContentRange;
        long storedLength = range is not null && long.TryParse(range.AsSpan(range.LastIndexOf('/') + 1), System.Globalization.CultureInfo.InvariantCulture, out long total) ? total : -1;
        return (storedLength == payload.Length && stored.Content.ToMemory().Span.SequenceEqual(payload.AsSpan(0, length)), stored.Details.ETag);
    }

    private bool StoreAltersContent(CacheKey key, long length, Exception? e)
    {
        _readOnly = true;
        _metrics.Rejected("StoreAltersContent");
        LogStoreAltersContent(_logger, key, length, e);
        return false;
    }

    private async Task EnsureContainerAsync(CancellationToken cancellationToken)
    {
        var ready = _containerReady;
        if (ready is null || ready.IsFaulted || ready.IsCanceled)
        {
            ready = _containerReady = _container.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None); // once per process, retried after a failure
        }

        await ready.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The tag name a blob's generation is written under (<see cref="AzureBlobCodeCacheOptions.Generation"/>).</summary>
    internal const string GenerationTag = "filecache-generation";

    /// <summary>Upload options with a condition and, when a generation is set, its tag.</summary>
    private BlobUploadOptions Upload(BlobRequestConditions conditions) => new()
    {
        Conditions = conditions,
        Tags = _options.Generation is { } generation ? new Dictionary<string, string> { [GenerationTag] = generation } : null,
    };

    /// <summary>Creates a blob only if none is there; <see langword="false"/> when one was (someone else won).</summary>
    private async ValueTask<bool> CreateOnceAsync(BlobClient blob, byte[] content, CancellationToken cancellationToken)
    {
        try
        {
            await blob.UploadAsync(new BinaryData(content), Upload(new BlobRequestConditions { IfNoneMatch = ETag.All }), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    /// <remarks>Waits for <see cref="DeleteAsync"/> (the tier's one blocking point).</remarks>
    public void Delete(CacheKey key) => Completed.WaitForStore(DeleteAsync(key));

    /// <inheritdoc/>
    /// <remarks>Removes the key's record (an operator's or the application's explicit delete); bodies are shared by content and expire by the container's lifecycle rule.</remarks>
    public async ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        if (_readOnly)
        {
            throw new ReadOnlyWasmCodeCacheException($"The Azure Blob tier is read-only; key {key} was not deleted.");
        }

        try
        {
            _requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "delete_index"));
            await _pipeline.ExecuteAsync(static async (state, ct) => await state.Self._container.GetBlobClient(state.Self.IndexName(state.Key)).DeleteIfExistsAsync(cancellationToken: ct).ConfigureAwait(false), (Self: this, Key: key), cancellationToken).ConfigureAwait(false);
            _metrics.Deleted();
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            OnStoreFailure("delete", key, e);
        }
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
