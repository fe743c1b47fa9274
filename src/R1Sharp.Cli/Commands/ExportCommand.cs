using System.CommandLine;
using R1Sharp.IO;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 export gguf`: a Hugging Face model folder → one GGUF file for llama.cpp, Ollama and LLamaSharp.</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var model = CliCommon.Model();
        var output = new Option<string>("--out") { Description = "GGUF file to write", Required = true };
        var type = new Option<string>("--type") { Description = "f32, bf16, f16 or q8_0 (norms and biases stay f32)", DefaultValueFactory = _ => "f32" };
        var pre = new Option<string?>("--pre") { Description = "tokenizer.ggml.pre name when the tokenizer's regexes are not recognised (qwen2, llama-bpe, deepseek-v3)" };
        var json = new Option<bool>("--json") { Description = "print a JSON summary" };
        var gguf = new Command("gguf", "Write a GGUF v3 file (weights, architecture, tokenizer, chat template)") { model, output, type, pre, json };
        gguf.SetAction(p => CliCommon.Run(p, () =>
        {
            string outPath = p.GetValue(output)!;
            var ggmlType = GgufExport.ParseType(p.GetValue(type)!);
            GgufExport.Export(p.GetValue(model)!, outPath, ggmlType, p.GetValue(pre));
            long bytes = new FileInfo(outPath).Length;
            if (p.GetValue(json)) CliCommon.PrintJson(new { file = Path.GetFullPath(outPath), type = ggmlType.ToString().ToLowerInvariant(), bytes });
            else Console.Error.WriteLine($"wrote {outPath} ({ggmlType}, {bytes / 1e6:F1} MB)");
            return 0;
        }));
        return new Command("export", "Export a model to another format") { gguf };
    }
}
