using System.Diagnostics;
using FileCache.Internal;
using Microsoft.Extensions.Logging;
using Wasmtime;

namespace FileCache.Wasmtime;

// The load pipeline, written once for both modes: live module -> single flight -> tiers (each asked
// once) -> map or deserialize; on a miss the machine and fleet locks, a re-check of the tiers another
// process can fill, the compile and the add. The blocking mode runs the same code with every step
// synchronous; the only place it waits on a task is for another caller's load in this process.
public sealed partial class WasmtimeModuleCache
{
    /// <summary>The synchronous API: runs the pipeline with every step synchronous.</summary>
    private (LiveModules.Entry Lease, ModuleOrigin Origin) RunBlocking<T>(ArtifactKind<T> kind, Engine engine, WasmSource source, CancellationToken cancellationToken)
        where T : class, IDisposable
    {
        var pending = LoadCore<T, Blocking>(kind, engine, source, cancellationToken);
        Debug.Assert(pending.IsCompleted, "the blocking mode completes every step synchronously");
        return pending.GetAwaiter().GetResult();
    }

    private async ValueTask<(LiveModules.Entry Lease, ModuleOrigin Origin)> LoadCore<T, TMode>(ArtifactKind<T> kind, Engine engine, WasmSource source, CancellationToken cancellationToken)
        where T : class, IDisposable
        where TMode : struct, IIoMode
    {
        ArgumentNullException.ThrowIfNull(engine);
        var settings = SettingsOf(engine);
        if (source.IsComponent is bool component && component != kind.IsComponent)
        {
            throw new ArgumentException($"'{source.Name}' is a {(component ? "component: load it with LoadComponent" : "core module: load it with Load")}.", nameof(source));
        }

        string name = source.Name;
        var wasm = source.Wasm;
        var digest = source.Digest;
        bool validate = source.Validate || kind.IsComponent;
        var key = kind.KeyOf(digest is null ? settings.DeriveKey(wasm.Span) : settings.DeriveKey(digest));
        while (true)
        {
            if (_live.TryLease(engine, key) is { } live)
            {
                return (live, ModuleOrigin.LiveModule);
            }

            cancellationToken.ThrowIfCancellationRequested();
            var flight = new Flight();
            if (_flights.TryAdd(key, flight))
            {
                Led led;
                try
                {
                    led = await Lead<T, TMode>(kind, engine, name, key, wasm, digest, validate, flight, cancellationToken).ConfigureAwait(false);
                    flight.End(_live, engine, led.Stale ? null : led.Result.Lease, null); // (a no-op after a compile: ended before the add)
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    flight.End(_live, engine, null, null); // this caller's cancellation is not the joiners': one of them leads instead
                    throw;
                }
                catch (Exception e)
                {
                    flight.Fail(e);
                    throw;
                }
                finally
                {
                    _flights.TryRemove(new KeyValuePair<CacheKey, Flight>(key, flight));
                }

                if (led.Stale)
                {
                    // A digest that is not the bytes' (a stale build): load under the key of the bytes.
                    return await LoadCore<T, TMode>(kind, engine, new WasmSource(name, wasm, digest: null, validate), cancellationToken).ConfigureAwait(false);
                }

                return led.Result;
            }

            if (!_flights.TryGetValue(key, out var running) || !running.TryJoin())
            {
                continue; // it ended between the looks
            }

            WaitingForCompile?.Invoke(key);
            try
            {
                if (TMode.IsAsync)
                {
                    await running.Done.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    running.Done.WaitAsync(cancellationToken).GetAwaiter().GetResult(); // the one blocking point: another caller's load in this process
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                running.Abandon(_live); // the lease the leader will hand this joiner is released instead
                throw;
            }

            if (running.Lease is { } lease)
            {
                if (ReferenceEquals(running.Engine, engine))
                {
                    return (lease, running.Compiled is null ? ModuleOrigin.LiveModule : ModuleOrigin.SharedCompile);
                }

                _live.Release(lease); // another engine's module is of no use here
            }

            if (running.Compiled is { } compiled)
            {
                // The leader compiled on another engine: its serialized module (made for the tiers anyway) loads here.
                return Done(engine, new Obtained(kind.Deserialize(engine, name, compiled), ModuleOrigin.SharedCompile, compiled.Length), key);
            }

            // The leader found the entry for another engine, or gave up: look again.
        }
    }

    /// <summary>As the one caller loading <paramref name="key"/> in this process: the tiers, then the locks, the re-check and the compile.</summary>
    private async ValueTask<Led> Lead<T, TMode>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, ReadOnlyMemory<byte> wasm, WasmDigest? digest, bool validate, Flight flight, CancellationToken cancellationToken)
        where T : class, IDisposable
        where TMode : struct, IIoMode
    {
        var (hit, incompatible) = await LookUp<T, TMode>(kind, engine, name, key, CacheLookupScope.All, cancellationToken).ConfigureAwait(false);
        if (hit is { } found)
        {
            return new Led(Done(engine, found, key), Stale: false);
        }

        if (IsStale(digest, wasm.Span, name, key))
        {
            return new Led(default, Stale: true);
        }

        // One compile per machine (the disk tier's lock) and per fleet (the fleet lock), under one deadline.
        var machineLock = await AcquireCompileLock<TMode>(key, cancellationToken).ConfigureAwait(false);
        try
        {
            // Another process may have added it while this one looked or waited: only the tiers it can
            // fill are asked again (nothing else in this process loads this key).
            if (!incompatible)
            {
                (hit, incompatible) = await LookUp<T, TMode>(kind, engine, name, key, CacheLookupScope.SharedTiers, cancellationToken).ConfigureAwait(false);
                if (hit is { } late)
                {
                    return new Led(Done(engine, late, key), Stale: false);
                }
            }

            // Compiling is CPU-bound work that Wasmtime does synchronously; the non-blocking mode keeps it off the caller's thread.
            var artifact = TMode.IsAsync
                ? await Task.Run(() => kind.Compile(engine, name, wasm.Span, validate), CancellationToken.None).ConfigureAwait(false)
                : kind.Compile(engine, name, wasm.Span, validate);
            var serialized = kind.Serialize(artifact);
            var result = Done(engine, new Obtained(artifact, incompatible ? ModuleOrigin.Recompiled : ModuleOrigin.Compiled, serialized.Length), key);
            flight.End(_live, engine, result.Lease, serialized); // the joiners go on while the tiers are written
            try
            {
                await Store<TMode>(key, serialized, localOnly: incompatible, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                _live.Release(result.Lease); // cancelled while adding: the caller gets no module, so holds no lease
                throw;
            }

            return new Led(result, Stale: false);
        }
        finally
        {
            machineLock?.Dispose();
        }
    }

    /// <summary>Asks the tiers once and turns a hit into a module; an entry this engine cannot use is reported, not returned.</summary>
    private async ValueTask<(Obtained? Hit, bool Incompatible)> LookUp<T, TMode>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken)
        where T : class, IDisposable
        where TMode : struct, IIoMode
    {
        CacheEntry? entry;
        try
        {
            entry = TMode.IsAsync
                ? await _tiers.GetEntryAsync(key, scope, cancellationToken).ConfigureAwait(false)
                : _tiers.TryGetEntry(key, scope, out var found) ? found : null;
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "read", key, e);
            return (null, false);
        }

        if (entry is null)
        {
            return (null, false);
        }

        using (entry)
        {
            return TryLoadEntry(kind, engine, name, key, entry);
        }
    }

    /// <summary>Turns a hit into a module: maps a verified file, else deserializes the bytes; an entry this engine cannot use is removed from this host's tiers.</summary>
    private (Obtained? Hit, bool Incompatible) TryLoadEntry<T>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, CacheEntry entry)
        where T : class, IDisposable
    {
        ReadOnlyMemory<byte> bytes;
        if (entry.File is { } file)
        {
            try
            {
                return (new Obtained(kind.DeserializeFile(engine, name, file.Path), ModuleOrigin.MappedFile, file.PayloadLength), false);
            }
            catch (WasmtimeException e)
            {
                // Mapping can fail for reasons of its own (no /proc, a descriptor limit): the verified
                // bytes decide whether the entry itself is unusable.
                LogMappedFailed(_logger, key, e.Message);
            }

            try
            {
                bytes = file.ReadPayload();
            }
            catch (Exception e) when (IsCacheFailure(e))
            {
                LogCacheFailed(_logger, "read", key, e);
                return (null, false);
            }
        }
        else
        {
            bytes = entry.Bytes;
        }

        try
        {
            return (new Obtained(kind.Deserialize(engine, name, bytes.Span), ModuleOrigin.CacheHit, bytes.Length), false);
        }
        catch (WasmtimeException e)
        {
            // Built by another Wasmtime or with other settings under this key: useless to this engine.
            // Removed only where this host owns it: a fleet tier keeps it for hosts that can use it.
            LogIncompatible(_logger, key, e.Message);
            try
            {
                _tiers.DeleteLocal(key);
            }
            catch (Exception d) when (IsCacheFailure(d))
            {
                LogCacheFailed(_logger, "delete", key, d);
            }

            return (null, true);
        }
    }

    private async ValueTask<IDisposable?> AcquireCompileLock<TMode>(CacheKey key, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        if (_compileLockTimeout <= TimeSpan.Zero || !_offersLock)
        {
            return null;
        }

        try
        {
            var acquired = TMode.IsAsync
                ? await _tiers.TryAcquireCompileLockAsync(key, _compileLockTimeout, cancellationToken).ConfigureAwait(false)
                : _tiers.TryAcquireCompileLock(key, _compileLockTimeout, cancellationToken);
            if (acquired is null)
            {
                LogCompileLockTimedOut(_logger, key, _compileLockTimeout.TotalSeconds);
            }

            return acquired;
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "lock", key, e); // compiling without the lock only costs a duplicate compile
            return null;
        }
    }

    private async ValueTask Store<TMode>(CacheKey key, byte[] serialized, bool localOnly, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        try
        {
            using var content = new MemoryStream(serialized, writable: false);
            if (localOnly)
            {
                _tiers.AddLocal(key, content); // the recompile after an unusable entry: a fleet's entry stays for the hosts that can use it
            }
            else if (TMode.IsAsync)
            {
                await _tiers.AddAsync(key, content, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                _tiers.Add(key, content);
            }
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            // The module is compiled and usable; a cache that cannot store it only costs the next start.
            LogCacheFailed(_logger, "add", key, e);
        }
    }

    /// <summary>
    /// Before compiling a module under the key of a digest it was given: do the bytes have that digest?
    /// A stale build (a digest left from a previous module) must never file the new module's code under
    /// the old module's key, where every correct app would find it. A mismatch is logged and counted,
    /// and the load goes on under the key of the bytes. Costs one hash, only on a miss.
    /// </summary>
    private bool IsStale(WasmDigest? digest, ReadOnlySpan<byte> wasm, string name, CacheKey key)
    {
        if (digest is null || digest.Matches(wasm))
        {
            return false;
        }

        _staleDigests.Add(1);
        LogStaleDigest(_logger, name, key);
        return true;
    }

    /// <summary>
    /// The settings the engine was created with (<see cref="WasmtimeEngineSettings.CreateEngine"/>): the
    /// engine carries them, so the key always describes the code the engine makes.
    /// </summary>
    private static WasmtimeEngineSettings SettingsOf(Engine engine)
        => WasmtimeEngineSettings.BoundTo(engine)
            ?? throw new ArgumentException("The engine was not created by WasmtimeEngineSettings.CreateEngine(), so the loader cannot know which settings its code depends on; create it with settings.CreateEngine().", nameof(engine));

    /// <summary>
    /// Whatever a cache throws is its own failure and never fails a load, except what no code can
    /// recover from (out of memory) and a cancellation the caller asked for.
    /// </summary>
    private static bool IsCacheFailure(Exception e) => e is not (OutOfMemoryException or OperationCanceledException);

    private (LiveModules.Entry Lease, ModuleOrigin Origin) Done(Engine engine, Obtained loaded, CacheKey key)
        => (_live.Add(engine, key, loaded.Artifact, loaded.Size), loaded.Origin);

    /// <summary>A module or component this call obtained, where from, and its serialized size (for the live budget).</summary>
    private readonly record struct Obtained(IDisposable Artifact, ModuleOrigin Origin, long Size);

    /// <summary>What the leader of a load ended with: its lease, or that the digest it was given is stale.</summary>
    private readonly record struct Led((LiveModules.Entry Lease, ModuleOrigin Origin) Result, bool Stale);
}
