using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace FileCache;

/// <summary>
/// The canonical key encoder that generated code calls and hand-written code may use: an
/// incremental SHA-256 over a fixed encoding of values (see <c>docs/key-encoding.md</c>).
/// </summary>
/// <remarks>
/// Integers are little-endian with their declared width; booleans one byte; strings a 32-bit
/// UTF-8 length (0xFFFFFFFF for null) then the bytes; byte sequences a 32-bit length then the
/// bytes; nullable values a presence byte; the Wasm bytes their length and the SHA-256 of each
/// 1 MiB chunk. The hash object is reused per thread, so deriving a key for a module under 4 MiB
/// allocates nothing after the first use on a thread.
/// </remarks>
public ref struct CacheKeyBuilder
{
    // Throws on lone surrogates instead of writing U+FFFD, so distinct strings never share a key.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The first bytes of every encoding; changes only if the encoding itself changes.</summary>
    public static ReadOnlySpan<byte> EncodingMagic => "FileCache.Key/v1\0"u8;

    [ThreadStatic]
    private static SmallSha256? s_cached;

    private SmallSha256? _hash; // managed: a key's encoding is small, and OpenSSL's first use costs milliseconds (SmallSha256.cs)

    /// <summary>Starts an encoding: writes <see cref="EncodingMagic"/>, the domain and the version.</summary>
    /// <param name="domain">What the key is for.</param>
    /// <param name="version">The key type's version.</param>
    /// <returns>The builder.</returns>
    public static CacheKeyBuilder Create(string domain, int version)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var hash = s_cached ?? new SmallSha256();
        s_cached = null;
        var builder = new CacheKeyBuilder { _hash = hash };
        builder.AppendRaw(EncodingMagic);
        builder.Append(domain);
        builder.Append(version);
        return builder;
    }

    /// <summary>Appends raw bytes with no length prefix (fixed-size values such as fingerprints).</summary>
    /// <param name="bytes">The bytes.</param>
    public readonly void AppendRaw(ReadOnlySpan<byte> bytes) => Hash.Append(bytes);

    /// <summary>Appends a boolean as one byte (0 or 1).</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(bool value) => AppendRaw([value ? (byte)1 : (byte)0]);

    /// <summary>Appends one byte.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(byte value) => AppendRaw([value]);

    /// <summary>Appends one byte.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(sbyte value) => AppendRaw([(byte)value]);

    /// <summary>Appends 2 bytes, little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(short value) => Append((ushort)value);

    /// <summary>Appends 2 bytes, little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        AppendRaw(b);
    }

    /// <summary>Appends a UTF-16 code unit as 2 bytes, little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(char value) => Append((ushort)value);

    /// <summary>Appends 4 bytes, little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(int value) => Append((uint)value);

    /// <summary>Appends 4 bytes, little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        AppendRaw(b);
    }

    /// <summary>Appends 8 bytes, little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(long value) => Append((ulong)value);

    /// <summary>Appends 8 bytes, little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        AppendRaw(b);
    }

    /// <summary>Appends the IEEE 754 bits, 4 bytes little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(float value) => Append(BitConverter.SingleToUInt32Bits(value));

    /// <summary>Appends the IEEE 754 bits, 8 bytes little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(double value) => Append(BitConverter.DoubleToUInt64Bits(value));

    /// <summary>Appends the 16 bytes of <see cref="Guid.TryWriteBytes(Span{byte})"/>.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(Guid value)
    {
        Span<byte> b = stackalloc byte[16];
        value.TryWriteBytes(b);
        AppendRaw(b);
    }

    /// <summary>Appends the ticks, 8 bytes little-endian.</summary>
    /// <param name="value">The value.</param>
    public readonly void Append(TimeSpan value) => Append(value.Ticks);

    /// <summary>Appends a string: its UTF-8 length as 4 bytes (0xFFFFFFFF for null), then its UTF-8 bytes.</summary>
    /// <param name="value">The value, or null.</param>
    /// <param name="valueName">What the value is, for the error message; filled in by the compiler.</param>
    /// <exception cref="ArgumentException">The string is ill-formed UTF-16 (a lone surrogate), which has
    /// no UTF-8 encoding: encoding it with replacement characters would give different strings one key.</exception>
    public readonly void Append(string? value, [CallerArgumentExpression(nameof(value))] string? valueName = null)
    {
        if (value is null)
        {
            Append(uint.MaxValue);
            return;
        }

        int length;
        try
        {
            length = StrictUtf8.GetByteCount(value);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"Key member '{valueName}' is not well-formed UTF-16: a lone surrogate at index {e.Index} has no UTF-8 encoding, so it cannot be part of a cache key.", nameof(value), e);
        }

        Append((uint)length);
        if (length <= 256)
        {
            Span<byte> utf8 = stackalloc byte[length];
            StrictUtf8.GetBytes(value, utf8);
            AppendRaw(utf8);
        }
        else
        {
            AppendRaw(StrictUtf8.GetBytes(value));
        }
    }

    /// <summary>Appends bytes: their length as 4 bytes (<c>uint</c>, as for every count), then the bytes.</summary>
    /// <param name="bytes">The bytes.</param>
    public readonly void AppendBytes(ReadOnlySpan<byte> bytes)
    {
        AppendCount(bytes.Length);
        AppendRaw(bytes);
    }

    /// <summary>
    /// Appends an assembly's simple name and version as two strings, the same encoding as a
    /// compile-time <c>VersionOf</c> entry, read from the loaded assembly (once per assembly).
    /// </summary>
    /// <param name="assembly">The assembly, for example <c>typeof(Wasmtime.Engine).Assembly</c>.</param>
    public readonly void AppendAssemblyVersion(System.Reflection.Assembly assembly)
    {
        var version = VersionOf(assembly);
        Append(version.Name);
        Append(version.Full);
    }

    /// <summary>
    /// Appends an assembly's simple name and only its major version (as text, for example <c>"50"</c>),
    /// read once per assembly: for a runtime whose compiled code is compatible within a major version
    /// (<see cref="WasmCodeCacheKeyAttribute.RuntimeMajorVersionOf"/>).
    /// </summary>
    /// <param name="assembly">The assembly.</param>
    public readonly void AppendAssemblyMajorVersion(System.Reflection.Assembly assembly)
    {
        var version = VersionOf(assembly);
        Append(version.Name);
        Append(version.Major);
    }

    /// <summary>The encoding of <see cref="AppendAssemblyMajorVersion"/>, for a given version (tests simulate releases with it).</summary>
    internal readonly void AppendMajorVersion(string name, Version? version)
    {
        Append(name);
        Append(MajorText(version));
    }

    /// <summary>An assembly's name, version and major version as key text, read once per assembly (keys are derived on every load).</summary>
    private static (string Name, string Full, string Major) VersionOf(System.Reflection.Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return AssemblyVersions.GetOrAdd(assembly, static a =>
        {
            var identity = a.GetName();
            return (identity.Name ?? "", identity.Version?.ToString() ?? "", MajorText(identity.Version));
        });
    }

    private static string MajorText(Version? version) => version is null ? "" : version.Major.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<System.Reflection.Assembly, (string Name, string Full, string Major)> AssemblyVersions = new();

    /// <summary>Appends a presence byte: 1 when a nullable value or reference follows, 0 when absent.</summary>
    /// <param name="present">Whether a value follows.</param>
    public readonly void AppendPresence(bool present) => Append(present);

    /// <summary>Appends a collection's element count as 4 bytes (0xFFFFFFFF for a null collection).</summary>
    /// <param name="count">The count, or -1 for null.</param>
    public readonly void AppendCount(int count) => Append(count < 0 ? uint.MaxValue : (uint)count);

    /// <summary>Appends the process architecture and, when asked, the CPU feature bits.</summary>
    /// <param name="includeCpuFeatures">Whether to append <see cref="CpuFeatures.Current"/>.</param>
    public readonly void AppendTarget(bool includeCpuFeatures)
    {
        Append(CpuFeatures.Architecture);
        Append(includeCpuFeatures);
        if (includeCpuFeatures)
        {
            Append(CpuFeatures.Current);
        }
    }

    /// <summary>The chunk size of the Wasm bytes' tree hash in <see cref="Finish(ReadOnlySpan{byte})"/> (1 MiB).</summary>
    public const int WasmChunkSize = 1 << 20;

    /// <summary>
    /// Finishes: appends the Wasm bytes and returns the key. The bytes enter as their length (8
    /// bytes) followed by the SHA-256 of each <see cref="WasmChunkSize"/> chunk in order, so the
    /// chunks of a large module hash on all cores (a 13 MB module is most of a cache hit's time).
    /// The builder cannot be used afterwards.
    /// </summary>
    /// <param name="wasm">The module's bytes.</param>
    /// <returns>The key.</returns>
    public CacheKey Finish(ReadOnlySpan<byte> wasm)
    {
        Append((ulong)wasm.Length);
        int chunks = ChunkCount(wasm.Length);
        if (chunks < 4)
        {
            Span<byte> digest = stackalloc byte[CacheKey.Size];
            for (int i = 0; i < chunks; i++)
            {
                SHA256.HashData(Chunk(wasm, i), digest);
                AppendRaw(digest);
            }
        }
        else
        {
            AppendRaw(HashChunksInParallel(wasm, chunks));
        }

        return ToKey();
    }

    /// <summary>
    /// Finishes with a module's digest computed before (at build time, or by <see cref="WasmDigest.Compute"/>):
    /// the same key as <see cref="Finish(ReadOnlySpan{byte})"/> of the module's bytes, with no hashing of them.
    /// The builder cannot be used afterwards.
    /// </summary>
    /// <param name="digest">The module's digest.</param>
    /// <returns>The key.</returns>
    public CacheKey Finish(WasmDigest digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        Append((ulong)digest.Length);
        AppendRaw(digest.ChunkDigests);
        return ToKey();
    }

    /// <summary>The SHA-256 of each chunk of <paramref name="wasm"/>, concatenated.</summary>
    internal static byte[] ChunkDigests(ReadOnlySpan<byte> wasm)
    {
        int chunks = ChunkCount(wasm.Length);
        if (chunks >= 4)
        {
            return HashChunksInParallel(wasm, chunks);
        }

        var digests = new byte[chunks * CacheKey.Size];
        for (int i = 0; i < chunks; i++)
        {
            SHA256.HashData(Chunk(wasm, i), digests.AsSpan(i * CacheKey.Size, CacheKey.Size));
        }

        return digests;
    }

    private static int ChunkCount(int length) => (int)(((long)length + WasmChunkSize - 1) / WasmChunkSize);

    private static ReadOnlySpan<byte> Chunk(ReadOnlySpan<byte> wasm, int index)
    {
        int start = index * WasmChunkSize;
        return wasm.Slice(start, Math.Min(WasmChunkSize, wasm.Length - start));
    }

    private static unsafe byte[] HashChunksInParallel(ReadOnlySpan<byte> wasm, int chunks)
    {
        var digests = new byte[chunks * CacheKey.Size];
        fixed (byte* start = wasm)
        {
            // A span cannot enter a lambda; the pinned address and length can.
            nint address = (nint)start;
            int length = wasm.Length;
            Parallel.For(0, chunks, i =>
            {
                var all = new ReadOnlySpan<byte>((void*)address, length);
                SHA256.HashData(Chunk(all, i), digests.AsSpan(i * CacheKey.Size, CacheKey.Size));
            });
        }

        return digests;
    }

    /// <summary>Returns the SHA-256 of everything appended as a key. The builder cannot be used afterwards.</summary>
    /// <returns>The key.</returns>
    public CacheKey ToKey()
    {
        var hash = Hash;
        Span<byte> digest = stackalloc byte[CacheKey.Size];
        hash.GetHashAndReset(digest);
        _hash = null;
        s_cached = hash;
        return new CacheKey(digest);
    }

    private readonly SmallSha256 Hash => _hash ?? throw new InvalidOperationException("Use CacheKeyBuilder.Create to start a key; a finished builder cannot be reused.");
}
