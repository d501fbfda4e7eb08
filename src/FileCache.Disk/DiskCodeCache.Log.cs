using Microsoft.Extensions.Logging;

namespace FileCache.Disk;

/// <summary>Source-generated log messages of the disk backend.</summary>
internal sealed partial class DiskCodeCache
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Cache entry {Key} at '{Path}' is unusable ({Reason}); treated as a miss and removed")]
    private static partial void LogCorruptEntry(ILogger logger, CacheKey key, string path, string reason);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Could not delete '{Path}'")]
    private static partial void LogDeleteFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Trimmed cache directory '{Directory}': removed {Entries} entries and {Temps} stale temp files; {Bytes} bytes remain")]
    private static partial void LogTrimmed(ILogger logger, string directory, int entries, int temps, long bytes);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Trimming cache directory '{Directory}' failed")]
    private static partial void LogTrimFailed(ILogger logger, string directory, Exception exception);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "{Problem}: others can write to the cache directory '{Directory}'. Entries are authenticated with the configured key and loaders get private sealed copies, never the shared files")]
    private static partial void LogSharedDirectory(ILogger logger, string directory, string problem);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "The read-only cache directory '{Directory}' cannot be used, so its lookups are misses: {Reason}")]
    private static partial void LogReadOnlyUnusable(ILogger logger, string directory, string reason);
}
