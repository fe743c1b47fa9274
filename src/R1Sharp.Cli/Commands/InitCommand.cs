using System.CommandLine;
using R1Sharp.Models;
using R1Sharp.Text;

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
        var tokenizer = new Option<string>("--tokenizer") { Description = "folder with tokenizer.json and tokenizer_config.json", Required = true };
        var output = new Option<string>("--out") { Description = "folder to write", Required = true };
        var seed = new Option<long>("--seed") { Description = "weight initialisation seed", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "f32 or bf16", DefaultValueFactory = _ => "f32" };
        var json = new Option<bool>("--json") { Description = "print a JSON summary" };
        var cmd = new Command("init", "Write a random-weight model folder of any supported family (config.json, safetensors, tokenizer, chat template)")
            { arch, size, tokenizer, output, seed, dtype, json };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            string tokDir = p.GetValue(tokenizer)!;
            var tok = HfTokenizer.FromFolder(tokDir);
            // Real Qwen checkpoints pad the embedding rows past the tokenizer's vocabulary to a multiple of 64.
            int vocab = (tok.VocabSize + 63) / 64 * 64;
            var eos = tok.EosTokenId is { } e ? new[] { e } : [];
            var cfg = ModelPresets.Create(p.GetValue(arch)!, p.GetValue(size)!, vocab, tok.BosTokenId, eos);
            var type = ModelFolder.ParseDType(p.GetValue(dtype)!);
            using var model = CausalLM.Create(cfg, type);
            model.InitializeRandom(p.GetValue(seed));
            string outDir = p.GetValue(output)!;
            ModelFolder.Save(model, outDir, tokDir);
            long parameters = model.parameters().Sum(t => t.NumberOfElements);
            if (p.GetValue(json)) CliCommon.PrintJson(new { folder = Path.GetFullPath(outDir), arch = cfg.ModelType, size = p.GetValue(size), parameters, vocab_size = vocab });
            else Console.Error.WriteLine($"wrote {cfg.ModelType} {p.GetValue(size)} ({parameters:N0} parameters, vocab {vocab}) to {outDir}");
            return 0;
        }));
        return cmd;
    }
}
