using System.Buffers;

namespace FileCache.Wasmtime.Internal;

/// <summary>
/// How the load pipeline does I/O, chosen by type so that the JIT and NativeAOT compile one copy of the
/// pipeline per mode with the other mode's branches removed (the <c>SslStream</c> adapter pattern).
/// </summary>
internal interface ILoadMode
{
    /// <summary>Whether steps may complete later (<see langword="true"/>) or must complete before returning.</summary>
    static abstract bool IsAsync { get; }
}

/// <summary>The synchronous API's mode: every step completes before it returns.</summary>
internal readonly struct Blocking : ILoadMode
{
    public static bool IsAsync => false;
}

/// <summary>The asynchronous API's mode: lookups, locks and adds are awaited, compiles run on the thread pool.</summary>
internal readonly struct NonBlocking : ILoadMode
{
    public static bool IsAsync => true;
}

/// <summary>
/// A caller's span as <see cref="ReadOnlyMemory{T}"/> for the length of one synchronous call, so the
/// synchronous API runs the one pipeline without copying the module. Safe only because the blocking
/// mode completes before the span's <c>fixed</c> scope ends.
/// </summary>
internal sealed unsafe class PinnedMemory(byte* pointer, int length) : MemoryManager<byte>
{
    public ReadOnlyMemory<byte> Bytes => CreateMemory(length);

    public override Span<byte> GetSpan() => new(pointer, length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
