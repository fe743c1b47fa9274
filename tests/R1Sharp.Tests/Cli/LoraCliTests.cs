using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Tests.Training;
using R1Sharp.Tests.Training.Lora;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Cli;

public class LoraCliTests
{
    /// <summary>r1 train sft with use_peft writes a PEFT adapter; r1 merge folds it into a full folder whose logits are
    /// the base + adapter's; r1 generate --adapter decodes as the merged model does.</summary>
    [Fact]
    public void TrainSftWithPeft_ThenMerge_ThenGenerateWithAdapter()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        string model = dir.File("tiny");
        using (var m = LoraTestModels.Model(tok, layers: 1)) ModelFolder.Save(m, model, TinyGrpo.TokenizerFolder);
        File.WriteAllLines(dir.File("train.jsonl"), Enumerable.Range(0, 8).Select(i => $$"""{"prompt": "{{i}}+{{i}}=", "completion": "{{2 * i}}"}"""));
        File.WriteAllText(dir.File("sft.yaml"), $"""
            model_name_or_path: {model}
            dataset_path: train.jsonl
            output_dir: {dir.File("out")}
            max_steps: 3
            per_device_train_batch_size: 4
            learning_rate: 0.05
            use_peft: true
            lora_r: 4
            lora_alpha: 8
            lora_target_modules: all-linear
            gradient_checkpointing: true
            logprob_chunk_size: 8
            num_threads: 1
            """);
        var train = CliRunner.Run("train", "sft", "--config", dir.File("sft.yaml"));
        Assert.True(train.ExitCode == 0, train.Stderr);
        string adapter = dir.File("out/adapter");
        Assert.True(File.Exists(Path.Combine(adapter, "adapter_model.safetensors")));
        Assert.True(File.Exists(dir.File("out/model/model.safetensors"))); // the adapter merged, for the next stage

        var merge = CliRunner.Run("merge", "--model", model, "--adapter", adapter, "--out", dir.File("merged"));
        Assert.True(merge.ExitCode == 0, merge.Stderr);
        var b = LoraTestModels.Batch();
        float[] unmerged, merged;
        using (var m = ModelFolder.Load(model)) { LoraModel.Of(m).Load(adapter); unmerged = LoraTestModels.Logits(m, b); }
        using (var m = ModelFolder.Load(model)) { Assert.True(LoraTestModels.MaxAbsDiff(unmerged, LoraTestModels.Logits(m, b)) > 1e-5, "training left the adapter at zero"); }
        using (var m = ModelFolder.Load(dir.File("merged"))) merged = LoraTestModels.Logits(m, b);
        Assert.True(LoraTestModels.MaxAbsDiff(unmerged, merged) < 1e-4);
        using (var m = ModelFolder.Load(dir.File("out/model"))) Assert.True(LoraTestModels.MaxAbsDiff(merged, LoraTestModels.Logits(m, b)) < 1e-6);

        string[] Generate(params string[] extra) => [.. new[] { "generate", "--prompt", "3+4=", "--raw", "--temperature", "0", "--max-tokens", "6", "--json" }, .. extra];
        var withAdapter = CliRunner.Run(Generate("--model", model, "--adapter", adapter));
        var fromMerged = CliRunner.Run(Generate("--model", dir.File("merged")));
        Assert.True(withAdapter.ExitCode == 0, withAdapter.Stderr);
        Assert.Equal(System.Text.Json.Nodes.JsonNode.Parse(fromMerged.Stdout)!["text"]!.ToJsonString(), System.Text.Json.Nodes.JsonNode.Parse(withAdapter.Stdout)!["text"]!.ToJsonString());

        var bad = CliRunner.Run(Generate("--model", model, "--adapter", dir.File("nope")));
        Assert.Equal(1, bad.ExitCode);
        Assert.StartsWith("error: ", bad.Stderr.Trim());
        Assert.Single(bad.Stderr.Trim().Split('\n'));
    }
}
