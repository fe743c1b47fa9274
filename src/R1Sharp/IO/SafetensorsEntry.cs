namespace R1Sharp.IO;

/// <summary>
/// One tensor of a safetensors file as its header describes it.
/// <paramref name="Begin"/> and <paramref name="End"/> are byte offsets relative to the start of the data section
/// (just after the 8-byte length and the JSON header), as in the file itself.
/// </summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteCount => End - Begin;

    /// <summary>Shape as the error messages print it, e.g. [4096, 11008].</summary>
    public string ShapeText => FormatShape(Shape);

    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
