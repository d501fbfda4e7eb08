using System.Runtime.CompilerServices;
using Wasmtime;

namespace FileCache.Wasmtime;

/// <summary>
/// Modules and components already loaded, per engine, within a byte budget: the fastest tier for Wasmtime, because a
/// module is immutable and shared by every store of its engine, so a repeated load needs no bytes,
/// no verification and no deserialize. Entries are reference-counted: eviction never disposes a
/// module a caller still holds; the last <see cref="Loaded{T}.Dispose"/> does.
/// </summary>
/// <remarks>
/// Tables are keyed weakly by engine: an engine that is collected takes its table with it, and
/// <see cref="WasmtimeModuleCache.Forget(Engine)"/> drops an engine's modules at once. The budget
/// is shared by all engines; least recently used entries go first.
/// </remarks>
internal sealed class LiveModules(long budget)
{
    private readonly object _gate = new();
    private readonly ConditionalWeakTable<Engine, Dictionary<CacheKey, Entry>> _byEngine = new();
    private readonly LinkedList<Entry> _lru = new(); // most recently used first
    private long _bytes;

    /// <summary>Bytes of the modules held (their serialized sizes).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>A lease on a live module of <paramref name="engine"/>, or <see langword="null"/>.</summary>
    public Entry? TryLease(Engine engine, CacheKey key)
    {
        lock (_gate)
        {
            if (!_byEngine.TryGetValue(engine, out var table) || !table.TryGetValue(key, out var entry))
            {
                return null;
            }

            entry.Refs++;
            _lru.Remove(entry.Node);
            _lru.AddFirst(entry.Node);
            return entry;
        }
    }

    /// <summary>
    /// Makes <paramref name="module"/> live (when it fits the budget) and returns a lease on it. If
    /// another caller made the same key live first, that module is leased and this one disposed.
    /// </summary>
    public Entry Add(Engine engine, CacheKey key, IDisposable module, long size)
    {
        List<IDisposable>? dispose = null;
        Entry result;
        lock (_gate)
        {
            var table = _byEngine.GetValue(engine, static _ => []);
            if (table.TryGetValue(key, out var existing))
            {
                existing.Refs++;
                (dispose = []).Add(module);
                result = existing;
            }
            else if (size > budget)
            {
                result = new Entry(module, key, size, table) { Refs = 1, Evicted = true }; // not kept: the lease owns it
            }
            else
            {
                result = new Entry(module, key, size, table) { Refs = 1 };
                table.Add(key, result);
                _lru.AddFirst(result.Node);
                _bytes += size;
                while (_bytes > budget && _lru.Last is { } oldest)
                {
                    EvictLocked(oldest.Value, ref dispose);
                }
            }
        }

        DisposeAll(dispose);
        return result;
    }

    /// <summary>Adds <paramref name="count"/> leases to an entry someone already holds (for the callers that waited for its load).</summary>
    public void Share(Entry entry, int count)
    {
        lock (_gate)
        {
            entry.Refs += count;
        }
    }

    /// <summary>Ends a lease; disposes the module when it was evicted and this was the last lease.</summary>
    public void Release(Entry entry)
    {
        bool dispose;
        lock (_gate)
        {
            entry.Refs--;
            dispose = entry.Refs == 0 && entry.Evicted;
        }

        if (dispose)
        {
            entry.Module.Dispose();
        }
    }

    /// <summary>Drops every module of <paramref name="engine"/> (leased ones when their last lease ends).</summary>
    public int Forget(Engine engine)
    {
        List<IDisposable>? dispose = null;
        int count;
        lock (_gate)
        {
            if (!_byEngine.TryGetValue(engine, out var table))
            {
                return 0;
            }

            count = table.Count;
            foreach (var entry in table.Values.ToArray())
            {
                EvictLocked(entry, ref dispose);
            }

            _byEngine.Remove(engine);
        }

        DisposeAll(dispose);
        return count;
    }

    private void EvictLocked(Entry entry, ref List<IDisposable>? dispose)
    {
        entry.Table.Remove(entry.Key);
        _lru.Remove(entry.Node);
        _bytes -= entry.Size;
        entry.Evicted = true;
        if (entry.Refs == 0)
        {
            (dispose ??= []).Add(entry.Module);
        }
    }

    private static void DisposeAll(List<IDisposable>? modules)
    {
        foreach (var module in modules ?? [])
        {
            module.Dispose(); // outside the lock: native work
        }
    }

    /// <summary>One live module and its leases (guarded by the owner's lock).</summary>
    internal sealed class Entry
    {
        public Entry(IDisposable module, CacheKey key, long size, Dictionary<CacheKey, Entry> table)
        {
            Module = module;
            Key = key;
            Size = size;
            Table = table;
            Node = new LinkedListNode<Entry>(this);
        }

        public IDisposable Module { get; }

        public CacheKey Key { get; }

        public long Size { get; }

        public Dictionary<CacheKey, Entry> Table { get; }

        public LinkedListNode<Entry> Node { get; }

        public int Refs { get; set; }

        public bool Evicted { get; set; }
    }
}
