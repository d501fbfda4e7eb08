using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace FileCache;

/// <summary>
/// The 256-bit identifier of a cache entry, the .NET counterpart of wazero's <c>filecache.Key</c>
/// (<c>[sha256.Size]byte</c>).
/// </summary>
/// <remarks>
/// <para>
/// A key is 32 bytes. Its text form is 64 lowercase hexadecimal characters, which is also the
/// name of a disk entry. Parsing accepts upper- and lowercase. <c>default(CacheKey)</c> is the
/// all-zero key and is a valid key, as in Go.
/// </para>
/// <para>
/// Keys compare bytewise (the order of their text forms). Formatting and parsing do not allocate
/// through the span-based members.
/// </para>
/// </remarks>
public readonly struct CacheKey :
    IEquatable<CacheKey>,
    IComparable<CacheKey>,
    IComparable,
    ISpanFormattable,
    IUtf8SpanFormattable,
    ISpanParsable<CacheKey>,
    IUtf8SpanParsable<CacheKey>
{
    /// <summary>The size of a key in bytes (32).</summary>
    public const int Size = 32;

    /// <summary>The length of a key's text form in characters (64).</summary>
    public const int HexLength = Size * 2;

    // Four big-endian words: comparing them in order compares the bytes lexicographically.
    private readonly ulong _w0, _w1, _w2, _w3;

    /// <summary>Creates a key from exactly <see cref="Size"/> bytes.</summary>
    /// <param name="bytes">The 32 key bytes.</param>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not exactly 32 bytes long.</exception>
    public CacheKey(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"A cache key is exactly {Size} bytes; got {bytes.Length}.", nameof(bytes));
        }

        _w0 = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _w1 = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _w2 = BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]);
        _w3 = BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]);
    }

    /// <summary>Computes the SHA-256 of <paramref name="data"/> as a key.</summary>
    /// <param name="data">The bytes to hash.</param>
    /// <returns>The key whose bytes are SHA-256(<paramref name="data"/>).</returns>
    public static CacheKey Compute(ReadOnlySpan<byte> data)
    {
        Span<byte> hash = stackalloc byte[Size];
        SHA256.HashData(data, hash);
        return new CacheKey(hash);
    }

    /// <summary>Copies the 32 key bytes into <paramref name="destination"/>.</summary>
    /// <param name="destination">A span of at least 32 bytes.</param>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 32 bytes.</exception>
    public void CopyTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"The destination must hold at least {Size} bytes; it holds {destination.Length}.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt64BigEndian(destination, _w0);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _w1);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _w2);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _w3);
    }

    /// <summary>Returns the 32 key bytes as a new array.</summary>
    /// <returns>A new 32-byte array.</returns>
    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        CopyTo(bytes);
        return bytes;
    }

    /// <summary>Returns the 64 lowercase hexadecimal characters of the key.</summary>
    /// <returns>The key's text form.</returns>
    public override string ToString() => string.Create(HexLength, this, static (chars, key) => key.TryFormat(chars, out _, default, null));

    /// <summary>Formats the key (the format and provider are ignored: the text form is always lowercase hex).</summary>
    /// <param name="format">Ignored.</param>
    /// <param name="formatProvider">Ignored.</param>
    /// <returns>The key's text form.</returns>
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <summary>Writes the 64 lowercase hexadecimal characters of the key.</summary>
    /// <param name="destination">The destination; at least 64 characters are needed.</param>
    /// <param name="charsWritten">64 on success, otherwise 0.</param>
    /// <param name="format">Ignored.</param>
    /// <param name="provider">Ignored.</param>
    /// <returns><see langword="false"/> when <paramref name="destination"/> is too short.</returns>
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format = default, IFormatProvider? provider = null)
    {
        if (destination.Length < HexLength)
        {
            charsWritten = 0;
            return false;
        }

        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        for (int i = 0; i < Size; i++)
        {
            destination[2 * i] = (char)HexDigits[bytes[i] >> 4];
            destination[(2 * i) + 1] = (char)HexDigits[bytes[i] & 0xF];
        }

        charsWritten = HexLength;
        return true;
    }

    /// <summary>Writes the 64 lowercase hexadecimal characters of the key as UTF-8.</summary>
    /// <param name="utf8Destination">The destination; at least 64 bytes are needed.</param>
    /// <param name="bytesWritten">64 on success, otherwise 0.</param>
    /// <param name="format">Ignored.</param>
    /// <param name="provider">Ignored.</param>
    /// <returns><see langword="false"/> when <paramref name="utf8Destination"/> is too short.</returns>
    public bool TryFormat(Span<byte> utf8Destination, out int bytesWritten, ReadOnlySpan<char> format = default, IFormatProvider? provider = null)
    {
        if (utf8Destination.Length < HexLength)
        {
            bytesWritten = 0;
            return false;
        }

        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        for (int i = 0; i < Size; i++)
        {
            utf8Destination[2 * i] = HexDigits[bytes[i] >> 4];
            utf8Destination[(2 * i) + 1] = HexDigits[bytes[i] & 0xF];
        }

        bytesWritten = HexLength;
        return true;
    }

    /// <summary>Parses 64 hexadecimal characters (either case).</summary>
    /// <param name="s">The text.</param>
    /// <returns>The key.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="s"/> is null.</exception>
    /// <exception cref="FormatException"><paramref name="s"/> is not 64 hexadecimal characters.</exception>
    public static CacheKey Parse(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return Parse(s.AsSpan());
    }

    /// <summary>Parses 64 hexadecimal characters (either case).</summary>
    /// <param name="s">The text.</param>
    /// <returns>The key.</returns>
    /// <exception cref="FormatException"><paramref name="s"/> is not 64 hexadecimal characters.</exception>
    public static CacheKey Parse(ReadOnlySpan<char> s)
    {
        if (TryParse(s, out var key))
        {
            return key;
        }

        throw new FormatException(DescribeBadText(s.Length, s.IndexOfAnyExcept(HexChars)));
    }

    /// <summary>Parses 64 hexadecimal UTF-8 characters (either case).</summary>
    /// <param name="utf8Text">The UTF-8 text.</param>
    /// <returns>The key.</returns>
    /// <exception cref="FormatException"><paramref name="utf8Text"/> is not 64 hexadecimal characters.</exception>
    public static CacheKey Parse(ReadOnlySpan<byte> utf8Text)
    {
        if (TryParse(utf8Text, out var key))
        {
            return key;
        }

        throw new FormatException(DescribeBadText(utf8Text.Length, utf8Text.IndexOfAnyExcept(HexUtf8)));
    }

    /// <summary>Tries to parse 64 hexadecimal characters (either case).</summary>
    /// <param name="s">The text, or null.</param>
    /// <param name="result">The key on success, otherwise the all-zero key.</param>
    /// <returns><see langword="true"/> on success.</returns>
    public static bool TryParse([NotNullWhen(true)] string? s, out CacheKey result) => TryParse(s.AsSpan(), out result);

    /// <summary>Tries to parse 64 hexadecimal characters (either case).</summary>
    /// <param name="s">The text.</param>
    /// <param name="result">The key on success, otherwise the all-zero key.</param>
    /// <returns><see langword="true"/> on success.</returns>
    public static bool TryParse(ReadOnlySpan<char> s, out CacheKey result)
    {
        result = default;
        if (s.Length != HexLength)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[Size];
        for (int i = 0; i < Size; i++)
        {
            int hi = HexValue(s[2 * i]);
            int lo = HexValue(s[(2 * i) + 1]);
            if ((hi | lo) < 0)
            {
                return false;
            }

            bytes[i] = (byte)((hi << 4) | lo);
        }

        result = new CacheKey(bytes);
        return true;
    }

    /// <summary>Tries to parse 64 hexadecimal UTF-8 characters (either case).</summary>
    /// <param name="utf8Text">The UTF-8 text.</param>
    /// <param name="result">The key on success, otherwise the all-zero key.</param>
    /// <returns><see langword="true"/> on success.</returns>
    public static bool TryParse(ReadOnlySpan<byte> utf8Text, out CacheKey result)
    {
        result = default;
        if (utf8Text.Length != HexLength)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[Size];
        for (int i = 0; i < Size; i++)
        {
            int hi = HexValue((char)utf8Text[2 * i]);
            int lo = HexValue((char)utf8Text[(2 * i) + 1]);
            if ((hi | lo) < 0)
            {
                return false;
            }

            bytes[i] = (byte)((hi << 4) | lo);
        }

        result = new CacheKey(bytes);
        return true;
    }

    static CacheKey IParsable<CacheKey>.Parse(string s, IFormatProvider? provider) => Parse(s);

    static bool IParsable<CacheKey>.TryParse([NotNullWhen(true)] string? s, IFormatProvider? provider, out CacheKey result) => TryParse(s, out result);

    static CacheKey ISpanParsable<CacheKey>.Parse(ReadOnlySpan<char> s, IFormatProvider? provider) => Parse(s);

    static bool ISpanParsable<CacheKey>.TryParse(ReadOnlySpan<char> s, IFormatProvider? provider, out CacheKey result) => TryParse(s, out result);

    static CacheKey IUtf8SpanParsable<CacheKey>.Parse(ReadOnlySpan<byte> utf8Text, IFormatProvider? provider) => Parse(utf8Text);

    static bool IUtf8SpanParsable<CacheKey>.TryParse(ReadOnlySpan<byte> utf8Text, IFormatProvider? provider, out CacheKey result) => TryParse(utf8Text, out result);

    /// <inheritdoc/>
    public bool Equals(CacheKey other) => _w0 == other._w0 && _w1 == other._w1 && _w2 == other._w2 && _w3 == other._w3;

    /// <inheritdoc/>
    public override bool Equals([NotNullWhen(true)] object? obj) => obj is CacheKey other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_w0, _w1, _w2, _w3);

    /// <summary>Compares the key bytes lexicographically.</summary>
    /// <param name="other">The key to compare with.</param>
    /// <returns>A negative number, zero or a positive number.</returns>
    public int CompareTo(CacheKey other)
    {
        int c = _w0.CompareTo(other._w0);
        if (c == 0) c = _w1.CompareTo(other._w1);
        if (c == 0) c = _w2.CompareTo(other._w2);
        if (c == 0) c = _w3.CompareTo(other._w3);
        return c;
    }

    /// <inheritdoc/>
    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        CacheKey other => CompareTo(other),
        _ => throw new ArgumentException($"Object must be of type {nameof(CacheKey)}.", nameof(obj)),
    };

    /// <summary>Compares two keys for equality.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns><see langword="true"/> when the keys are equal.</returns>
    public static bool operator ==(CacheKey left, CacheKey right) => left.Equals(right);

    /// <summary>Compares two keys for inequality.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns><see langword="true"/> when the keys differ.</returns>
    public static bool operator !=(CacheKey left, CacheKey right) => !left.Equals(right);

    /// <summary>Bytewise less-than.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns><see langword="true"/> when <paramref name="left"/> sorts first.</returns>
    public static bool operator <(CacheKey left, CacheKey right) => left.CompareTo(right) < 0;

    /// <summary>Bytewise less-than-or-equal.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns><see langword="true"/> when <paramref name="left"/> does not sort after <paramref name="right"/>.</returns>
    public static bool operator <=(CacheKey left, CacheKey right) => left.CompareTo(right) <= 0;

    /// <summary>Bytewise greater-than.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns><see langword="true"/> when <paramref name="left"/> sorts last.</returns>
    public static bool operator >(CacheKey left, CacheKey right) => left.CompareTo(right) > 0;

    /// <summary>Bytewise greater-than-or-equal.</summary>
    /// <param name="left">The first key.</param>
    /// <param name="right">The second key.</param>
    /// <returns><see langword="true"/> when <paramref name="left"/> does not sort before <paramref name="right"/>.</returns>
    public static bool operator >=(CacheKey left, CacheKey right) => left.CompareTo(right) >= 0;

    private static ReadOnlySpan<byte> HexDigits => "0123456789abcdef"u8;

    private static readonly System.Buffers.SearchValues<char> HexChars = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF");
    private static readonly System.Buffers.SearchValues<byte> HexUtf8 = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF"u8);

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    private static string DescribeBadText(int length, int firstBadIndex) => length != HexLength
        ? $"A cache key is {HexLength} hexadecimal characters; got {length}."
        : $"A cache key is {HexLength} hexadecimal characters; the character at index {firstBadIndex} is not hexadecimal.";
}
