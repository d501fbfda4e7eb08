using FileCache.Internal;

namespace FileCache.Distributed;

// How an entry is laid out in the store: a head value holding the entry's 64-byte frame trailer, and
// the payload in 1 MiB chunk values named by the key and the trailer's content id. A read fetches
// the head, then every chunk at once (the store's client pipelines them) and digests each chunk as
// it lands, so checking the entry overlaps the transfer instead of following it. Chunk names carry
// the content id, so a reader never mixes two writes: a chunk of another write is another value.
internal sealed partial class DistributedCodeCache
{
    /// <summary>What a read found in the store: a head and, when every check passed, the payload.</summary>
    private readonly record struct Fetched(byte[] Head, FrameStatus Status, long Length, byte[]? Payload);

    /// <summary>The store key of a cache key's head value: the prefix, the key's 64 hex characters and <c>:head</c>.</summary>
    /// <param name="key">The cache key.</param>
    /// <returns>The store key.</returns>
    public string GetStoreKey(CacheKey key) => _options.KeyPrefix + key.ToString() + ":head";

    /// <summary>The store key of one chunk of the payload that a head names.</summary>
    /// <param name="key">The cache key.</param>
    /// <param name="head">The head value (its content id names the chunks).</param>
    /// <param name="index">The chunk's index, from 0.</param>
    /// <returns>The store key.</returns>
    public string GetChunkKey(CacheKey key, ReadOnlySpan<byte> head, int index) => $"{_options.KeyPrefix}{key}:{EntryFrame.ContentId(head):x16}:{index}";

    /// <summary>Reads and checks an entry: <see langword="null"/> when the store has no head for it.</summary>
    private async Task<Fetched?> FetchAsync(CacheKey key, string headKey, CancellationToken cancellationToken)
    {
        byte[]? head = await ReadValueAsync(headKey, EntryFrame.TrailerSize, cancellationToken).ConfigureAwait(false);
        if (head is null)
        {
            return null;
        }

        if (head.Length != EntryFrame.TrailerSize)
        {
            return new Fetched(head, head.Length < EntryFrame.TrailerSize ? FrameStatus.TooShort : FrameStatus.NotAnEntry, 0, null);
        }

        long claimed = EntryFrame.ClaimedLength(head);
        var status = EntryFrame.ReadTrailer(claimed + EntryFrame.TrailerSize, head, _authenticationKey, out long length);
        if (status != FrameStatus.Valid || length > _options.MaxEntrySize)
        {
            // Nothing is fetched, or allocated, for a head that claims more than MaxEntrySize.
            return new Fetched(head, status == FrameStatus.Valid ? FrameStatus.TooLarge : status, claimed, null);
        }

        var checker = new EntryFrame.ChunkChecker(key, head, length);
        var payload = GC.AllocateUninitializedArray<byte>((int)length);
        var reads = new Task<FrameStatus>[checker.Count];
        for (int i = 0; i < reads.Length; i++)
        {
            reads[i] = ReadChunkAsync(GetChunkKey(key, head, i), i, payload, checker, cancellationToken);
        }

        foreach (var read in await Task.WhenAll(reads).ConfigureAwait(false))
        {
            if (read != FrameStatus.Valid)
            {
                return new Fetched(head, read, length, null);
            }
        }

        status = checker.Finish(head, _authenticationKey);
        for (int i = 0; status == FrameStatus.BadTag && i < _additionalKeys.Length; i++)
        {
            status = checker.Finish(head, _additionalKeys[i]);
        }

        return new Fetched(head, status, length, status == FrameStatus.Valid ? payload : null);
    }

    private async Task<FrameStatus> ReadChunkAsync(string chunkKey, int index, byte[] payload, EntryFrame.ChunkChecker checker, CancellationToken cancellationToken)
    {
        int offset = index * EntryFrame.ChunkSize;
        int expected = Math.Min(EntryFrame.ChunkSize, payload.Length - offset);

        // Forced to the thread pool: the chunk is copied and digested there, never on the store
        // client's socket reader, so the next chunks keep arriving meanwhile.
        byte[]? chunk = await ReadValueAsync(chunkKey, expected, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        if (chunk is null)
        {
            return FrameStatus.MissingChunk;
        }

        if (chunk.Length != expected)
        {
            return FrameStatus.LengthMismatch;
        }

        checker.Digest(index, chunk);
        chunk.CopyTo(payload, offset);
        return FrameStatus.Valid;
    }

    /// <summary>
    /// Reads one value. With <see cref="DistributedCodeCacheOptions.BoundReadsBeforeAllocation"/> and a
    /// store that has the buffer API, into a writer bounded by <paramref name="expected"/>: a longer
    /// value stops the read before this process allocates for it (the store's client has received it
    /// whole) and comes back one byte longer than expected. Otherwise through the byte[] API, which
    /// measured faster.
    /// </summary>
    private async Task<byte[]?> ReadValueAsync(string storeKey, int expected, CancellationToken cancellationToken)
    {
        if (_bufferStore is null || !_options.BoundReadsBeforeAllocation)
        {
            return await _store.GetAsync(storeKey, cancellationToken).ConfigureAwait(false);
        }

        var writer = new BoundedBufferWriter(expected);
        try
        {
            return await _bufferStore.TryGetAsync(storeKey, writer, cancellationToken).ConfigureAwait(false) ? writer.ToArray() : null;
        }
        catch (BoundedBufferWriter.TooLargeException)
        {
            return new byte[expected + 1]; // only its length is looked at: it is rejected as the wrong length
        }
    }

    /// <summary>Writes the chunks, then the head (a reader that finds the head finds its chunks), then removes the chunks of a head it replaced.</summary>
    private async Task StoreAsync(CacheKey key, string headKey, byte[] payload, byte[] trailer, CancellationToken cancellationToken)
    {
        byte[]? previous = await ReadValueAsync(headKey, EntryFrame.TrailerSize, cancellationToken).ConfigureAwait(false);
        var writes = new Task[EntryFrame.ChunkCount(payload.Length)];
        for (int i = 0; i < writes.Length; i++)
        {
            int offset = i * EntryFrame.ChunkSize;
            writes[i] = WriteValueAsync(GetChunkKey(key, trailer, i), payload, offset, Math.Min(EntryFrame.ChunkSize, payload.Length - offset), cancellationToken);
        }

        await Task.WhenAll(writes).ConfigureAwait(false);
        await WriteValueAsync(headKey, trailer, 0, trailer.Length, cancellationToken).ConfigureAwait(false);
        if (previous is { Length: EntryFrame.TrailerSize } && EntryFrame.ContentId(previous) != EntryFrame.ContentId(trailer))
        {
            await RemoveChunksAsync(key, previous, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task WriteValueAsync(string storeKey, byte[] bytes, int offset, int length, CancellationToken cancellationToken)
    {
        if (_bufferStore is not null)
        {
            // The buffer API takes a slice of the payload as it is: no copy per chunk.
            return _bufferStore.SetAsync(storeKey, new System.Buffers.ReadOnlySequence<byte>(bytes, offset, length), _entryOptions, cancellationToken).AsTask();
        }

        return _store.SetAsync(storeKey, offset == 0 && length == bytes.Length ? bytes : bytes.AsSpan(offset, length).ToArray(), _entryOptions, cancellationToken);
    }

    /// <summary>
    /// Removes a head and the chunks it names (when it is well formed and within
    /// <see cref="DistributedCodeCacheOptions.MaxEntrySize"/>); reads the head first when not given it.
    /// </summary>
    private async Task RemoveEntryAsync(CacheKey key, string headKey, byte[]? head, CancellationToken cancellationToken)
    {
        head ??= await ReadValueAsync(headKey, EntryFrame.TrailerSize, cancellationToken).ConfigureAwait(false);
        await _store.RemoveAsync(headKey, cancellationToken).ConfigureAwait(false);
        if (head is { Length: EntryFrame.TrailerSize })
        {
            await RemoveChunksAsync(key, head, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task RemoveChunksAsync(CacheKey key, byte[] head, CancellationToken cancellationToken)
    {
        long claimed = EntryFrame.ClaimedLength(head);
        if (claimed > _options.MaxEntrySize)
        {
            return Task.CompletedTask; // a forged head must not make this node send billions of removes
        }

        var removes = new Task[EntryFrame.ChunkCount(claimed)];
        for (int i = 0; i < removes.Length; i++)
        {
            removes[i] = _store.RemoveAsync(GetChunkKey(key, head, i), cancellationToken);
        }

        return Task.WhenAll(removes);
    }
}
