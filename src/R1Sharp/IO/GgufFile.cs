using System.Text;
using Microsoft.Win32.SafeHandles;

namespace R1Sharp.IO;

/// <summary>A tensor's entry in a GGUF file: dims in ggml order (ne[0], the contiguous one, first).</summary>
public sealed record GgufTensorInfo(string Name, long[] Dims, GgmlType Type, ulong Offset)
{
    public long Elements => Dims.Aggregate(1L, (a, d) => a * d);
    public long ByteSize => GgmlTypeInfo.ByteSize(Type, Elements, Name);
    /// <summary>The PyTorch/HF shape: ggml dims reversed.</summary>
    public long[] TorchShape => Dims.Reverse().ToArray();
}

/// <summary>
/// An open GGUF v2/v3 file (ggml's gguf.h layout): header, metadata key/values, tensor infos, then the data section
/// aligned to general.alignment (32 by default). Open reads everything but the tensor data, which is read on demand.
/// </summary>
public sealed class GgufFile : IDisposable
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    public const int DefaultAlignment = 32;

    readonly SafeFileHandle _file;
    public string Path { get; }
    public uint Version { get; }
    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> MetadataList { get; }
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    public long DataStart { get; }
    public int Alignment { get; }

    GgufFile(string path, SafeFileHandle file, uint version, List<KeyValuePair<string, GgufValue>> kv, List<GgufTensorInfo> tensors, long dataStart, int alignment)
    {
        Path = path; _file = file; Version = version; MetadataList = kv; Tensors = tensors; DataStart = dataStart; Alignment = alignment;
        var d = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        foreach (var (k, v) in kv)
            if (!d.TryAdd(k, v)) throw new R1SharpException($"{path}: metadata key {Excerpt.Quote(k)} appears twice");
        Metadata = d;
    }

    /// <param name="skipArrays">metadata arrays whose keys match are stepped over, not read (a model run from the file
    /// needs none of its 151,936 token strings and merges: ~54 MB of .NET objects for a Qwen vocabulary)</param>
    public static GgufFile Open(string path, Func<string, bool>? skipArrays = null)
    {
        SafeFileHandle file;
        try { file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new R1SharpException($"{path}: cannot open GGUF file: {e.Message}", e);
        }
        try
        {
            // A stream of its own for the header: disposing a FileStream would close the handle kept for the data.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            var r = new GgufReader(stream, path);
            uint magic = r.U32();
            if (magic != Magic) throw new R1SharpException($"{path}: not a GGUF file (magic 0x{magic:X8}, expected 0x{Magic:X8} \"GGUF\")");
            uint version = r.U32();
            if (version is not (2 or 3)) throw new R1SharpException($"{path}: GGUF version {version} is not supported (expected 2 or 3)");
            ulong nTensors = r.U64(), nKv = r.U64();
            if (nTensors > 1_000_000 || nKv > 1_000_000) throw new R1SharpException($"{path}: implausible header ({nTensors} tensors, {nKv} metadata keys)");
            var kv = new List<KeyValuePair<string, GgufValue>>();
            for (ulong i = 0; i < nKv; i++)
            {
                string key = r.Str(GgufReader.MaxNameBytes, "metadata key");
                var type = (GgufValueType)r.U32();
                if (type == GgufValueType.Array && skipArrays is not null && skipArrays(key)) { r.SkipArray(key); continue; }
                kv.Add(new(key, r.Value(type, key)));
            }
            int alignment = DefaultAlignment;
            var al = kv.FirstOrDefault(p => p.Key == "general.alignment").Value;
            if (al != null)
            {
                alignment = al.Value is uint u ? (int)u : throw new R1SharpException($"{path}: general.alignment must be a uint32, found {al.Type}");
                if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw new R1SharpException($"{path}: general.alignment {alignment} is not a power of two");
            }
            var tensors = new List<GgufTensorInfo>();
            for (ulong i = 0; i < nTensors; i++)
            {
                string name = r.Str(GgufReader.MaxNameBytes, "tensor name");
                uint nDims = r.U32();
                if (nDims is 0 or > 4) throw new R1SharpException($"{path}: tensor {Excerpt.Quote(name)} has {nDims} dimensions (expected 1 to 4)");
                var dims = new long[nDims];
                for (int d = 0; d < nDims; d++) dims[d] = checked((long)r.U64());
                var type = (GgmlType)r.U32();
                ulong offset = r.U64();
                if (offset % (ulong)alignment != 0) throw new R1SharpException($"{path}: tensor {Excerpt.Quote(name)} data offset {offset} is not {alignment}-byte aligned");
                tensors.Add(new GgufTensorInfo(name, dims, type, offset));
            }
            long dataStart = (stream.Position + alignment - 1) / alignment * alignment;
            long length = RandomAccess.GetLength(file);
            foreach (var t in tensors)
                if (GgmlTypeInfo.IsKnown(t.Type) && dataStart + (long)t.Offset + t.ByteSize > length)
                    throw new R1SharpException($"{path}: tensor {Excerpt.Quote(t.Name)} ends at byte {dataStart + (long)t.Offset + t.ByteSize}, past the end of the file ({length} bytes); the file is truncated");
            CheckNoOverlap(path, tensors);
            return new GgufFile(path, file, version, kv, tensors, dataStart, alignment);
        }
        catch (EndOfStreamException)
        {
            file.Dispose();
            throw new R1SharpException($"{path}: GGUF header is truncated");
        }
        catch { file.Dispose(); throw; }
    }

    /// <summary>A tensor whose type or shape is wrong in the header (a Q4_K tensor labelled Q8_0, say) claims more
    /// bytes than its data has before the next tensor starts: caught here, naming it, rather than read as garbage.</summary>
    static void CheckNoOverlap(string path, List<GgufTensorInfo> tensors)
    {
        var known = tensors.Where(t => GgmlTypeInfo.IsKnown(t.Type)).OrderBy(t => t.Offset).ToList();
        for (int i = 0; i + 1 < known.Count; i++)
        {
            var (t, next) = (known[i], known[i + 1]);
            if ((long)t.Offset + t.ByteSize > (long)next.Offset)
                throw new R1SharpException($"{path}: tensor {Excerpt.Quote(t.Name)} ({t.Type}, [{string.Join(", ", t.Dims)}], {t.ByteSize} bytes at data offset {t.Offset}) runs into tensor {Excerpt.Quote(next.Name)} at {next.Offset}; its type or shape in the header is wrong");
        }
    }

    public GgufTensorInfo Tensor(string name) =>
        Tensors.FirstOrDefault(t => t.Name == name) ?? throw new R1SharpException($"{Path}: no tensor named {Excerpt.Quote(name)}");

    public bool HasTensor(string name) => Tensors.Any(t => t.Name == name);

    /// <summary>Reads <paramref name="buffer"/>.Length bytes of a tensor's data starting <paramref name="offset"/> bytes into it.</summary>
    public void ReadData(GgufTensorInfo t, long offset, Span<byte> buffer) =>
        SafetensorsHeader.ReadExactly(_file, buffer, DataStart + (long)t.Offset + offset, Path);

    // Typed metadata access with errors that name the key.
    public string GetString(string key) => Get(key) is { Value: string s } ? s : throw WrongType(key, "a string");
    public string? TryString(string key) => Metadata.TryGetValue(key, out var v) && v.Value is string s ? s : null;
    public long GetInt(string key) => TryInt(key) ?? throw WrongType(key, "an integer");
    public long? TryInt(string key) => Metadata.TryGetValue(key, out var v) ? v.Value switch
    {
        uint u => u, int i => i, ulong ul => (long)ul, long l => l, ushort us => us, short s => s, byte b => b, sbyte sb => sb, _ => null,
    } : null;
    public double? TryFloat(string key) => Metadata.TryGetValue(key, out var v) ? v.Value switch { float f => f, double d => d, _ => null } : null;
    /// <summary>An optional integer: null when absent, an error naming the key when present with another type.</summary>
    public long? OptionalInt(string key) => Metadata.ContainsKey(key) ? GetInt(key) : null;
    /// <summary>An optional finite number: null when absent, an error naming the key when present with another type,
    /// NaN or an infinity.</summary>
    public double? OptionalFiniteFloat(string key)
    {
        if (!Metadata.ContainsKey(key)) return null;
        double v = TryFloat(key) ?? throw WrongType(key, "a number");
        return double.IsFinite(v) ? v : throw new R1SharpException($"{Path}: metadata key {Excerpt.Quote(key)} should be a finite number, found {v.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
    }
    /// <summary>An optional string: null when absent, an error naming the key when present with another type.</summary>
    public string? OptionalString(string key) => Metadata.ContainsKey(key) ? GetString(key) : null;
    public bool? TryBool(string key) => Metadata.TryGetValue(key, out var v) && v.Value is bool b ? b : null;
    public GgufArray? TryArray(string key) => Metadata.TryGetValue(key, out var v) ? v.Value as GgufArray : null;

    GgufValue Get(string key) => Metadata.TryGetValue(key, out var v) ? v : throw new R1SharpException($"{Path}: metadata key {Excerpt.Quote(key)} is missing");
    R1SharpException WrongType(string key, string what) =>
        new($"{Path}: metadata key {Excerpt.Quote(key)} should be {what}, found {(Metadata.TryGetValue(key, out var v) ? v.Type.ToString() : "nothing")}");

    public void Dispose() => _file.Dispose();
}

/// <summary>Little-endian primitive reads for the GGUF header.</summary>
internal sealed class GgufReader(Stream s, string path)
{
    readonly BinaryReader _r = new(s, Encoding.UTF8, leaveOpen: true);

    /// <summary>GGUF's limit on a key's length (the spec's 2^16 − 1 bytes); tensor names are far shorter in practice.</summary>
    public const int MaxNameBytes = 65535;

    public uint U32() => _r.ReadUInt32();
    public ulong U64() => _r.ReadUInt64();

    /// <summary>A length-prefixed UTF-8 string. A corrupt length is refused before anything is read (a key cannot
    /// exceed 64 KB, no string the rest of the file), so garbage never becomes a multi-megabyte "key" in a message.</summary>
    public string Str(long maxBytes = long.MaxValue, string what = "string")
    {
        long at = s.Position;
        ulong n = _r.ReadUInt64();
        long left = s.Length - s.Position;
        if (n > (ulong)Math.Min(maxBytes, 1 << 30) || n > (ulong)left)
            throw new R1SharpException($"{path}: {what} at byte {at} claims {n:N0} bytes" +
                (n > (ulong)left ? $", past the end of the file ({left:N0} bytes left)" : $" (at most {Math.Min(maxBytes, 1 << 30):N0})") + "; the file is corrupt");
        return Encoding.UTF8.GetString(_r.ReadBytes((int)n) is { } b && b.Length == (int)n ? b : throw new EndOfStreamException());
    }

    public GgufValue Value(GgufValueType type, string key)
    {
        if (type != GgufValueType.Array) return new GgufValue(type, Scalar(type, key));
        var et = (GgufValueType)_r.ReadUInt32();
        ulong n = _r.ReadUInt64();
        if (et == GgufValueType.Array) throw new R1SharpException($"{path}: metadata {Excerpt.Quote(key)} is an array of arrays, which GGUF readers here do not support");
        if (n > 100_000_000) throw new R1SharpException($"{path}: metadata {Excerpt.Quote(key)} claims {n} items; the file is corrupt");
        var items = new object[n];
        for (ulong i = 0; i < n; i++) items[i] = Scalar(et, key);
        return new GgufValue(type, new GgufArray(et, items));
    }

    /// <summary>Steps over an array value (after its type), checking its strings' lengths as <see cref="Str"/> does.</summary>
    public void SkipArray(string key)
    {
        var et = (GgufValueType)_r.ReadUInt32();
        ulong n = _r.ReadUInt64();
        if (et == GgufValueType.Array) throw new R1SharpException($"{path}: metadata {Excerpt.Quote(key)} is an array of arrays, which GGUF readers here do not support");
        if (n > 100_000_000) throw new R1SharpException($"{path}: metadata {Excerpt.Quote(key)} claims {n} items; the file is corrupt");
        int size = et switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            GgufValueType.String => 0,
            _ => throw new R1SharpException($"{path}: metadata {Excerpt.Quote(key)} has unknown value type {(uint)et}"),
        };
        if (size > 0)
        {
            long bytes = (long)n * size;
            if (bytes > s.Length - s.Position) throw new EndOfStreamException();
            s.Seek(bytes, SeekOrigin.Current);
            return;
        }
        for (ulong i = 0; i < n; i++)
        {
            long at = s.Position;
            ulong len = _r.ReadUInt64();
            if (len > (ulong)(s.Length - s.Position))
                throw new R1SharpException($"{path}: string at byte {at} claims {len:N0} bytes, past the end of the file ({s.Length - s.Position:N0} bytes left); the file is corrupt");
            s.Seek((long)len, SeekOrigin.Current);
        }
    }

    object Scalar(GgufValueType t, string key) => t switch
    {
        GgufValueType.UInt8 => _r.ReadByte(),
        GgufValueType.Int8 => _r.ReadSByte(),
        GgufValueType.UInt16 => _r.ReadUInt16(),
        GgufValueType.Int16 => _r.ReadInt16(),
        GgufValueType.UInt32 => _r.ReadUInt32(),
        GgufValueType.Int32 => _r.ReadInt32(),
        GgufValueType.Float32 => _r.ReadSingle(),
        GgufValueType.Bool => _r.ReadByte() != 0,
        GgufValueType.String => Str(),
        GgufValueType.UInt64 => _r.ReadUInt64(),
        GgufValueType.Int64 => _r.ReadInt64(),
        GgufValueType.Float64 => _r.ReadDouble(),
        _ => throw new R1SharpException($"{path}: metadata {Excerpt.Quote(key)} has unknown value type {(uint)t}"),
    };
}
