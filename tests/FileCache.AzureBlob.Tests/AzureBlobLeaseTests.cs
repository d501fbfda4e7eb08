using Azure.Storage.Blobs.Specialized;
using FileCache.Specification.Tests;
using FileCache.Tiering;

namespace FileCache.AzureBlob.Tests;

/// <summary>One compile per fleet without Redis: a lease on the key's lock blob in the same container.</summary>
public sealed class AzureBlobLeaseTests
{
    private static readonly CacheKey Key = TestKeys.Key(30);

    [SkippableFact]
    public async Task AHeldLock_MakesOtherHostsWait_UntilItIsReleased()
    {
        var container = Azurite.Shared.NewContainer();
        var first = new AzureBlobCodeCache(Blobs.Options(container));
        var second = new AzureBlobCodeCache(Blobs.Options(container));

        var held = await first.TryAcquireCompileLockAsync(Key, TimeSpan.FromSeconds(5));
        Assert.NotNull(held);
        Assert.Null(await second.TryAcquireCompileLockAsync(Key, TimeSpan.FromSeconds(2))); // timed out: another host compiles

        var waiting = second.TryAcquireCompileLockAsync(Key, TimeSpan.FromSeconds(20)).AsTask();
        held!.Dispose(); // the entry is stored: release
        using var next = await waiting;
        Assert.NotNull(next);
    }

    [SkippableFact]
    public async Task AHolderThatDied_StopsBlockingWhenItsLeaseExpires()
    {
        var container = Azurite.Shared.NewContainer();
        var options = Blobs.Options(container);
        options.CompileLockDuration = TimeSpan.FromSeconds(15); // Azure's shortest lease
        var survivor = new AzureBlobCodeCache(options);

        // A host that took the lease and died: nobody renews or releases it.
        var lockBlob = container.GetBlobClient("locks/" + Key);
        await lockBlob.UploadAsync(BinaryData.Empty);
        await lockBlob.GetBlobLeaseClient().AcquireAsync(TimeSpan.FromSeconds(15));

        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var taken = await survivor.TryAcquireCompileLockAsync(Key, TimeSpan.FromSeconds(40));
        Assert.NotNull(taken);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(10), $"taken after {watch.Elapsed}: the dead holder's lease was not honoured");
    }

    [SkippableFact]
    public async Task TheTierSetOffersTheLease_AfterTheMachineLock_AndAReaderGetsNoLock()
    {
        var container = Azurite.Shared.NewContainer();
        await using var tiers = new TieredCodeCache([new AzureBlobCodeCache(Blobs.Options(container))]);
        using (var held = await tiers.TryAcquireCompileLockAsync(Key, TimeSpan.FromSeconds(5)))
        {
            Assert.NotNull(held);
            var other = new AzureBlobCodeCache(Blobs.Options(container));
            Assert.Null(await other.TryAcquireCompileLockAsync(Key, TimeSpan.FromSeconds(1)));
        }

        var readOnly = Blobs.Options(container);
        readOnly.ReadOnly = true;
        using var none = await new AzureBlobCodeCache(readOnly).TryAcquireCompileLockAsync(Key, TimeSpan.FromSeconds(1));
        Assert.NotNull(none); // a reader never blocks on, nor takes, the fleet's lock
    }

    [SkippableFact]
    public async Task TheHealthProbe_IsHealthyOnAzurite_AndUnhealthyForAStoreThatIsDown()
    {
        var registration = new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration("blob", _ => null!, Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, null);
        var context = new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext { Registration = registration };
        var up = await new AzureBlobCodeCache(Blobs.Options(Azurite.Shared.NewContainer())).CheckHealthAsync(context);
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy, up.Status);

        var downOptions = Blobs.Options(new Azure.Storage.Blobs.BlobContainerClient(new Uri("http://127.0.0.1:9/devstoreaccount1/none")));
        downOptions.Timeout = TimeSpan.FromSeconds(2);
        var down = await new AzureBlobCodeCache(downOptions).CheckHealthAsync(context);
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, down.Status);
        Assert.Contains("not reachable", down.Description, StringComparison.Ordinal);
    }
}
