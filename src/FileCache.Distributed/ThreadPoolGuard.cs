namespace FileCache.Distributed;

/// <summary>
/// Keeps the thread pool able to run I/O completions while synchronous callers block pool threads
/// on the store. Network clients (StackExchange.Redis among them, with its synchronous API too)
/// complete their operations on pool threads; when every pool thread is blocked waiting for such a
/// completion, the pool adds threads only slowly, and 32 synchronous callers on 2 cores answered 29
/// calls in 4 s (issue 13). While pool threads block here, the pool's minimum is kept at least at
/// their number plus one per core, so a completion always finds a thread at once; the minimum the
/// application had is restored when the last one leaves (unless someone changed it meanwhile).
/// </summary>
/// <remarks>
/// Hand-written: the runtime offers no public API to tell the pool a thread is blocked
/// (<c>Task.Wait</c> does so internally, with injection delays that are the stall itself).
/// Measured on 2 cores (FleetWorker <c>concurrency</c>, synchronous callers on pool threads, real
/// redis-server, 4 s): with the guard 8/32/64 callers ran 7,123/10,570/12,316 operations a second;
/// without it every caller count stalled (7 operations in 4 s), also with StackExchange.Redis on a
/// dedicated <c>SocketManager</c>; blocking on the asynchronous store API instead (which the runtime's
/// blocking compensation sees) kept 8 callers at 5,245 a second but stalled 32. Issue 19's redesign
/// removes the need (asynchronous network tiers, one documented blocking point).
/// </remarks>
internal static class ThreadPoolGuard
{
    private static readonly object Gate = new();
    private static int s_blocked;
    private static int s_originalMinimum = -1;
    private static int s_setMinimum = -1;

    /// <summary>Marks the current thread as blocked on the store until the scope is disposed.</summary>
    public static Scope Enter()
    {
        if (!Thread.CurrentThread.IsThreadPoolThread)
        {
            return default; // a dedicated thread does not take a pool thread away
        }

        lock (Gate)
        {
            s_blocked++;
            ThreadPool.GetMinThreads(out int worker, out int io);
            int wanted = s_blocked + Environment.ProcessorCount;
            if (worker < wanted)
            {
                if (s_originalMinimum < 0)
                {
                    s_originalMinimum = worker;
                }

                ThreadPool.SetMinThreads(wanted, io);
                s_setMinimum = wanted;
            }
        }

        return new Scope(entered: true);
    }

    private static void Leave()
    {
        lock (Gate)
        {
            if (--s_blocked > 0 || s_originalMinimum < 0)
            {
                return;
            }

            ThreadPool.GetMinThreads(out int worker, out int io);
            if (worker == s_setMinimum)
            {
                ThreadPool.SetMinThreads(s_originalMinimum, io);
            }

            s_originalMinimum = -1;
            s_setMinimum = -1;
        }
    }

    /// <summary>Ends a blocked section.</summary>
    internal readonly struct Scope(bool entered) : IDisposable
    {
        public void Dispose()
        {
            if (entered)
            {
                Leave();
            }
        }
    }
}
