using System.Text;

namespace R1Sharp.IO;

/// <summary>A tensor to write: ggml dims (ne[0] first), type, and a callback that writes exactly its bytes.</summary>
public sealed record GgufTensorSpec(string Name, long[] Dims, GgmlType Type, Action<Stream> WriteData)
{
    public long ByteSize => GgmlTypeInfo.ByteSize(Type, Dims.Aggregate(1L, (a, d) => a * d), Name);
}

/// <summary>
/// Writes GGUF v3 files: header, metadata in the order added, tensor infos, then each tensor's data padded to the
/// alignment (32, general.alignment's default). The file appears under its name only when complete.
/// </summary>
public sealed class GgufWriter
{
    readonly List<KeyValuePair<string, GgufValue>> _kv = [];
    readonly List<GgufTensorSpec> _tensors = [];
    public int Alignment { get; init; } = GgufFile.DefaultAlignment;

    public GgufWriter Add(string key, GgufValue value)
    {
        if (_kv.Any(p => p.Key == key)) throw new R1SharpException($"GGUF metadata key '{key}' is added twice");
        _kv.Add(new(key, value));
        return this;
    }

    public GgufWriter AddTensor(GgufTensorSpec t)
    {
        if (_tensors.Any(x => x.Name == t.Name)) throw new R1SharpException($"GGUF tensor '{t.Name}' is added twice");
        _tensors.Add(t);
        return this;
    }

    public void Write(string path)
    {
        string temp = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                WriteTo(stream, path);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(temp); } catch { /* the original error matters more */ }
            if (e is IOException or UnauthorizedAccessException) throw new R1SharpException($"{path}: cannot write GGUF file: {e.Message}", e);
            throw;
        }
    }

    void WriteTo(Stream stream, string path)
    {
        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_kv.Count);
        foreach (var (key, value) in _kv)
        {
            Str(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value.Type, value.Value, key);
        }
        ulong offset = 0;
        foreach (var t in _tensors)
        {
            Str(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (long d in t.Dims) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write(offset);
            offset += (ulong)Pad(t.ByteSize);
        }
        w.Flush();
        PadTo(stream);
        foreach (var t in _tensors)
        {
            long start = stream.Position;
            t.WriteData(stream);
            long written = stream.Position - start;
            if (written != t.ByteSize) throw new InvalidOperationException($"{path}: tensor '{t.Name}' wrote {written} bytes, expected {t.ByteSize}");
            PadTo(stream);
        }
    }

    long Pad(long n) => (n + Alignment - 1) / Alignment * Alignment;

    void PadTo(Stream s)
    {
        long pad = Pad(s.Position) - s.Position;
        for (long i = 0; i < pad; i++) s.WriteByte(0);
    }

    static void Str(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    static void WriteValue(BinaryWriter w, GgufValueType type, object v, string key)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write(Convert.ToByte(v)); break;
            case GgufValueType.Int8: w.Write(Convert.ToSByte(v)); break;
            case GgufValueType.UInt16: w.Write(Convert.ToUInt16(v)); break;
            case GgufValueType.Int16: w.Write(Convert.ToInt16(v)); break;
            case GgufValueType.UInt32: w.Write(Convert.ToUInt32(v)); break;
            case GgufValueType.Int32: w.Write(Convert.ToInt32(v)); break;
            case GgufValueType.Float32: w.Write(Convert.ToSingle(v)); break;
            case GgufValueType.Bool: w.Write((byte)((bool)v ? 1 : 0)); break;
            case GgufValueType.String: Str(w, (string)v); break;
            case GgufValueType.UInt64: w.Write(Convert.ToUInt64(v)); break;
            case GgufValueType.Int64: w.Write(Convert.ToInt64(v)); break;
            case GgufValueType.Float64: w.Write(Convert.ToDouble(v)); break;
            case GgufValueType.Array:
                var a = v as GgufArray ?? throw new R1SharpException($"GGUF metadata '{key}': array type needs a GgufArray value");
                if (a.ElementType == GgufValueType.Array) throw new R1SharpException($"GGUF metadata '{key}': arrays of arrays are not supported");
                w.Write((uint)a.ElementType);
                w.Write((ulong)a.Items.Count);
                foreach (var item in a.Items) WriteValue(w, a.ElementType, item, key);
                break;
            default: throw new R1SharpException($"GGUF metadata '{key}': unknown value type {type}");
        }
    }
}
