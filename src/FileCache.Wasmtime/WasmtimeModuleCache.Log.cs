using Microsoft.Extensions.Logging;

namespace FileCache.Wasmtime;

// The loader's log messages (source-generated).
public sealed partial class WasmtimeModuleCache
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Cache entry {Key} cannot be used by this engine ({Reason}); removed from this host's tiers, compiling again")]
    private static partial void LogIncompatible(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Waited {Seconds} s for another process compiling key {Key}; compiling it here too")]
    private static partial void LogCompileLockTimedOut(ILogger logger, CacheKey key, double seconds);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Mapping the cache entry {Key} failed ({Reason}); trying its bytes")]
    private static partial void LogMappedFailed(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "The module '{Name}' does not match the digest it was given (key {Key}): a stale build or a stale stored digest. Loading it under the key of its bytes; rebuild the app or compute the digest again")]
    private static partial void LogStaleDigest(ILogger logger, string name, CacheKey key);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "The code cache failed to {Operation} key {Key}; continuing without it")]
    private static partial void LogCacheFailed(ILogger logger, string operation, CacheKey key, Exception exception);
}
