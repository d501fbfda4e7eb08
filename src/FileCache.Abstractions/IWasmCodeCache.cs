using System.Diagnostics.CodeAnalysis;

namespace FileCache;

/// <summary>
/// A store of compiled WebAssembly machine code keyed by <see cref="CacheKey"/>: the .NET
/// counterpart of wazero's <c>filecache.Cache</c> (Get, Add, Delete).
/// </summary>
/// <remarks>
/// <para>Every implementation follows the same contract, which the FileCache.Specification.Tests
/// package checks:</para>
/// <list type="bullet">
/// <item><description>A miss is not an error: <see cref="TryGet"/> returns <see langword="false"/>
/// and <see cref="GetAsync"/> returns <see langword="null"/>.</description></item>
/// <item><description>A hit hands the caller a new <see cref="Stream"/> that the caller owns and
/// must dispose. It yields exactly the bytes that the last completed Add stored, never a part of
/// them and never a mix of two writes.</description></item>
/// <item><description>Add stores the bytes from the content stream's current position to its end,
/// replacing any entry. No reader ever sees a partial entry. Later changes to the caller's source
/// do not change the stored entry.</description></item>
/// <item><description>Delete of a missing key is not an error.</description></item>
/// <item><description>Deleting or replacing an entry while a reader still holds its stream works,
/// and that reader keeps reading the bytes it opened.</description></item>
/// <item><description>An entry that fails an integrity check is a miss: it is removed and counted,
/// never returned. Other failures (I/O errors, permissions) surface as exceptions that name the
/// path or resource and the cause.</description></item>
/// <item><description>All members are thread-safe.</description></item>
/// </list>
/// </remarks>
public interface IWasmCodeCache
{
    /// <summary>Looks an entry up.</summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="content">On a hit, a new readable stream over the stored bytes that the caller
    /// must dispose; on a miss, <see langword="null"/>.</param>
    /// <returns><see langword="true"/> on a hit, <see langword="false"/> on a miss.</returns>
    bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content);

    /// <summary>Stores the bytes from <paramref name="content"/>'s current position to its end under
    /// <paramref name="key"/>, replacing any entry.</summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="content">The bytes to store. It is read to its end and not disposed.</param>
    /// <exception cref="ArgumentNullException"><paramref name="content"/> is null.</exception>
    void Add(CacheKey key, Stream content);

    /// <summary>Removes an entry. Removing a missing key is not an error.</summary>
    /// <param name="key">The entry's key.</param>
    void Delete(CacheKey key);

    /// <summary>Looks an entry up asynchronously.</summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    /// <returns>On a hit, a new readable stream over the stored bytes that the caller must dispose;
    /// on a miss, <see langword="null"/>.</returns>
    ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default);

    /// <summary>Stores the bytes from <paramref name="content"/>'s current position to its end under
    /// <paramref name="key"/>, replacing any entry. A cancelled Add leaves the previous entry (or
    /// none) in place.</summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="content">The bytes to store. It is read to its end and not disposed.</param>
    /// <param name="cancellationToken">Cancels the store.</param>
    /// <returns>A task that completes when the entry is visible to readers.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="content"/> is null.</exception>
    ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default);

    /// <summary>Removes an entry asynchronously. Removing a missing key is not an error.</summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="cancellationToken">Cancels the removal.</param>
    /// <returns>A task that completes when the entry is gone.</returns>
    ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default);
}
