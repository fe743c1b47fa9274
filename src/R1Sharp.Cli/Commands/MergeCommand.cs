using System.CommandLine;
using R1Sharp.Models;
using R1Sharp.Models.Lora;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 merge --model DIR --adapter DIR --out DIR`: W + (α/r)·B·A written as a plain Hugging Face folder
/// (PEFT's merge_and_unload), which every tool then loads without knowing about adapters.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "the base: a Hugging Face model folder", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "a LoRA adapter folder in PEFT's layout", Required = true };
        var output = new Option<string>("--out") { Description = "the merged model folder to write", Required = true };
        var dtype = CliCommon.DType();
        var cmd = new Command("merge", "Merge a LoRA adapter into its base model and write a Hugging Face folder") { model, adapter, output, dtype };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            string dir = p.GetValue(model)!;
            if (IO.GgufModel.IsGgufFile(dir)) throw new R1SharpException($"{dir}: merge into a Hugging Face folder (a GGUF file's quantized weights cannot take the update exactly)");
            using var m = ModelFolder.Load(dir, dtype: p.GetValue(dtype) is { } d ? ModelFolder.ParseDType(d) : null);
            var lora = LoraModel.Of(m);
            lora.Load(p.GetValue(adapter)!);
            int layers = lora.NamedParameters().Count() / 2;
            lora.MergeAndUnload();
            ModelFolder.Save(m, p.GetValue(output)!, tokenizerDir: dir, generationConfig: ModelFolder.ReadGenerationConfig(dir));
            Console.WriteLine($"merged {layers} adapted layers into {p.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }
}
