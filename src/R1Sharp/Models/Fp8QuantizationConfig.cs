using System.Text.Json;
using System.Text.Json.Serialization;

namespace R1Sharp.Models;

/// <summary>
/// config.json's "quantization_config" of DeepSeek's FP8 releases: weights in float8_e4m3fn with one float32 scale
/// (weight_scale_inv) per weight_block_size block, activations quantised dynamically by the serving kernels. R1Sharp
/// dequantises such weights while loading and can write them (IO/Fp8Weights.cs).
/// </summary>
public sealed record Fp8QuantizationConfig
{
    public string QuantMethod { get; init; } = "fp8";
    public string Fmt { get; init; } = "e4m3";
    public string ActivationScheme { get; init; } = "dynamic";
    public int[] WeightBlockSize { get; init; } = [128, 128];
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; init; }

    public void Validate(string source)
    {
        if (QuantMethod != "fp8") throw new ConfigValueException(source, "quantization_config.quant_method", $"{Quoted(QuantMethod)} is not supported (expected \"fp8\")");
        if (Fmt != "e4m3") throw new ConfigValueException(source, "quantization_config.fmt", $"{Quoted(Fmt)} is not supported (expected \"e4m3\")");
        if (WeightBlockSize is not { Length: 2 } b || b[0] <= 0 || b[1] <= 0)
            throw new ConfigValueException(source, "quantization_config.weight_block_size", $"must be two positive integers, found [{string.Join(", ", (WeightBlockSize ?? []).Take(4))}{(WeightBlockSize?.Length > 4 ? ", …" : "")}]");
    }

    static string Quoted(string? value) => value is null ? "null" : Excerpt.Quote(value);
}
