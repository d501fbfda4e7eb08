using System.Buffers;

namespace FileCache.Distributed;

/// <summary>
/// Receives a value from an <see cref="Microsoft.Extensions.Caching.Distributed.IBufferDistributedCache"/>
/// up to a limit: a request for room past it stops the read with <see cref="TooLargeException"/>
/// before anything is allocated for it. Stores write without saying the value's length (RedisCache
/// asks for spans with no size hint), so the value lands in segments that grow geometrically up to
/// 4 MiB and are joined once at the end: each byte is copied twice, never once per growth.
/// </summary>
/// <remarks>Hand-written: <see cref="ArrayBufferWriter{T}"/> has no limit and copies everything on each growth.</remarks>
internal sealed class BoundedBufferWriter(long limit) : IBufferWriter<byte>
{
    private const int FirstSegment = 64 << 10;
    private const int LargestSegment = 4 << 20;
    private readonly List<(byte[] Array, int Used)> _full = [];
    private byte[] _current = [];
    private int _used;
    private long _length;

    /// <summary>Thrown when the value passes the limit.</summary>
    internal sealed class TooLargeException(long atLeast) : Exception($"The value has at least {atLeast} bytes.")
    {
        public long AtLeast { get; } = atLeast;
    }

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > _current.Length - _used)
        {
            throw new InvalidOperationException("Advanced past the span handed out.");
        }

        _used += count;
        _length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _current.AsMemory(_used);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _current.AsSpan(_used);
    }

    /// <summary>The value received, as one exact array.</summary>
    public byte[] ToArray()
    {
        if (_full.Count == 0 && _used == _current.Length)
        {
            return _current;
        }

        var all = GC.AllocateUninitializedArray<byte>(checked((int)_length));
        int at = 0;
        foreach (var (array, used) in _full)
        {
            array.AsSpan(0, used).CopyTo(all.AsSpan(at));
            at += used;
        }

        _current.AsSpan(0, _used).CopyTo(all.AsSpan(at));
        return all;
    }

    private void Ensure(int sizeHint)
    {
        int wanted = Math.Max(sizeHint, 1);
        if (_current.Length - _used >= wanted)
        {
            return;
        }

        if (_length + wanted > limit)
        {
            throw new TooLargeException(_length + wanted);
        }

        if (_used > 0)
        {
            _full.Add((_current, _used));
        }

        long size = Math.Max(wanted, Math.Clamp(_length, FirstSegment, LargestSegment));
        _current = GC.AllocateUninitializedArray<byte>((int)Math.Min(size, limit - _length));
        _used = 0;
    }
}
