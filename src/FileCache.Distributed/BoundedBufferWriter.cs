using System.Buffers;

namespace FileCache.Distributed;

/// <summary>
/// Receives a value from an <see cref="Microsoft.Extensions.Caching.Distributed.IBufferDistributedCache"/>
/// up to a limit: a request for room past it stops the read with <see cref="TooLargeException"/>
/// before anything is allocated for it. One contiguous buffer that grows to the size the store asks
/// for (stores write a value they hold whole, asking for its remaining length), so a large value is
/// allocated once at its exact size and handed over without a copy.
/// </summary>
/// <remarks>Hand-written: <see cref="ArrayBufferWriter{T}"/> has no limit and doubles past the size asked for.</remarks>
internal sealed class BoundedBufferWriter(long limit) : IBufferWriter<byte>
{
    private const int FirstBuffer = 64 << 10;
    private byte[] _buffer = [];
    private int _length;

    /// <summary>Thrown when the value passes the limit.</summary>
    internal sealed class TooLargeException(long atLeast) : Exception($"The value has at least {atLeast} bytes.")
    {
        public long AtLeast { get; } = atLeast;
    }

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > _buffer.Length - _length)
        {
            throw new InvalidOperationException("Advanced past the span handed out.");
        }

        _length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_length);
    }

    /// <summary>The value received, as one exact array (the buffer itself when it is exactly full).</summary>
    public byte[] ToArray() => _length == _buffer.Length ? _buffer : _buffer.AsSpan(0, _length).ToArray();

    private void Ensure(int sizeHint)
    {
        long wanted = Math.Max(sizeHint, 1);
        if (_buffer.Length - _length >= wanted)
        {
            return;
        }

        if (_length + wanted > limit)
        {
            throw new TooLargeException(_length + wanted);
        }

        // At least what was asked for (a store that holds the value whole asks for all of it: one exact
        // allocation), and at least double, so stores that write in small pieces cost linear copying.
        long size = Math.Max(_length + wanted, Math.Max(FirstBuffer, 2L * _buffer.Length));
        var next = GC.AllocateUninitializedArray<byte>((int)Math.Min(Math.Min(size, limit), Array.MaxLength));
        _buffer.AsSpan(0, _length).CopyTo(next);
        _buffer = next;
    }
}
