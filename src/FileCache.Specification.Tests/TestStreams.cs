namespace FileCache.Specification.Tests;

/// <summary>Content streams that misbehave on purpose.</summary>
internal static class TestStreams
{
    /// <summary>A forward-only stream (no seeking, no length) over <paramref name="bytes"/>.</summary>
    /// <param name="bytes">The content.</param>
    /// <returns>The stream.</returns>
    public static Stream NonSeekable(byte[] bytes) => new ForwardOnly(bytes, failAfter: -1, cancel: null);

    /// <summary>A forward-only stream that throws <see cref="IOException"/> after <paramref name="failAfter"/> bytes.</summary>
    /// <param name="bytes">The content.</param>
    /// <param name="failAfter">How many bytes are delivered before the failure.</param>
    /// <returns>The stream.</returns>
    public static Stream FailingAfter(byte[] bytes, int failAfter) => new ForwardOnly(bytes, failAfter, cancel: null);

    /// <summary>A forward-only stream that cancels <paramref name="source"/> after the first read and
    /// then honours the token it is given.</summary>
    /// <param name="bytes">The content.</param>
    /// <param name="source">The source to cancel.</param>
    /// <returns>The stream.</returns>
    public static Stream CancellingAfterFirstRead(byte[] bytes, CancellationTokenSource source) => new ForwardOnly(bytes, failAfter: -1, source);

    private sealed class ForwardOnly(byte[] bytes, int failAfter, CancellationTokenSource? cancel) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (failAfter >= 0 && _position >= failAfter)
            {
                throw new IOException($"Test stream failed on purpose after {failAfter} bytes.");
            }

            int limit = failAfter >= 0 ? failAfter : bytes.Length;
            int n = Math.Min(Math.Min(buffer.Length, 64 * 1024), limit - _position);
            bytes.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Read(buffer.Span);
            if (cancel is not null && n > 0)
            {
                cancel.Cancel();
            }

            return ValueTask.FromResult(n);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
