using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers the options services of one options type as closed types, with the lifetimes
/// <c>AddOptions()</c> gives their open forms. The container resolves an open-generic registration
/// with <c>MakeGenericType</c>, which under NativeAOT builds the type at run time (the type loader):
/// measured as most of a warm WasmHost start's managed time. A closed registration names types the
/// compiler has already built. Nothing changes for a host that registered its own (TryAdd).
/// </summary>
internal static class ClosedOptionsServices
{
    public static void Add<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(IServiceCollection services)
        where TOptions : class
    {
        services.TryAddSingleton<IOptionsMonitor<TOptions>, OptionsMonitor<TOptions>>();
        services.TryAddTransient<IOptionsFactory<TOptions>, OptionsFactory<TOptions>>();
        services.TryAddSingleton<IOptionsMonitorCache<TOptions>, OptionsCache<TOptions>>();
    }
}

