namespace R1Sharp.Models;

/// <summary>
/// Named shapes for `r1 init`, through each family's presets (<see cref="ModelFamily.Preset"/>): tiny and small for
/// tests and experiments, and the shapes of the real R1-family models (random weights, for benchmarks). The vocabulary
/// and the special tokens come from the tokenizer the model is built for.
/// </summary>
public static class ModelPresets
{
    public static ModelConfig Create(string arch, string size, int vocabSize, int? bosTokenId = null, IReadOnlyList<int>? eosTokenIds = null)
    {
        var family = ModelRegistry.Families.FirstOrDefault(f => f.ModelType == arch)
            ?? throw new R1SharpException($"unknown architecture \"{arch}\" (expected one of {ModelRegistry.Names})");
        if (!family.Sizes.Contains(size)) throw new R1SharpException($"unknown size \"{size}\" for {arch} (expected one of {string.Join(", ", family.Sizes)})");
        return family.Preset(size, vocabSize) with { BosTokenId = bosTokenId, EosTokenIds = eosTokenIds ?? [] };
    }
}
