using System.Buffers.Binary;
using System.Numerics;

namespace FileCache;

/// <summary>
/// Incremental SHA-256 (FIPS 180-4) in managed code, for the few hundred bytes of a key's encoding.
/// </summary>
/// <remarks>
/// Hand-written on purpose: .NET's SHA-256 on Linux is OpenSSL's, and the first use in a process
/// loads and initialises libssl and libcrypto, measured at 3.5–6.5 ms in a NativeAOT host's warm
/// start, where a key from a build-time digest hashes under a kilobyte. Bulk data (a module's
/// chunks, entry frames) still goes to OpenSSL, which is several times faster per byte. Tests
/// compare this with <see cref="System.Security.Cryptography.SHA256"/> on the NIST vectors and on
/// random inputs split at random points.
/// </remarks>
internal sealed class SmallSha256
{
    private static ReadOnlySpan<uint> K =>
    [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    private readonly uint[] _state = new uint[8];
    private readonly byte[] _block = new byte[64];
    private readonly uint[] _w = new uint[64];
    private int _used;
    private ulong _length;

    public SmallSha256() => Reset();

    public void Append(ReadOnlySpan<byte> data)
    {
        _length += (ulong)data.Length;
        if (_used > 0)
        {
            int n = Math.Min(64 - _used, data.Length);
            data[..n].CopyTo(_block.AsSpan(_used));
            _used += n;
            data = data[n..];
            if (_used < 64)
            {
                return;
            }

            Compress(_block);
            _used = 0;
        }

        for (; data.Length >= 64; data = data[64..])
        {
            Compress(data);
        }

        data.CopyTo(_block);
        _used = data.Length;
    }

    /// <summary>Writes the digest (32 bytes) and starts over.</summary>
    public void GetHashAndReset(Span<byte> digest)
    {
        ulong bits = _length * 8;
        _block[_used++] = 0x80;
        if (_used > 56)
        {
            _block.AsSpan(_used).Clear();
            Compress(_block);
            _used = 0;
        }

        _block.AsSpan(_used, 56 - _used).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(_block.AsSpan(56), bits);
        Compress(_block);
        for (int i = 0; i < 8; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(digest[(i * 4)..], _state[i]);
        }

        Reset();
    }

    private void Reset()
    {
        ReadOnlySpan<uint> initial = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
        initial.CopyTo(_state);
        _used = 0;
        _length = 0;
    }

    private void Compress(ReadOnlySpan<byte> block)
    {
        var w = _w;
        for (int i = 0; i < 16; i++)
        {
            w[i] = BinaryPrimitives.ReadUInt32BigEndian(block[(i * 4)..]);
        }

        for (int i = 16; i < 64; i++)
        {
            uint s0 = BitOperations.RotateRight(w[i - 15], 7) ^ BitOperations.RotateRight(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint s1 = BitOperations.RotateRight(w[i - 2], 17) ^ BitOperations.RotateRight(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }

        uint a = _state[0], b = _state[1], c = _state[2], d = _state[3], e = _state[4], f = _state[5], g = _state[6], h = _state[7];
        var k = K;
        for (int i = 0; i < 64; i++)
        {
            uint t1 = h + (BitOperations.RotateRight(e, 6) ^ BitOperations.RotateRight(e, 11) ^ BitOperations.RotateRight(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            uint t2 = (BitOperations.RotateRight(a, 2) ^ BitOperations.RotateRight(a, 13) ^ BitOperations.RotateRight(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }

        _state[0] += a;
        _state[1] += b;
        _state[2] += c;
        _state[3] += d;
        _state[4] += e;
        _state[5] += f;
        _state[6] += g;
        _state[7] += h;
    }
}
