namespace FileCache;

/// <summary>Thrown by Add and Delete on a cache that is configured as read-only.</summary>
internal sealed class ReadOnlyWasmCodeCacheException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public ReadOnlyWasmCodeCacheException()
        : base("The wasm code cache is read-only.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was refused and where.</param>
    public ReadOnlyWasmCodeCacheException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    /// <param name="message">What was refused and where.</param>
    /// <param name="innerException">The cause.</param>
    public ReadOnlyWasmCodeCacheException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
