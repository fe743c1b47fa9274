namespace R1Sharp.Board;

/// <summary>Reads chosen lines of a file by their byte ranges, in 4 MB windows: lines asked for in file order (a
/// search over a whole rollouts.jsonl) cost one sequential pass, a page of lines a few small reads.</summary>
sealed class LineReader : IDisposable
{
    const int Window = 4 << 20;
    readonly FileStream stream;
    byte[] buffer = new byte[0];
    long bufferStart;
    int bufferLength;

    public LineReader(string path) =>
        stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);

    /// <summary>The bytes [start, start + length), or an empty span when the file no longer holds them (it was cut or
    /// rewritten under us: the caller's index is stale and the next refresh rebuilds it).</summary>
    public ReadOnlySpan<byte> Read(long start, int length)
    {
        if (start < bufferStart || start + length > bufferStart + bufferLength)
        {
            int size = Math.Max(Window, length);
            if (buffer.Length < size) buffer = new byte[size];
            stream.Seek(start, SeekOrigin.Begin);
            int got = 0, n;
            while (got < size && (n = stream.Read(buffer, got, size - got)) > 0) got += n;
            bufferStart = start;
            bufferLength = got;
            if (got < length) return ReadOnlySpan<byte>.Empty;
        }
        return new ReadOnlySpan<byte>(buffer, (int)(start - bufferStart), length);
    }

    public void Dispose() => stream.Dispose();
}
