using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.IO;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.BadInput;

/// <summary>
/// The config rows of the bad-input corpus, in process (no model is built, so the whole table takes a second): each
/// value goes through what loading a model folder does before it allocates anything — config.json read into its
/// family's record, validated, and the parameters checked against this machine's memory — and the same values as
/// GGUF metadata through `r1 import gguf`'s reader. A refused value gives one short line naming the file and the key
/// (for GGUF, the metadata key); an accepted one reads. The real CLI runs the issue's own cases (BadInputRows).
/// </summary>
public class ConfigCorpusTests
{
    const int MaxErrorBytes = 600;
    const string Source = "/models/m/config.json";

    /// <summary>The family's tiny shape with hidden_size 1024 (so every "huge" value is terabytes, on any machine),
    /// vocabulary 256, bos 1, eos 2 (DeepSeek's tiny shapes route over 8 experts), and for Qwen the sliding-window keys their real configs carry (switched off).</summary>
    static JsonObject BaseConfig(string family)
    {
        var cfg = ModelPresets.Create(family, "tiny", 256, bosTokenId: 1, eosTokenIds: [2]) with { HiddenSize = 1024 };
        var raw = cfg.ToJson();
        if (family.StartsWith("qwen"))
        {
            raw["use_sliding_window"] = false;
            raw["sliding_window"] = 4096;
            raw["max_window_layers"] = 2;
        }
        return raw;
    }

    [Fact]
    public void TheBaseConfigsAreAccepted()
    {
        foreach (var family in ConfigRows.Families)
            Assert.Null(Read(BaseConfig(family)));
    }

    [Fact]
    public void AWrittenConfigHoldsOnlyConfigKeys()
    {
        // Qwen3's record wrote its class name as "architecture_name", a key no config.json has.
        foreach (var family in ConfigRows.Families)
        {
            var json = ModelPresets.Create(family, "tiny", 256).ToJson();
            // DeepSeek-V2's record also wrote "scales_normalized_weights" (overrides do not inherit [JsonIgnore]).
            foreach (var key in new[] { "architecture_name", "scales_normalized_weights", "qk_head_dim", "interleaved", "mtp_layers", "shared_experts", "softmax_scale" })
                Assert.False(json.ContainsKey(key), $"{family}: {key}");
        }
    }

    [Theory]
    [MemberData(nameof(ConfigRows.Cases), MemberType = typeof(ConfigRows))]
    public void AConfigValueIsRefusedInOneLineNamingTheFileAndKey(string family, int row, string description)
    {
        var r = ConfigRows.All[row];
        var raw = BaseConfig(family);
        var path = r.Key.Split('.');
        var owner = path.Length == 1 ? raw : (JsonObject)raw[path[0]]!;
        owner[path[^1]] = JsonNode.Parse(r.Json);
        string? error = Read(raw);
        string context = $"{family}: {description}\n{error}";
        if (r.Accepted) { Assert.True(error is null, context); return; }
        Assert.True(error is not null, $"{family}: {description} was accepted");
        AssertOneLine(error, Source, context);
        // The key is named: the key itself, or for nested keys its last part with its parent in the message.
        Assert.True(error.Contains(r.Key) || error.Contains(path[^1]) && error.Contains(path[0]), context);
    }

    /// <summary>What <see cref="ModelFolder.Load"/> does before allocating: read, validate, check memory; the error or null.</summary>
    static string? Read(JsonObject raw)
    {
        try
        {
            var cfg = ModelRegistry.ReadConfig(raw, Source);
            ModelRegistry.CheckMemory(cfg, ScalarType.Float32, Source);
            return null;
        }
        catch (R1SharpException e) { return e.Message; }
    }

    static void AssertOneLine(string error, string source, string context)
    {
        Assert.StartsWith(source + ": ", error);
        Assert.DoesNotContain('\n', error);
        Assert.DoesNotContain(error, c => char.IsControl(c));
        Assert.True(Encoding.UTF8.GetByteCount(error) <= MaxErrorBytes, $"{Encoding.UTF8.GetByteCount(error)} bytes\n{context}");
    }

    /// <summary>GGUF metadata of the same kinds: integers zero, negative, of another type (F32, a string), out of range
    /// and huge; floats zero, negative, NaN, infinite, huge and of another type; token ids out of the vocabulary.</summary>
    public static IEnumerable<object[]> GgufCases()
    {
        string[] shape = ["block_count", "embedding_length", "feed_forward_length", "attention.head_count", "attention.head_count_kv", "attention.key_length", "context_length"];
        foreach (var arch in ConfigRows.Dense)
        {
            foreach (var k in shape)
            {
                string key = $"{arch}.{k}";
                yield return [arch, key, "u32:0", false];
                yield return [arch, key, "i32:-64", false];
                yield return [arch, key, "f32:64.5", false];
                yield return [arch, key, "u64:4294967360", false];
                yield return [arch, key, "u32:1000000000", k == "context_length"];
                yield return [arch, key, "str:x", false];
            }
            foreach (var k in new[] { "rope.freq_base", "attention.layer_norm_rms_epsilon" })
            {
                string key = $"{arch}.{k}";
                foreach (var v in new[] { "f32:0", "f32:-1", "f32:NaN", "f32:Infinity", "u32:5", "str:x" }) yield return [arch, key, v, false];
                yield return [arch, key, "f32:1e30", k == "rope.freq_base"];
            }
            foreach (var key in new[] { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id" })
            {
                yield return [arch, key, "u32:0", true];
                yield return [arch, key, "i32:-1", false];
                yield return [arch, key, "u32:1000000", false];
                yield return [arch, key, "str:x", false];
            }
        }
    }

    [Theory]
    [MemberData(nameof(GgufCases))]
    public void AGgufMetadataValueIsRefusedInOneLineNamingTheFileAndKey(string arch, string key, string value, bool accepted)
    {
        using var dir = new TempDir();
        string path = dir.File("m.gguf");
        var meta = new Dictionary<string, GgufValue>
        {
            ["general.architecture"] = GgufValue.Str(arch),
            [$"{arch}.context_length"] = GgufValue.U32(32768), [$"{arch}.embedding_length"] = GgufValue.U32(1024),
            [$"{arch}.block_count"] = GgufValue.U32(2), [$"{arch}.feed_forward_length"] = GgufValue.U32(176),
            [$"{arch}.attention.head_count"] = GgufValue.U32(4), [$"{arch}.attention.head_count_kv"] = GgufValue.U32(2),
            [$"{arch}.attention.key_length"] = GgufValue.U32(256), [$"{arch}.rope.freq_base"] = GgufValue.F32(10000),
            [$"{arch}.attention.layer_norm_rms_epsilon"] = GgufValue.F32(1e-6f),
            ["tokenizer.ggml.bos_token_id"] = GgufValue.U32(1), ["tokenizer.ggml.eos_token_id"] = GgufValue.U32(2),
        };
        var (type, text) = (value[..value.IndexOf(':')], value[(value.IndexOf(':') + 1)..]);
        meta[key] = type switch
        {
            "u32" => GgufValue.U32(uint.Parse(text)),
            "i32" => GgufValue.I32(int.Parse(text)),
            "u64" => new GgufValue(GgufValueType.UInt64, ulong.Parse(text)),
            "f32" => GgufValue.F32(float.Parse(text, System.Globalization.CultureInfo.InvariantCulture)),
            _ => GgufValue.Str(text),
        };
        var w = new GgufWriter();
        foreach (var (k, v) in meta) w.Add(k, v);
        w.AddTensor(new GgufTensorSpec("token_embd.weight", [1024, 256], GgmlType.F32, s => s.Write(new byte[1024 * 256 * 4])));
        w.Write(path);

        string? error = null;
        try
        {
            using var g = GgufFile.Open(path);
            GgufImport.ReadConfig(g);
        }
        catch (R1SharpException e) { error = e.Message; }
        string context = $"{key} = {value}\n{error}";
        if (accepted) { Assert.True(error is null, context); return; }
        Assert.True(error is not null, $"{key} = {value} was accepted");
        AssertOneLine(error, path, context);
        Assert.Contains(key, error);
    }

    /// <summary>llama.cpp's deepseek2 keys (a file convert_hf_to_gguf.py wrote: no r1sharp.deepseek.config): MLA ranks,
    /// experts and groups, YaRN, of the wrong value or type.</summary>
    public static IEnumerable<object[]> DeepseekGgufCases() =>
    [
        ["", "", true],
        ["deepseek2.attention.kv_lora_rank", "u32:0", false],
        ["deepseek2.attention.kv_lora_rank", "str:x", false],
        ["deepseek2.rope.dimension_count", "u32:15", false],
        ["deepseek2.expert_used_count", "u32:9", false],
        ["deepseek2.expert_group_count", "u32:3", false],
        ["deepseek2.expert_group_used_count", "u32:5", false],
        ["deepseek2.expert_weights_scale", "f32:NaN", false],
        ["deepseek2.expert_weights_scale", "f32:0", false],
        ["deepseek2.rope.scaling.factor", "f32:0", false],
        ["deepseek2.rope.scaling.factor", "str:x", false],
        ["deepseek2.rope.scaling.yarn_beta_fast", "f32:-1", false],
        ["deepseek2.block_count", "u32:1000000000", false],
        ["deepseek2.expert_count", "u32:1000000000", false],
    ];

    [Theory]
    [MemberData(nameof(DeepseekGgufCases))]
    public void ADeepseek2MetadataValueIsRefusedInOneLineNamingTheFileAndKey(string key, string value, bool accepted)
    {
        using var dir = new TempDir();
        string path = dir.File("m.gguf");
        const string a = "deepseek2.";
        var meta = new Dictionary<string, GgufValue>
        {
            ["general.architecture"] = GgufValue.Str("deepseek2"),
            [a + "context_length"] = GgufValue.U32(4096), [a + "embedding_length"] = GgufValue.U32(1024), [a + "block_count"] = GgufValue.U32(3),
            [a + "feed_forward_length"] = GgufValue.U32(128), [a + "attention.head_count"] = GgufValue.U32(4), [a + "attention.head_count_kv"] = GgufValue.U32(1),
            [a + "attention.q_lora_rank"] = GgufValue.U32(48), [a + "attention.kv_lora_rank"] = GgufValue.U32(32),
            [a + "attention.key_length"] = GgufValue.U32(48), [a + "attention.value_length"] = GgufValue.U32(32),
            [a + "attention.key_length_mla"] = GgufValue.U32(32), [a + "attention.value_length_mla"] = GgufValue.U32(16),
            [a + "rope.dimension_count"] = GgufValue.U32(16), [a + "rope.freq_base"] = GgufValue.F32(10000),
            [a + "attention.layer_norm_rms_epsilon"] = GgufValue.F32(1e-6f),
            [a + "leading_dense_block_count"] = GgufValue.U32(1), [a + "expert_feed_forward_length"] = GgufValue.U32(32),
            [a + "expert_count"] = GgufValue.U32(8), [a + "expert_shared_count"] = GgufValue.U32(1), [a + "expert_used_count"] = GgufValue.U32(2),
            [a + "expert_group_count"] = GgufValue.U32(4), [a + "expert_group_used_count"] = GgufValue.U32(2),
            [a + "expert_weights_scale"] = GgufValue.F32(2.5f), [a + "expert_gating_func"] = GgufValue.U32(2),
            [a + "rope.scaling.type"] = GgufValue.Str("yarn"), [a + "rope.scaling.factor"] = GgufValue.F32(4),
            [a + "rope.scaling.original_context_length"] = GgufValue.U32(1024),
        };
        if (key.Length > 0)
        {
            var (type, text) = (value[..value.IndexOf(':')], value[(value.IndexOf(':') + 1)..]);
            meta[key] = type switch
            {
                "u32" => GgufValue.U32(uint.Parse(text)),
                "f32" => GgufValue.F32(float.Parse(text, System.Globalization.CultureInfo.InvariantCulture)),
                _ => GgufValue.Str(text),
            };
        }
        var w = new GgufWriter();
        foreach (var (k, v) in meta) w.Add(k, v);
        w.AddTensor(new GgufTensorSpec("token_embd.weight", [1024, 256], GgmlType.F32, s => s.Write(new byte[1024 * 256 * 4])));
        w.AddTensor(new GgufTensorSpec("output.weight", [1024, 256], GgmlType.F32, s => s.Write(new byte[1024 * 256 * 4])));
        w.Write(path);

        string? error = null;
        try
        {
            using var g = GgufFile.Open(path);
            var cfg = (DeepseekV3Config)GgufImport.ReadConfig(g);
            Assert.Equal((8, 2, 32), (cfg.NRoutedExperts, cfg.NumExpertsPerTok, cfg.KvLoraRank)); // the base file reads as written
        }
        catch (R1SharpException e) { error = e.Message; }
        string context = $"{key} = {value}\n{error}";
        if (accepted) { Assert.True(error is null, context); return; }
        Assert.True(error is not null, $"{key} = {value} was accepted");
        AssertOneLine(error, path, context);
        Assert.Contains(key, error);
    }
}
