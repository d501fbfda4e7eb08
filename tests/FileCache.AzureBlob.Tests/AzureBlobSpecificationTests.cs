using FileCache.Specification.Tests;

namespace FileCache.AzureBlob.Tests;

internal static class Blobs
{
    public static readonly byte[] Secret = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();

    public static AzureBlobCodeCacheOptions Options(Azure.Storage.Blobs.BlobContainerClient container, byte[]? key = null) => new()
    {
        Container = container,
        AuthenticationKey = key ?? Secret,
        RangeSize = 1 << 20, // several ranges even for a few MiB: the parallel, verified read is what runs
        Timeout = TimeSpan.FromSeconds(30), // a busy CI machine must not turn a slow call into a skipped one
    };
}

/// <summary>The conformance suite over the blob tier on a real Azurite.</summary>
public sealed class AzureBlobSpecificationTests : WasmCodeCacheSpecificationTests
{
    protected override WasmCodeCacheLocality Locality => WasmCodeCacheLocality.Fleet;

    protected override int LargePayloadSize => 8 * 1024 * 1024;

    protected override int ConcurrentOperationsPerThread => 40;

    protected override IWasmCodeCache CreateCache() => new AzureBlobCodeCache(Blobs.Options(Azurite.Shared.NewContainer()));
}
