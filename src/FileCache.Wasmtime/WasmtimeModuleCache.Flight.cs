using Wasmtime;

namespace FileCache.Wasmtime;

// Single flight: the one load of a key in this process that other callers join.
public sealed partial class WasmtimeModuleCache
{
    /// <summary>
    /// One load of a key in progress in this process. Joiners register before it ends and then wait for
    /// <see cref="Done"/>: each is handed a lease of its own on the leader's live module (taken for it
    /// when the flight ends, so no joiner sees a module disposed under it), plus the serialized module
    /// when the leader compiled (for joiners on another engine). A flight that ended without a module
    /// (a stale digest, a cancelled leader) sends its joiners to look again.
    /// </summary>
    private sealed class Flight
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly object _gate = new();
        private int _joiners;
        private bool _ended;

        public Task Done => _done.Task;

        public Engine? Engine { get; private set; }

        public LiveModules.Entry? Lease { get; private set; }

        public byte[]? Compiled { get; private set; }

        /// <summary>Registers a joiner; <see langword="false"/> when the flight has already ended.</summary>
        public bool TryJoin()
        {
            lock (_gate)
            {
                if (_ended)
                {
                    return false;
                }

                _joiners++;
                return true;
            }
        }

        /// <summary>Ends the flight (once): every joiner so far is owed one lease on <paramref name="lease"/>.</summary>
        public void End(LiveModules live, Engine engine, LiveModules.Entry? lease, byte[]? compiled)
        {
            lock (_gate)
            {
                if (_ended)
                {
                    return;
                }

                _ended = true;
                Engine = engine;
                Lease = lease;
                Compiled = compiled;
                if (lease is not null && _joiners > 0)
                {
                    live.Share(lease, _joiners);
                }
            }

            _done.SetResult();
        }

        /// <summary>Ends the flight with the leader's failure, which every joiner rethrows.</summary>
        public void Fail(Exception e)
        {
            lock (_gate)
            {
                if (_ended)
                {
                    return;
                }

                _ended = true;
            }

            _done.SetException(e);
        }

        /// <summary>A joiner that stopped waiting: releases the lease it is owed once the flight ends.</summary>
        public void Abandon(LiveModules live)
            => _ = _done.Task.ContinueWith(
                static (_, state) =>
                {
                    var (flight, owner) = ((Flight, LiveModules))state!;
                    if (flight.Lease is { } lease)
                    {
                        owner.Release(lease);
                    }
                },
                (this, live),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
    }
}
