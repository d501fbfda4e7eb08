using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace FileCache.AzureBlob;

/// <summary>
/// What the <c>filecache --azure</c> commands do to a container: list records and bodies, check an
/// entry as a reader does (reporting why it fails), read a verified payload, remove a record. Never
/// used by the tier: repair is an operator's action.
/// </summary>
internal sealed class AzureBlobMaintenance
{
    private readonly AzureBlobCodeCacheOptions _options;
    private readonly BlobContainerClient _container;
    private AzureBlobCodeCache? _cache;

    /// <summary>Opens a container; the key is needed only to check entries (<see cref="CheckAsync"/>).</summary>
    public AzureBlobMaintenance(AzureBlobCodeCacheOptions options)
    {
        _options = options;
        _container = options.Container ?? new BlobContainerClient(options.ConnectionString, options.ContainerName, AzureBlobCodeCache.ClientOptions());
        options.Container = _container;
    }

    private AzureBlobCodeCache Cache => _cache ??= new AzureBlobCodeCache(_options); // validates the key

    /// <summary>An index record as listed.</summary>
    public sealed record RecordInfo(CacheKey Key, DateTimeOffset? LastModified, DateTimeOffset? LastAccessed, string? Generation);

    /// <summary>A body as listed.</summary>
    public sealed record BodyInfo(string Name, long Length, DateTimeOffset? LastModified, DateTimeOffset? LastAccessed, string? Generation);

    /// <summary>Every index record whose name is a key; other names under the prefix are counted in <paramref name="foreign"/>.</summary>
    public List<RecordInfo> ListRecords(out int foreign)
    {
        var records = new List<RecordInfo>();
        foreign = 0;
        string prefix = _options.Prefix + "index/";
        foreach (var blob in _container.GetBlobs(BlobTraits.Tags, BlobStates.None, prefix, CancellationToken.None))
        {
            if (CacheKey.TryParse(blob.Name.AsSpan(prefix.Length), out var key))
            {
                records.Add(new RecordInfo(key, blob.Properties.LastModified, blob.Properties.LastAccessedOn, Generation(blob)));
            }
            else
            {
                foreign++;
            }
        }

        return records;
    }

    /// <summary>Every body.</summary>
    public List<BodyInfo> ListBodies()
    {
        string prefix = _options.Prefix + "body/";
        return [.. _container.GetBlobs(BlobTraits.Tags, BlobStates.None, prefix, CancellationToken.None)
            .Select(b => new BodyInfo(b.Name[prefix.Length..], b.Properties.ContentLength ?? 0, b.Properties.LastModified, b.Properties.LastAccessedOn, Generation(b)))];
    }

    private static string? Generation(BlobItem blob)
        => blob.Tags is { } tags && tags.TryGetValue(AzureBlobCodeCache.GenerationTag, out var value) ? value : null;

    /// <summary>
    /// Checks one entry as a reader does: the record with the key, then every byte of the body, which
    /// goes to <paramref name="payload"/> when given. Returns why it fails, or <see langword="null"/>.
    /// </summary>
    public Task<string?> CheckAsync(CacheKey key, Stream? payload, CancellationToken cancellationToken = default)
        => Cache.CheckAsync(key, payload, cancellationToken);

    /// <summary>Removes a key's record (its body stays: other keys may name it; the lifecycle rule expires it).</summary>
    public bool DeleteRecord(CacheKey key) => _container.GetBlobClient(_options.Prefix + "index/" + key.ToString()).DeleteIfExists().Value;

    /// <summary>Where the container is, for messages.</summary>
    public Uri Uri => _container.Uri;

    /// <summary>Whether the container exists (a wrong name or account is an operator's error, not an empty cache).</summary>
    public bool Exists()
    {
        try
        {
            return _container.Exists().Value;
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            return true; // a SAS may read blobs without reading the container's properties
        }
    }
}
