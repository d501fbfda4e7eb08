using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using FileCache.Diagnostics;
using FileCache.Internal;

namespace FileCache.AzureBlob;

/// <summary>Adds and deletes: the body created once under its own name, read back, then the record.</summary>
internal sealed partial class AzureBlobCodeCache
{
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
}
