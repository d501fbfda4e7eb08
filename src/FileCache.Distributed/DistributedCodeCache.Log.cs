using Microsoft.Extensions.Logging;

namespace FileCache.Distributed;

internal sealed partial class DistributedCodeCache
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "The distributed store failed to {Operation} key {Key}; continuing without it")]
    private static partial void LogStoreFailed(ILogger logger, string operation, CacheKey key, Exception exception);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "The distributed store is skipped after repeated failures; did not {Operation} key {Key}")]
    private static partial void LogSkipped(ILogger logger, string operation, CacheKey key);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Value of key {Key} in the distributed store ('{StoreKey}') is unusable here ({Reason}); treated as a miss and {Disposition}")]
    private static partial void LogRejectedValue(ILogger logger, CacheKey key, string storeKey, string reason, string disposition);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Did not send key {Key} to the distributed store: {Length} bytes exceed MaxEntrySize {MaxEntrySize}")]
    private static partial void LogTooLarge(ILogger logger, CacheKey key, long length, long maxEntrySize);
}
