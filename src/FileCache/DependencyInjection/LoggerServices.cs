namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Loggers for the library's classes without the container's open-generic <c>ILogger&lt;T&gt;</c> (see <see cref="ClosedOptionsServices"/>).</summary>
internal static class LoggerServices
{
    /// <summary>The logger <c>ILogger&lt;T&gt;</c> would resolve to (a <see cref="Logging.Logger{T}"/> over the host's factory), or <see langword="null"/> without logging.</summary>
    public static Logging.ILogger<T>? GetLogger<T>(this IServiceProvider services)
        => services.GetService<Logging.ILoggerFactory>() is { } factory ? new Logging.Logger<T>(factory) : null;
}
