using System.Diagnostics.CodeAnalysis;
using FileCache.Memory;
using FileCache.Specification.Tests;
using Xunit.Sdk;

namespace FileCache.Tests;

/// <summary>The conformance suite must fail for backends that break the contract.</summary>
public sealed class SpecificationSuiteTests
{
    [Fact]
    public void Suite_Fails_ForABackendThatReturnsPartialValues()
    {
        var suite = new Suite(() => new Truncating());
        Assert.ThrowsAny<XunitException>(() => suite.Add_NewKey_StoresExactBytes());
        Assert.ThrowsAny<Exception>(() => suite.LargePayload_RoundTrips().GetAwaiter().GetResult());
    }

    [Fact]
    public void Suite_Fails_ForABackendThatThrowsOnAMiss()
    {
        var suite = new Suite(() => new ThrowingOnMiss());
        Assert.ThrowsAny<KeyNotFoundException>(() => suite.Get_Miss_IsNotAnError().GetAwaiter().GetResult());
    }

    [Fact]
    public void Suite_Fails_ForABackendThatKeepsTheCallersBuffer()
    {
        var suite = new Suite(() => new Aliasing());
        // The suite disposes its source stream after Add, so a backend that reads it later fails there.
        Assert.ThrowsAny<ObjectDisposedException>(() => suite.Add_CopiesFromCurrentPosition_AndIsImmuneToLaterMutation());
    }

    [Fact]
    public void Suite_Fails_ForABackendThatReportsEmptyHitsAsMisses()
    {
        var suite = new Suite(() => new EmptyIsMiss());
        Assert.ThrowsAny<XunitException>(() => suite.EmptyPayload_IsAHit().GetAwaiter().GetResult());
    }

    private sealed class Suite(Func<IWasmCodeCache> factory) : WasmCodeCacheSpecificationTests
    {
        protected override IWasmCodeCache CreateCache() => factory();
    }

    /// <summary>Delegates to a correct cache, then breaks one rule.</summary>
    private abstract class Wrapper : IWasmCodeCache
    {
        protected MemoryCodeCache Inner { get; } = new();

        public virtual bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content) => Inner.TryGet(key, out content);

        public virtual void Add(CacheKey key, Stream content) => Inner.Add(key, content);

        public void Delete(CacheKey key) => Inner.Delete(key);

        public virtual ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
            => ValueTask.FromResult(TryGet(key, out var s) ? s : null);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => Inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => Inner.DeleteAsync(key, cancellationToken);
    }

    private sealed class Truncating : Wrapper
    {
        public override bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            if (!Inner.TryGet(key, out var full))
            {
                content = null;
                return false;
            }

            using var m = new MemoryStream();
            full.CopyTo(m);
            content = new MemoryStream(m.ToArray()[..(int)Math.Max(0, m.Length - 1)]);
            return true;
        }
    }

    private sealed class ThrowingOnMiss : Wrapper
    {
        public override bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
            => Inner.TryGet(key, out content) ? true : throw new KeyNotFoundException($"no entry {key}");
    }

    /// <summary>Keeps the caller's stream and reads it only when asked: later changes leak in.</summary>
    private sealed class Aliasing : Wrapper
    {
        private readonly Dictionary<CacheKey, (Stream Source, long Position)> _store = [];

        public override void Add(CacheKey key, Stream content) => _store[key] = (content, content.Position);

        public override bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            if (_store.TryGetValue(key, out var e))
            {
                e.Source.Position = e.Position;
                var copy = new MemoryStream();
                e.Source.CopyTo(copy);
                copy.Position = 0;
                content = copy;
                return true;
            }

            return base.TryGet(key, out content);
        }
    }

    private sealed class EmptyIsMiss : Wrapper
    {
        public override bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            if (Inner.TryGet(key, out content) && content.Length == 0)
            {
                content.Dispose();
                content = null;
                return false;
            }

            return content is not null;
        }
    }
}
