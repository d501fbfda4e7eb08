using System.Diagnostics;

namespace FileCache.Internal;

/// <summary>
/// How an operation does I/O, chosen by type so that the JIT and NativeAOT compile one copy of the
/// operation per mode with the other mode's branches removed (the <c>SslStream</c> adapter pattern).
/// Each operation is written once, as an async method generic over the mode; the synchronous API runs
/// it in <see cref="Blocking"/> mode, where every step completes before it returns.
/// </summary>
internal interface IIoMode
{
    /// <summary>Whether steps may complete later (<see langword="true"/>) or must complete before returning.</summary>
    static abstract bool IsAsync { get; }
}

/// <summary>The synchronous API's mode: every step completes before it returns.</summary>
internal readonly struct Blocking : IIoMode
{
    public static bool IsAsync => false;
}

/// <summary>The asynchronous API's mode: I/O is awaited, CPU-bound work may run on the thread pool.</summary>
internal readonly struct NonBlocking : IIoMode
{
    public static bool IsAsync => true;
}

/// <summary>Results of an operation run in <see cref="Blocking"/> mode.</summary>
internal static class Completed
{
    /// <summary>The result of an operation that ran in <see cref="Blocking"/> mode (it completed synchronously).</summary>
    public static T Result<T>(ValueTask<T> pending)
    {
        Debug.Assert(pending.IsCompleted, "the blocking mode completes every step synchronously");
        return pending.GetAwaiter().GetResult();
    }

    /// <summary>Ends an operation that ran in <see cref="Blocking"/> mode (it completed synchronously).</summary>
    public static void Result(ValueTask pending)
    {
        Debug.Assert(pending.IsCompleted, "the blocking mode completes every step synchronously");
        pending.GetAwaiter().GetResult();
    }

    /// <summary>
    /// A network tier's one blocking point: a synchronous caller waits here for the tier's asynchronous
    /// operation, which completes at once when the store did. The wait is a task wait, which the thread
    /// pool sees and compensates for (README, "Synchronous callers").
    /// </summary>
    public static T WaitForStore<T>(ValueTask<T> pending)
        => pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();

    /// <inheritdoc cref="WaitForStore{T}(ValueTask{T})"/>
    public static void WaitForStore(ValueTask pending)
    {
        if (!pending.IsCompletedSuccessfully)
        {
            pending.AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// A local, synchronous operation behind an asynchronous method (the memory and disk tiers): a
    /// cancelled token or a failure is reported in the returned task, as an async method would.
    /// </summary>
    public static ValueTask<T> Synchronously<T>(Func<T> operation, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        try
        {
            return ValueTask.FromResult(operation());
        }
        catch (Exception e)
        {
            return ValueTask.FromException<T>(e);
        }
    }

    /// <inheritdoc cref="Synchronously{T}(Func{T}, CancellationToken)"/>
    public static ValueTask Synchronously(Action operation, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            operation();
            return ValueTask.CompletedTask;
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }
}
