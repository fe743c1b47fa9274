using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace R1Sharp.IO;

/// <summary>
/// Reads and validates the header of a safetensors file: an 8-byte little-endian length N, N bytes of JSON
/// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data section.
/// Every problem becomes one <see cref="R1SharpException"/> naming the file and, where it applies, the tensor.
/// </summary>
internal static class SafetensorsHeader
{
    /// <summary>The reference implementation refuses headers over 100 MB; a longer one means a corrupt length.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public sealed record Parsed(Dictionary<string, SafetensorsEntry> Entries, Dictionary<string, string> Metadata, long DataStart);

    public static Parsed Read(SafeFileHandle file, string path)
    {
        long fileLength = RandomAccess.GetLength(file);
        if (fileLength < 8)
            throw new R1SharpException($"{path}: truncated safetensors file: {fileLength} bytes, shorter than the 8-byte header length");

        Span<byte> lengthBytes = stackalloc byte[8];
        ReadExactly(file, lengthBytes, 0, path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new R1SharpException($"{path}: header length {headerLength} bytes is absurd (limit {MaxHeaderBytes}); not a safetensors file or corrupt");
        if (8 + (long)headerLength > fileLength)
            throw new R1SharpException($"{path}: truncated safetensors file: header says {headerLength} bytes of JSON but the file has only {fileLength - 8} after the length");

        var json = new byte[headerLength];
        ReadExactly(file, json, 8, path);
        long dataStart = 8 + (long)headerLength;
        var parsed = Parse(json, path, dataStart);
        CheckLayout(parsed.Entries.Values, fileLength - dataStart, path);
        return parsed;
    }

    static Parsed Parse(byte[] json, string path, long dataStart)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new R1SharpException($"{path}: bad header JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new R1SharpException($"{path}: bad header JSON: expected an object, found {doc.RootElement.ValueKind}");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (sawMetadata) throw new R1SharpException($"{path}: bad header JSON: __metadata__ appears twice");
                    sawMetadata = true;
                    ParseMetadata(prop.Value, metadata, path);
                    continue;
                }
                if (entries.ContainsKey(prop.Name))
                    throw new R1SharpException($"{path}: bad header JSON: tensor '{prop.Name}' appears twice");
                entries[prop.Name] = ParseEntry(prop.Name, prop.Value, path);
            }
            return new Parsed(entries, metadata, dataStart);
        }
    }

    static void ParseMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new R1SharpException($"{path}: bad header JSON: __metadata__ must be an object of strings, found {value.ValueKind}");
        foreach (var kv in value.EnumerateObject())
        {
            if (kv.Value.ValueKind != JsonValueKind.String)
                throw new R1SharpException($"{path}: bad header JSON: __metadata__ value '{kv.Name}' must be a string, found {kv.Value.ValueKind}");
            metadata[kv.Name] = kv.Value.GetString()!;
        }
    }

    static SafetensorsEntry ParseEntry(string name, JsonElement value, string path)
    {
        string where = $"{path}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new R1SharpException($"{where}: bad header JSON: expected {{dtype, shape, data_offsets}}, found {value.ValueKind}");
        if (!value.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new R1SharpException($"{where}: bad header JSON: missing string 'dtype'");
        string dtype = dtypeEl.GetString()!;
        int elementSize = SafetensorsDType.SizeOf(dtype)
            ?? throw new R1SharpException($"{where}: unknown dtype '{dtype}' (known: {SafetensorsDType.KnownNames})");
        long[] shape = ReadLongs(value, "shape", where, null);
        long[] offsets = ReadLongs(value, "data_offsets", where, 2);
        long begin = offsets[0], end = offsets[1];
        if (end < begin)
            throw new R1SharpException($"{where}: data_offsets [{begin}, {end}] end before they begin");

        long expected;
        try { expected = checked(shape.Aggregate(1L, (a, b) => a * b) * elementSize); }
        catch (OverflowException) { throw new R1SharpException($"{where}: shape {SafetensorsEntry.FormatShape(shape)} is too large"); }
        if (end - begin != expected)
            throw new R1SharpException(
                $"{where}: data_offsets [{begin}, {end}] hold {end - begin} bytes but shape {SafetensorsEntry.FormatShape(shape)} of {dtype} needs {expected}");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    static long[] ReadLongs(JsonElement obj, string key, string where, int? count)
    {
        if (!obj.TryGetProperty(key, out var arr) || arr.ValueKind != JsonValueKind.Array)
            throw new R1SharpException($"{where}: bad header JSON: missing array '{key}'");
        var result = new List<long>();
        foreach (var item in arr.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw new R1SharpException($"{where}: bad header JSON: '{key}' must hold non-negative integers, found {item.GetRawText()}");
            result.Add(v);
        }
        if (count is { } c && result.Count != c)
            throw new R1SharpException($"{where}: bad header JSON: '{key}' must have {c} numbers, found {result.Count}");
        return result.ToArray();
    }

    /// <summary>
    /// Tensors must tile the data section exactly, as the reference implementation requires: sorted by offset
    /// they start at 0, each begins where the previous ends, and the last ends at the end of the file.
    /// </summary>
    static void CheckLayout(IEnumerable<SafetensorsEntry> entries, long dataLength, string path)
    {
        long expectedBegin = 0;
        SafetensorsEntry? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.End > dataLength)
                throw new R1SharpException(
                    $"{path}: truncated safetensors file: tensor '{e.Name}' ends at data offset {e.End} but the data section has only {dataLength} bytes");
            if (e.Begin < expectedBegin)
                throw new R1SharpException(
                    $"{path}: tensor '{e.Name}' at data offsets [{e.Begin}, {e.End}] overlaps tensor '{previous!.Name}' at [{previous.Begin}, {previous.End}]");
            if (e.Begin > expectedBegin)
                throw new R1SharpException(
                    $"{path}: tensor '{e.Name}' begins at data offset {e.Begin}, leaving a gap of unused bytes after offset {expectedBegin}; tensors must be contiguous");
            expectedBegin = e.End;
            previous = e;
        }
        if (expectedBegin != dataLength)
            throw new R1SharpException(
                $"{path}: the data section has {dataLength} bytes but the tensors cover only {expectedBegin}; trailing bytes mean a corrupt file");
    }

    public static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset, string path)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(file, buffer, offset);
            if (n == 0) throw new R1SharpException($"{path}: truncated safetensors file: unexpected end of file at byte {offset}");
            buffer = buffer[n..];
            offset += n;
        }
    }
}
