using System.CommandLine;
using R1Sharp.IO;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 quantize`: a Hugging Face model folder → a quantized GGUF file, as llama.cpp's llama-quantize writes it.</summary>
public static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder to quantize", Required = true };
        var output = new Option<string>("--out") { Description = "GGUF file to write", Required = true };
        var type = new Option<string>("--type") { Description = "q8_0, q4_0, q6_k or q4_k_m (llama-quantize's per-tensor choice; norms and biases stay f32)", DefaultValueFactory = _ => "q4_k_m" };
        var pre = new Option<string?>("--pre") { Description = "tokenizer.ggml.pre name when the tokenizer's regexes are not recognised (qwen2, llama-bpe, deepseek-v3)" };
        var json = new Option<bool>("--json") { Description = "print a JSON summary" };
        var cmd = new Command("quantize", "Quantize a model folder to a GGUF file (Q8_0, Q4_0, Q6_K, Q4_K_M) that llama.cpp and `--model FILE.gguf` run")
            { model, output, type, pre, json };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            var fileType = GgufFileType.Of(GgufQuantMix.Parse(p.GetValue(type)!));
            ExportCommand.Write(p.GetValue(model)!, p.GetValue(output)!, fileType, p.GetValue(pre), p.GetValue(json));
            return 0;
        }));
        return cmd;
    }
}
