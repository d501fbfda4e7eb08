using Microsoft.Extensions.Logging;

/// <summary>
/// Warnings and errors to standard error, one line each. Hand-written instead of
/// Microsoft.Extensions.Logging.Console because that provider costs about 6 ms at its first logger
/// in a NativeAOT process here (its queue thread, console streams, formatter options), three times
/// an empty program's whole run, and a command-line host needs only these lines.
/// </summary>
internal sealed class StderrLoggerProvider : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new StderrLogger(categoryName);

    public void Dispose()
    {
    }

    private sealed class StderrLogger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                Console.Error.WriteLine($"{logLevel.ToString().ToLowerInvariant()}: {category}: {formatter(state, exception)}{(exception is null ? "" : " (" + exception.Message + ")")}");
            }
        }
    }
}
