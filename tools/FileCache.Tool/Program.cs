// filecache: stats, verify, trim, clear, warm, export and import for a FileCache disk cache.
// Every command is a thin shell over FileCache.Disk (and FileCache.Wasmtime for warm): the entry
// format, the trust checks and eviction are the library's. Exit codes: see Cli.
return FileCache.Tool.Cli.Run(args, Console.Out, Console.Error);
