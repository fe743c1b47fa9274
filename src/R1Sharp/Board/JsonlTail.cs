using System.Text;
using System.Text.Json;

namespace R1Sharp.Board;

/// <summary>A line of a JSONL file that could not be used, and why (shown on the page, never thrown).</summary>
public sealed record SkippedLine(string File, int Line, string Reason);

/// <summary>
/// Reads a JSONL file that another process is still appending to, a little at a time: each <see cref="Refresh"/>
/// hands over only the complete lines written since the last one (a last line without its newline is a run still
/// writing, left for the next refresh), remembers the lines it could not parse instead of failing, and starts over
/// when the file was rewritten (a resumed trainer rewrites metrics.jsonl; a rename gives a new file).
/// </summary>
public sealed class JsonlTail
{
    /// <summary>Bytes compared before the read position to notice a rewrite that did not shrink the file.</summary>
    const int Witness = 64;
    readonly List<SkippedLine> skipped = new();
    long offset;
    int lineNo;
    byte[] witness = [];
    DateTime lastWrite;
    long lastLength = -1;

    public string Path { get; }
    /// <summary>Bumped whenever the file starts over: readers holding rows of an older generation must drop them.</summary>
    public int Generation { get; private set; }
    /// <summary>Bytes after the last newline: a line being written (or cut short by a kill).</summary>
    public long PendingBytes { get; private set; }
    public int Lines => lineNo;
    public IReadOnlyList<SkippedLine> Skipped => skipped;
    public bool Exists { get; private set; }

    public JsonlTail(string path) => Path = path;

    /// <summary>One complete line: its number (1-based), where it starts in the file, and its bytes.</summary>
    public delegate void LineHandler(int line, long start, ReadOnlySpan<byte> bytes);

    /// <summary>Reads what was appended since the last call. Returns true when the file started over (rows already
    /// handed out are gone; the handler has been given the new file's lines from the start).</summary>
    public bool Refresh(LineHandler onLine)
    {
        var info = new FileInfo(Path);
        if (!info.Exists)
        {
            bool had = Exists;
            Exists = false;
            if (had) Reset();
            return had;
        }
        Exists = true;
        if (info.Length == lastLength && info.LastWriteTimeUtc == lastWrite) return false;
        FileStream stream;
        try { stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16); }
        catch (IOException) { return false; } // gone or locked between the stat and the open: next refresh
        catch (UnauthorizedAccessException e) { NoteOnce(0, $"cannot read: {e.Message}"); return false; }
        using (stream)
        {
            bool restarted = false;
            long length = stream.Length;
            if (length < offset || !WitnessMatches(stream))
            {
                Reset();
                restarted = true;
            }
            lastLength = length;
            lastWrite = info.LastWriteTimeUtc;
            if (length == offset) { PendingBytes = 0; return restarted; }
            stream.Seek(offset, SeekOrigin.Begin);
            var buffer = new byte[(int)Math.Min(Math.Max(length - offset, 1), 1 << 20)];
            var carry = new List<byte>();
            long carryStart = offset;
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                int from = 0;
                while (from < n)
                {
                    int nl = Array.IndexOf(buffer, (byte)'\n', from, n - from);
                    if (nl < 0) { carry.AddRange(new ArraySegment<byte>(buffer, from, n - from)); break; }
                    ReadOnlySpan<byte> line;
                    byte[]? joined = null;
                    if (carry.Count > 0)
                    {
                        carry.AddRange(new ArraySegment<byte>(buffer, from, nl - from));
                        joined = carry.ToArray();
                        line = joined;
                    }
                    else line = new ReadOnlySpan<byte>(buffer, from, nl - from);
                    lineNo++;
                    long start = carryStart;
                    if (!IsBlank(line)) onLine(lineNo, start, TrimCr(line));
                    carry.Clear();
                    offset = start + line.Length + 1;
                    carryStart = offset;
                    from = nl + 1;
                }
            }
            PendingBytes = carry.Count;
            SaveWitness(stream);
            return restarted;
        }
    }

    /// <summary>Records a line the caller could not use (not JSON, wrong shape).</summary>
    public void Skip(int line, string reason)
    {
        if (skipped.Count < 1000) skipped.Add(new SkippedLine(System.IO.Path.GetFileName(Path), line, reason));
    }

    void NoteOnce(int line, string reason)
    {
        if (!skipped.Any(s => s.Line == line && s.Reason == reason)) Skip(line, reason);
    }

    /// <summary>Parses one line as a JSON object; anything else is skipped with the parser's reason.</summary>
    public JsonElement? ParseObject(int line, ReadOnlySpan<byte> bytes)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                Skip(line, $"a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object");
                return null;
            }
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            Skip(line, $"not JSON ({FirstSentence(e.Message)}): {Excerpt.Quote(bytes, 60)}");
            return null;
        }
    }

    static string FirstSentence(string message)
    {
        int cut = message.IndexOf(". ", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message.TrimEnd('.');
    }

    void Reset()
    {
        offset = 0;
        lineNo = 0;
        witness = [];
        skipped.Clear();
        PendingBytes = 0;
        lastLength = -1;
        Generation++;
    }

    bool WitnessMatches(FileStream stream)
    {
        if (witness.Length == 0) return true;
        var now = new byte[witness.Length];
        stream.Seek(offset - witness.Length, SeekOrigin.Begin);
        stream.ReadExactly(now);
        return now.AsSpan().SequenceEqual(witness);
    }

    void SaveWitness(FileStream stream)
    {
        int n = (int)Math.Min(Witness, offset);
        witness = new byte[n];
        if (n == 0) return;
        stream.Seek(offset - n, SeekOrigin.Begin);
        stream.ReadExactly(witness);
    }

    static bool IsBlank(ReadOnlySpan<byte> line)
    {
        foreach (byte b in line) if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) return false;
        return true;
    }

    static ReadOnlySpan<byte> TrimCr(ReadOnlySpan<byte> line) => line.Length > 0 && line[^1] == '\r' ? line[..^1] : line;

    /// <summary>A summary for the page: what was skipped and whether a line is still being written.</summary>
    public IEnumerable<string> Notes()
    {
        foreach (var s in skipped) yield return s.Line > 0 ? $"{s.File} line {s.Line} skipped: {s.Reason}" : $"{s.File}: {s.Reason}";
        if (PendingBytes > 0)
            yield return $"{System.IO.Path.GetFileName(Path)}: the last line is incomplete ({PendingBytes:N0} bytes without a newline; a run still writing, read when it ends)";
    }

    internal static string Utf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);
}
