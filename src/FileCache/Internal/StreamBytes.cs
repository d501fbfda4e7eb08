namespace FileCache.Internal;

/// <summary>Reads a content stream into one array (source file shared by several assemblies).</summary>
internal static class StreamBytes
{
    /// <summary>Reads from the stream's position to its end.</summary>
    public static byte[] ReadToEnd(Stream content)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (TryGetRemaining(content, out int remaining))
        {
            // Known length: one exact allocation, no intermediate buffer.
            var exact = new byte[remaining];
            content.ReadExactly(exact);
            return exact;
        }

        using var buffer = new MemoryStream();
        content.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Reads from the stream's position to its end.</summary>
    public static async ValueTask<byte[]> ReadToEndAsync(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        cancellationToken.ThrowIfCancellationRequested();
        if (TryGetRemaining(content, out int remaining))
        {
            var exact = new byte[remaining];
            await content.ReadExactlyAsync(exact, cancellationToken).ConfigureAwait(false);
            return exact;
        }

        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private static bool TryGetRemaining(Stream content, out int remaining)
    {
        remaining = 0;
        if (!content.CanSeek)
        {
            return false;
        }

        long left = content.Length - content.Position;
        if (left is < 0 or > int.MaxValue)
        {
            return false;
        }

        remaining = (int)left;
        return true;
    }
}
