using TorchSharp;

namespace R1Sharp.IO;

/// <summary>
/// The safetensors dtype names (as written in the header) with their element sizes and TorchSharp types.
/// Names TorchSharp has no type for (FP8, unsigned wide ints) are still known, so a header that uses them
/// parses and validates; only reading such a tensor fails.
/// </summary>
internal static class SafetensorsDType
{
    sealed record Info(string Name, int Size, torch.ScalarType? Torch);

    static readonly Info[] All =
    [
        new("F64", 8, torch.ScalarType.Float64),
        new("F32", 4, torch.ScalarType.Float32),
        new("F16", 2, torch.ScalarType.Float16),
        new("BF16", 2, torch.ScalarType.BFloat16),
        new("I64", 8, torch.ScalarType.Int64),
        new("I32", 4, torch.ScalarType.Int32),
        new("I16", 2, torch.ScalarType.Int16),
        new("I8", 1, torch.ScalarType.Int8),
        new("U8", 1, torch.ScalarType.Byte),
        new("BOOL", 1, torch.ScalarType.Bool),
        new("U64", 8, null),
        new("U32", 4, null),
        new("U16", 2, null),
        new("F8_E4M3", 1, null),
        new("F8_E5M2", 1, null),
    ];

    static readonly Dictionary<string, Info> ByName = All.ToDictionary(i => i.Name, StringComparer.Ordinal);

    public static string KnownNames => string.Join(", ", All.Select(i => i.Name));

    /// <summary>Element size in bytes, or null when the name is not a safetensors dtype.</summary>
    public static int? SizeOf(string name) => ByName.TryGetValue(name, out var i) ? i.Size : null;

    /// <summary>The TorchSharp type for a header dtype; the error names the file and tensor when there is none.</summary>
    public static torch.ScalarType ToTorch(string name, string path, string tensor) =>
        ByName.TryGetValue(name, out var i) && i.Torch is { } t
            ? t
            : throw new R1SharpException($"{path}: tensor '{tensor}' has dtype {name}, which TorchSharp cannot represent");

    /// <summary>The header dtype name for a TorchSharp type; only the types listed above can be written.</summary>
    public static string FromTorch(torch.ScalarType type, string tensor) =>
        All.FirstOrDefault(i => i.Torch == type)?.Name
            ?? throw new R1SharpException($"tensor '{tensor}': dtype {type} cannot be written to safetensors (supported: {KnownNames})");

    public static bool IsFloat(torch.ScalarType t) =>
        t is torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Float32 or torch.ScalarType.Float64;

    public static int SizeOf(torch.ScalarType t) => All.First(i => i.Torch == t).Size;
}
