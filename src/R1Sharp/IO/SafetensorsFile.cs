using Microsoft.Win32.SafeHandles;
using R1Sharp.Kernels;
using TorchSharp;

namespace R1Sharp.IO;

/// <summary>
/// An open safetensors file. <see cref="Open"/> reads and validates the header only; tensor data is read on
/// demand, straight from the file into the destination tensor's memory in chunks of a few MB.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    readonly SafeFileHandle _file;
    readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafetensorsFile(string path, SafeFileHandle file, SafetensorsHeader.Parsed header)
    {
        Path = path;
        _file = file;
        _dataStart = header.DataStart;
        Entries = header.Entries;
        Metadata = header.Metadata;
    }

    /// <summary>Opens <paramref name="path"/> and validates its header (see <see cref="SafetensorsHeader"/> for the checks).</summary>
    public static SafetensorsFile Open(string path)
    {
        SafeFileHandle file;
        try { file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new R1SharpException($"{path}: cannot open safetensors file: {e.Message}", e);
        }
        try { return new SafetensorsFile(path, file, SafetensorsHeader.Read(file, path)); }
        catch { file.Dispose(); throw; }
    }

    public void Dispose() => _file.Dispose();

    public SafetensorsEntry Entry(string name) =>
        Entries.TryGetValue(name, out var e) ? e : throw new R1SharpException($"{Path}: no tensor named '{name}'");

    /// <summary>
    /// Reads tensor <paramref name="name"/> into <paramref name="destination"/>, which must have the same shape.
    /// Same dtype on a contiguous CPU tensor: bytes go straight into its memory. A different float dtype on a
    /// contiguous CPU tensor: converted a chunk at a time. Anything else (another device, strided views): the
    /// one tensor is staged on the CPU, then copied over.
    /// </summary>
    public void ReadInto(string name, torch.Tensor destination)
    {
        var entry = Entry(name);
        if (!destination.shape.SequenceEqual(entry.Shape))
            throw new R1SharpException(
                $"{Path}: tensor '{name}' has shape {entry.ShapeText} but the destination has shape {SafetensorsEntry.FormatShape(destination.shape)}");
        var source = CheckReadableAs(entry, destination.dtype);
        var target = destination.dtype;

        // Writes through .bytes and copy_ into parameters must not be recorded by autograd.
        using var noGrad = torch.no_grad();
        if (TensorMemory.IsDirect(destination) && source == target)
            ReadRaw(entry, destination);
        else if (TensorMemory.IsDirect(destination))
            ReadConverting(entry, source, destination);
        else
        {
            using var staging = torch.empty(entry.Shape, source);
            ReadRaw(entry, staging);
            destination.copy_(staging);
        }
    }

    /// <summary>The file's dtype for <paramref name="entry"/>, after checking it can be read as <paramref name="target"/>.</summary>
    internal torch.ScalarType CheckReadableAs(SafetensorsEntry entry, torch.ScalarType target)
    {
        var source = SafetensorsDType.ToTorch(entry.DType, Path, entry.Name);
        if (source != target && !(SafetensorsDType.IsFloat(source) && SafetensorsDType.IsFloat(target)))
            throw new R1SharpException(
                $"{Path}: tensor '{entry.Name}' is {entry.DType}; it can only be read as {source} (conversion is between float types only), not {target}");
        return source;
    }

    /// <summary>Reads tensor <paramref name="name"/> into a new CPU tensor, of its own dtype or of float type <paramref name="asType"/>.</summary>
    public torch.Tensor Read(string name, torch.ScalarType? asType = null)
    {
        var entry = Entry(name);
        var result = torch.empty(entry.Shape, asType ?? SafetensorsDType.ToTorch(entry.DType, Path, name));
        try { ReadInto(name, result); }
        catch { result.Dispose(); throw; }
        return result;
    }

    /// <summary>buffer.Length bytes of a tensor's data from offset bytes into it (e.g. one block row of an FP8 weight).</summary>
    internal void ReadBytes(SafetensorsEntry entry, long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset + buffer.Length > entry.ByteCount)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes {offset}..{offset + buffer.Length} outside tensor '{entry.Name}' ({entry.ByteCount} bytes)");
        SafetensorsHeader.ReadExactly(_file, buffer, _dataStart + entry.Begin + offset, Path);
    }

    void ReadRaw(SafetensorsEntry entry, torch.Tensor destination) =>
        TensorMemory.ForEachChunk(destination, (chunk, offset) =>
            SafetensorsHeader.ReadExactly(_file, chunk, _dataStart + entry.Begin + offset, Path));

    /// <summary>Converts through one staging chunk of the file's dtype, so memory stays at a few MB beyond the destination.</summary>
    void ReadConverting(SafetensorsEntry entry, torch.ScalarType source, torch.Tensor destination)
    {
        long count = destination.numel();
        if (count == 0) return;
        long perChunk = Math.Max(1, TensorMemory.ChunkBytes / SafetensorsDType.SizeOf(source));
        using var staging = torch.empty(Math.Min(perChunk, count), source);
        using var flat = destination.detach().view(-1);
        int elementSize = SafetensorsDType.SizeOf(source);
        for (long start = 0; start < count; start += perChunk)
        {
            long n = Math.Min(perChunk, count - start);
            using var stage = staging.narrow(0, 0, n);
            SafetensorsHeader.ReadExactly(_file, stage.bytes, _dataStart + entry.Begin + start * elementSize, Path);
            using var part = flat.narrow(0, start, n);
            part.copy_(stage);
        }
    }
}
