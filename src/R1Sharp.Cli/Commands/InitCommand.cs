using System.CommandLine;
using R1Sharp.Models;
using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 init`: a complete random-weight model folder in the Hugging Face layout, for tests and experiments.</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = string.Join(" | ", ModelRegistry.Families.Select(f => f.ModelType)), DefaultValueFactory = _ => "qwen2" };
        var size = new Option<string>("--size")
        {
            Description = string.Join("; ", ModelRegistry.Families.Select(f => $"{f.ModelType}: {string.Join("|", f.Sizes)}")),
            DefaultValueFactory = _ => "tiny",
        };
        var config = new Option<string>("--config") { Description = "a Hugging Face config.json of any supported model_type, instead of --arch/--size (its vocab_size and special tokens are kept)" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "folder with tokenizer.json and tokenizer_config.json", Required = true };
        var output = new Option<string>("--out") { Description = "folder to write", Required = true };
        var seed = new Option<long>("--seed") { Description = "weight initialisation seed", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "f32, bf16 or fp8 (linear weights block-scaled float8_e4m3fn as DeepSeek ships them, the rest bf16)", DefaultValueFactory = _ => "f32" };
        var json = new Option<bool>("--json") { Description = "print a JSON summary" };
        var cmd = new Command("init", "Write a random-weight model folder of any supported family (config.json, safetensors, tokenizer, chat template)")
            { arch, size, config, tokenizer, output, seed, dtype, json };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            string tokDir = p.GetValue(tokenizer)!;
            var tok = HfTokenizer.FromFolder(tokDir);
            ModelConfig cfg;
            string? configFile = p.GetValue(config);
            if (configFile != null)
            {
                if (p.GetResult(arch) is { Implicit: false } || p.GetResult(size) is { Implicit: false })
                    throw new R1SharpException("--config replaces --arch and --size; give one or the other");
                cfg = ModelRegistry.LoadConfig(configFile);
                if (cfg.VocabSize < tok.VocabSize)
                    throw new R1SharpException($"{configFile}: vocab_size {cfg.VocabSize} is smaller than the tokenizer's {tok.VocabSize} tokens ({tokDir})");
            }
            else
            {
                // Real Qwen checkpoints pad the embedding rows past the tokenizer's vocabulary to a multiple of 64.
                int vocab = (tok.VocabSize + 63) / 64 * 64;
                var eos = tok.EosTokenId is { } e ? new[] { e } : [];
                cfg = ModelPresets.Create(p.GetValue(arch)!, p.GetValue(size)!, vocab, tok.BosTokenId, eos);
            }
            string dtypeName = p.GetValue(dtype)!;
            bool fp8 = dtypeName == "fp8" || (configFile != null && cfg.QuantizationConfig != null && p.GetResult(dtype) is not { Implicit: false });
            var type = fp8 ? ScalarType.BFloat16 : ModelFolder.ParseDType(dtypeName);
            var quantization = fp8 ? cfg.QuantizationConfig ?? new Fp8QuantizationConfig() : null;
            using var model = CausalLM.Create(cfg with { QuantizationConfig = null }, type);
            model.InitializeRandom(p.GetValue(seed));
            string outDir = p.GetValue(output)!;
            ModelFolder.Save(model, outDir, tokDir, fp8: quantization);
            long parameters = model.parameters().Sum(t => t.NumberOfElements);
            string shape = configFile != null ? Path.GetFileName(configFile) : p.GetValue(size)!;
            if (p.GetValue(json)) CliCommon.PrintJson(new { folder = Path.GetFullPath(outDir), arch = cfg.ModelType, size = shape, parameters, vocab_size = cfg.VocabSize, fp8 });
            else Console.Error.WriteLine($"wrote {cfg.ModelType} {shape} ({parameters:N0} parameters, vocab {cfg.VocabSize}{(fp8 ? ", FP8 block-scaled" : "")}) to {outDir}");
            return 0;
        }));
        return cmd;
    }
}
