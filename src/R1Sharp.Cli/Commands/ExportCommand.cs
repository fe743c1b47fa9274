using System.CommandLine;
using R1Sharp.IO;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 export gguf`: a Hugging Face model folder → one GGUF file for llama.cpp, Ollama and LLamaSharp.</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)", Required = true };
        var output = new Option<string>("--out") { Description = "GGUF file to write", Required = true };
        var type = new Option<string>("--type") { Description = "f32, bf16, f16, or llama-quantize's q8_0, q4_0, q6_k, q4_k_m (norms and biases stay f32)", DefaultValueFactory = _ => "f32" };
        var pre = new Option<string?>("--pre") { Description = "tokenizer.ggml.pre name when the tokenizer's regexes are not recognised (qwen2, llama-bpe, deepseek-v3)" };
        var json = new Option<bool>("--json") { Description = "print a JSON summary" };
        var gguf = new Command("gguf", "Write a GGUF v3 file (weights, architecture, tokenizer, chat template)") { model, output, type, pre, json };
        gguf.SetAction(p => CliCommon.Run(p, () =>
        {
            Write(p.GetValue(model)!, p.GetValue(output)!, GgufExport.ParseType(p.GetValue(type)!), p.GetValue(pre), p.GetValue(json));
            return 0;
        }));
        return new Command("export", "Export a model to another format") { gguf };
    }

    /// <summary>Writes the file and reports it: its size and how many tensors of each type it holds.</summary>
    public static void Write(string modelDir, string outPath, GgufFileType type, string? pre, bool json)
    {
        GgufExport.Export(modelDir, outPath, type, pre);
        long bytes = new FileInfo(outPath).Length;
        Dictionary<string, int> counts;
        using (var g = GgufFile.Open(outPath))
            counts = g.Tensors.GroupBy(t => t.Type).OrderBy(x => x.Key).ToDictionary(x => x.Key.ToString().ToLowerInvariant(), x => x.Count());
        if (json) CliCommon.PrintJson(new { file = Path.GetFullPath(outPath), type = type.ToString(), bytes, tensors = counts });
        else Console.Error.WriteLine($"wrote {outPath} ({type}: {string.Join(", ", counts.Select(c => $"{c.Value} {c.Key}"))}; {bytes / 1e6:F1} MB)");
    }
}
