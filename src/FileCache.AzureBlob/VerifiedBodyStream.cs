using System.Buffers;

namespace FileCache.AzureBlob;

/// <summary>
/// A body read as a stream of verified ranges: up to <c>window</c> ranges are downloaded at once, each
/// checked chunk by chunk against the authenticated record before a byte of it is handed out, so
/// memory stays at <c>window × range size</c> whatever the body's length (16 MiB by default), and a
/// disk tier filled from this stream commits only after the last range verified.
/// </summary>
/// <remarks>
/// A range that does not verify (or is missing) makes <see cref="Read(byte[], int, int)"/> throw
/// <see cref="BodyNotVerifiedException"/> (an <see cref="IOException"/>); a store failure throws the store's exception. Either way
/// nothing unverified was returned before, and a consumer that commits only at the end (the disk
/// tier's temp file) keeps nothing. <see cref="VerifyFirstWindowAsync"/> runs before the stream is
/// handed out, so an entry that fits in one window is checked in full before the lookup returns.
/// </remarks>
internal sealed class VerifiedBodyStream : Stream
{
    private readonly Func<long, CancellationToken, Task<BodyRange>> _readRange;
    private readonly long _length;
    private readonly long _ranges;
    private readonly int _window;
    private readonly CancellationTokenSource _stop;
    private readonly Queue<Task<BodyRange>> _pending = new();
    private long _next;
    private BodyRange _current;
    private int _consumed;
    private long _position;
    private bool _disposed;

    private readonly Action? _onDispose;

    public VerifiedBodyStream(long length, int rangeSize, int window, Func<long, CancellationToken, Task<BodyRange>> readRange, CancellationToken cancellationToken, Action? onDispose = null)
    {
        _onDispose = onDispose;
        _length = length;
        _ranges = (length + rangeSize - 1) / rangeSize;
        _window = window;
        _readRange = readRange;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    /// <summary>Starts the first window and waits until every range in it verified.</summary>
    public async Task VerifyFirstWindowAsync()
    {
        StartMore();
        foreach (var range in _pending)
        {
            await range.ConfigureAwait(false);
        }
    }

    private void StartMore()
    {
        while (_pending.Count < _window && _next < _ranges)
        {
            _pending.Enqueue(_readRange(_next++, _stop.Token));
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (buffer.IsEmpty)
        {
            return 0;
        }

        if (_consumed == _current.Length)
        {
            if (!await NextRangeAsync(cancellationToken).ConfigureAwait(false))
            {
                return 0;
            }
        }

        int n = Math.Min(buffer.Length, _current.Length - _consumed);
        _current.Buffer.AsSpan(_consumed, n).CopyTo(buffer.Span);
        _consumed += n;
        _position += n;
        return n;
    }

    private async ValueTask<bool> NextRangeAsync(CancellationToken cancellationToken)
    {
        ReturnCurrent();
        StartMore();
        if (_pending.Count == 0)
        {
            // Every range was handed out; the end is where the record says, or this is no body.
            return _position == _length ? false : throw new BodyNotVerifiedException("Truncated", $"The body ended at {_position} of {_length} bytes.");
        }

        var range = _pending.Dequeue();
        _current = await range.WaitAsync(cancellationToken).ConfigureAwait(false);
        _consumed = 0;
        StartMore();
        return true;
    }

    private void ReturnCurrent()
    {
        if (_current.Buffer is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _current = default;
            _consumed = 0;
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Waits for the next range (the tier's one blocking point, as its synchronous lookup).</summary>
    public override int Read(byte[] buffer, int offset, int count)
        => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var rented = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            int n = Internal.Completed.WaitForStore(ReadAsync(rented.AsMemory(0, buffer.Length)));
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _stop.Cancel();
            _onDispose?.Invoke();
            ReturnCurrent();
            // Ranges still in flight give their buffers back when they end; none is read again.
            foreach (var range in _pending)
            {
                _ = range.ContinueWith(static t => ArrayPool<byte>.Shared.Return(t.Result.Buffer), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            _pending.Clear();
            _stop.Dispose();
        }

        base.Dispose(disposing);
    }

    public override bool CanRead => !_disposed;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    /// <summary>The body's length, from the authenticated record.</summary>
    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>One verified range of a body, in a pooled buffer the stream returns when it is consumed.</summary>
internal readonly record struct BodyRange(byte[] Buffer, int Length);

/// <summary>A range of a body that is missing or does not match the record's digests.</summary>
internal sealed class BodyNotVerifiedException(string reason, string message) : IOException(message)
{
    /// <summary>What was wrong: BodyMissing, Truncated, WrongLength or ChecksumMismatch.</summary>
    public string Reason { get; } = reason;
}
