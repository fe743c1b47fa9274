using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using R1Sharp.Kernels;
using TorchSharp;

namespace R1Sharp.IO;

/// <summary>
/// Writes safetensors files as Hugging Face's implementation does: compact JSON header, "__metadata__" first,
/// entries in the order given, header padded with spaces so the data section starts 8-byte aligned.
/// Data is written from each tensor's own memory in chunks; the file appears under its name only when complete.
/// </summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors, metadata, dtype: null);

    /// <summary>As <see cref="Write(string, IEnumerable{KeyValuePair{string, torch.Tensor}}, IReadOnlyDictionary{string, string}?)"/>,
    /// converting float tensors to <paramref name="dtype"/> one at a time as they are written.</summary>
    internal static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata, torch.ScalarType? dtype) =>
        WriteItems(path, tensors.Select(kv => Item(kv.Key, kv.Value, dtype)).ToList(), metadata);

    /// <summary>A tensor as an item to write, converted to <paramref name="dtype"/> when it is a float tensor.</summary>
    internal static SafetensorsItem Item(string name, torch.Tensor tensor, torch.ScalarType? dtype)
    {
        var type = TargetType(name, tensor, dtype);
        return new SafetensorsItem(name, SafetensorsDType.FromTorch(type, name), tensor.shape, tensor.numel() * SafetensorsDType.SizeOf(type),
            s => WriteData(s, tensor, type));
    }

    /// <summary>Writes items whose bytes their own callbacks produce (e.g. FP8 weights quantised while written).</summary>
    internal static void WriteItems(string path, IReadOnlyList<SafetensorsItem> list, IReadOnlyDictionary<string, string>? metadata)
    {
        byte[] header = BuildHeader(list, metadata);

        string temp = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var item in list)
                {
                    long start = stream.Position;
                    item.Write(stream);
                    if (stream.Position - start != item.Bytes)
                        throw new InvalidOperationException($"{path}: tensor '{item.Name}' wrote {stream.Position - start} bytes, expected {item.Bytes}");
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(temp);
            if (e is IOException or UnauthorizedAccessException)
                throw new R1SharpException($"{path}: cannot write safetensors file: {e.Message}", e);
            throw;
        }
    }

    /// <summary>The dtype a tensor is stored as; conversion is offered between float types only.</summary>
    static torch.ScalarType TargetType(string name, torch.Tensor t, torch.ScalarType? dtype)
    {
        var target = dtype is { } d && SafetensorsDType.IsFloat(t.dtype) ? d : t.dtype;
        SafetensorsDType.FromTorch(target, name); // fails early, before any byte is written
        return target;
    }

    static byte[] BuildHeader(IReadOnlyList<SafetensorsItem> list, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new MemoryStream();
        // Raw UTF-8 for non-ASCII names, as the Rust serializer writes them.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var kv in metadata) json.WriteString(kv.Key, kv.Value);
                json.WriteEndObject();
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (var item in list)
            {
                if (item.Name == "__metadata__") throw new R1SharpException("a tensor cannot be named '__metadata__' in safetensors");
                if (!seen.Add(item.Name)) throw new R1SharpException($"tensor '{item.Name}' is given twice");
                json.WriteStartObject(item.Name);
                json.WriteString("dtype", item.DType);
                json.WriteStartArray("shape");
                foreach (long d in item.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + item.Bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += item.Bytes;
            }
            json.WriteEndObject();
        }
        // Pad with spaces (valid JSON whitespace) so 8 + header length is a multiple of 8.
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    /// <summary>Writes one tensor's bytes; only a tensor that is not already contiguous CPU memory of the target dtype is copied, alone.</summary>
    static void WriteData(Stream stream, torch.Tensor tensor, torch.ScalarType type)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var source = tensor.detach();
        if (source.dtype != type || !TensorMemory.IsDirect(source))
            source = source.to(type, torch.CPU).contiguous();
        TensorMemory.ForEachChunk(source, (chunk, offset) => stream.Write(chunk));
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch { /* the original error matters more */ }
    }
}

/// <summary>One tensor to write: its header dtype name, shape, byte count and a callback writing exactly those bytes.</summary>
internal sealed record SafetensorsItem(string Name, string DType, long[] Shape, long Bytes, Action<Stream> Write);
