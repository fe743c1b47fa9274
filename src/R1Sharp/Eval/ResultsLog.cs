using System.Text;
using System.Text.Json;

namespace R1Sharp.Eval;

/// <summary>
/// The append-only results JSONL that makes an eval resumable: each graded sample is one line, written and flushed
/// as it arrives, so a killed run loses at most the line being written. On open, a torn last line (no newline) is cut
/// off, and the finished samples are read back so the runner can skip them.
/// </summary>
public sealed class ResultsLog : IDisposable
{
    static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    readonly FileStream stream;
    readonly object gate = new();

    public string Path { get; }
    /// <summary>Every record in the file, in order, including those of other settings.</summary>
    public List<SampleRecord> Records { get; }

    public ResultsLog(string path)
    {
        Path = path;
        Records = Read(path, out long goodLength);
        stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        stream.SetLength(goodLength); // drops a line torn by an interruption; that sample is simply redone
        stream.Seek(0, SeekOrigin.End);
    }

    /// <summary>Appends and flushes one record; safe to call from several threads.</summary>
    public void Append(SampleRecord record)
    {
        var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, Json) + "\n");
        lock (gate)
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: false);
            Records.Add(record);
        }
    }

    /// <summary>Reads complete lines; a last line without its newline, or one that is not a record, ends the good part
    /// only if it is the last (a bad line in the middle means the file is not ours: say so).</summary>
    static List<SampleRecord> Read(string path, out long goodLength)
    {
        var records = new List<SampleRecord>();
        goodLength = 0;
        if (!File.Exists(path)) return records;
        byte[] all = File.ReadAllBytes(path);
        int start = 0, lineNo = 0;
        while (start < all.Length)
        {
            int nl = Array.IndexOf(all, (byte)'\n', start);
            if (nl < 0) break; // torn tail
            lineNo++;
            var line = new ReadOnlySpan<byte>(all, start, nl - start);
            if (line.Trim((byte)' ').Length > 0)
            {
                SampleRecord? r;
                try { r = JsonSerializer.Deserialize<SampleRecord>(line, Json); }
                catch (JsonException e) { throw new R1SharpException($"{path}:{lineNo}: not a results line ({e.Message}); use another --out or delete the file"); }
                if (r is null) throw new R1SharpException($"{path}:{lineNo}: not a results line");
                records.Add(r);
            }
            start = nl + 1;
            goodLength = start;
        }
        return records;
    }

    public void Dispose() => stream.Dispose();
}
