using System.CommandLine;
using R1Sharp.IO;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 import gguf`: a qwen2/llama GGUF file (F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K) → a Hugging Face model folder.</summary>
public static class ImportCommand
{
    public static Command Create()
    {
        var file = new Option<string>("--gguf") { Description = "GGUF file to read", Required = true };
        var output = new Option<string>("--out") { Description = "model folder to write", Required = true };
        var json = new Option<bool>("--json") { Description = "print a JSON summary" };
        var gguf = new Command("gguf", "Read a GGUF file into a Hugging Face folder (quantised weights are dequantised)") { file, output, json };
        gguf.SetAction(p => CliCommon.Run(p, () =>
        {
            string outDir = p.GetValue(output)!;
            GgufImport.Import(p.GetValue(file)!, outDir);
            if (p.GetValue(json)) CliCommon.PrintJson(new { folder = Path.GetFullPath(outDir) });
            else Console.Error.WriteLine($"wrote {outDir}");
            return 0;
        }));
        return new Command("import", "Import a model from another format") { gguf };
    }
}
