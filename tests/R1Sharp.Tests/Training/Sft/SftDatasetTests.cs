using Parquet.Serialization;
using R1Sharp.Training;
using R1Sharp.Training.Sft;

namespace R1Sharp.Tests.Training.Sft;

public class SftDatasetTests
{
    [Fact]
    public void Jsonl_ReadsTheThreeShapes()
    {
        using var dir = new TempDir();
        string path = dir.File("train.jsonl");
        File.WriteAllLines(path, [
            """{"messages": [{"role": "user", "content": "2+3?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n5"}], "source": "x"}""",
            "",
            """{"prompt": "2+3=", "completion": "5"}""",
            """{"prompt": [{"role": "user", "content": "2+3?"}], "completion": [{"role": "assistant", "content": "5", "reasoning_content": "add"}]}""",
            """{"text": "plain text"}""",
        ]);
        var rows = SftDataset.Load(path);
        Assert.Equal(4, rows.Count);
        Assert.Equal(["user", "assistant"], rows[0].Messages!.Select(m => m.Role));
        Assert.Equal("<think>\nadd\n</think>\n\n5", rows[0].Messages![1].Content);
        Assert.Equal(0, rows[0].FirstTrained);
        Assert.Equal(("2+3=", "5"), (rows[1].Prompt, rows[1].Completion));
        Assert.Equal(1, rows[2].FirstTrained);
        Assert.Equal("add", rows[2].Messages![1].ReasoningContent);
        Assert.Equal("plain text", rows[3].Text);
        Assert.Equal($"{path}:5", rows[3].Where);
    }

    public sealed class Message { public string role { get; set; } = ""; public string content { get; set; } = ""; }
    public sealed class Row { public List<Message> messages { get; set; } = []; public string source { get; set; } = ""; }

    [Fact]
    public async Task Parquet_NestedMessages_AndAFolderOfShards()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data"));
        Row Make(int i) => new()
        {
            messages = [new() { role = "user", content = $"{i}+{i}?" }, new() { role = "assistant", content = $"<think>double</think>{2 * i}" }],
            source = "synthetic",
        };
        // Two shards, the first with two row groups (rows are numbered across them in errors).
        await ParquetSerializer.SerializeAsync(Enumerable.Range(0, 5).Select(Make), dir.File("data/train-00000-of-00002.parquet"),
            new Parquet.ParquetOptions { RowGroupSize = 3 });
        await ParquetSerializer.SerializeAsync(Enumerable.Range(5, 2).Select(Make), dir.File("data/train-00001-of-00002.parquet"));
        var rows = SftDataset.Load(dir.File("data"));
        Assert.Equal(7, rows.Count);
        for (int i = 0; i < 7; i++)
        {
            Assert.Equal($"{i}+{i}?", rows[i].Messages![0].Content);
            Assert.Equal($"<think>double</think>{2 * i}", rows[i].Messages![1].Content);
            Assert.Equal("assistant", rows[i].Messages![1].Role);
        }
        Assert.EndsWith("train-00000-of-00002.parquet: row 4", rows[3].Where);
    }

    [Theory]
    [InlineData("""{"messages": [{"role": "user", "content": "a"}""", ":2: malformed JSON")]
    [InlineData("""["not", "an", "object"]""", ":2: expected a JSON object, found Array")]
    [InlineData("""{"messages": "hello"}""", ":2: \"messages\" must be a list of messages, found string")]
    [InlineData("""{"messages": [{"role": "user", "content": 5}]}""", ":2: \"messages[0].content\" must be a string, found number")]
    [InlineData("""{"messages": [{"content": "x"}]}""", ":2: messages[0] has no \"role\"")]
    [InlineData("""{"question": "x", "answer": "y"}""", ":2: expected a \"messages\" list, \"prompt\" and \"completion\", or \"text\"; found the fields question, answer")]
    [InlineData("""{"prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "user", "content": "y"}]}""", ":2: \"completion\" holds no assistant message")]
    public void AMalformedRow_IsOneErrorNamingFileAndLine(string badLine, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("bad.jsonl");
        File.WriteAllLines(path, ["""{"text": "fine"}""", badLine]);
        var e = Assert.Throws<R1SharpException>(() => SftDataset.Load(path));
        Assert.StartsWith(path + expected, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void Recipe_TakesTrlNames_AndAnUnknownKeyIsAnErrorNamingFileLineAndKey()
    {
        var cfg = RecipeLoader.Parse<SftConfig>("""
            model_name_or_path: m
            dataset_path: d.jsonl
            max_length: 4096
            packing: true
            assistant_only_loss: true
            learning_rate: 5.0e-5
            num_train_epochs: 1
            per_device_train_batch_size: 2
            gradient_accumulation_steps: 8
            lr_scheduler_type: cosine
            warmup_ratio: 0.03
            max_grad_norm: 0.2
            eval_steps: 10
            """, "sft.yaml");
        Assert.Equal((4096, true, 5e-5, 16), (cfg.MaxLength, cfg.Packing, cfg.LearningRate, cfg.RowsPerStep));
        Assert.Equal(63, cfg.TotalSteps(1000)); // ceil(1 epoch × 1000 rows / 16)
        var e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse<SftConfig>("learning_rate: 1e-5\nmax_seq_lenght: 10\n", "sft.yaml"));
        Assert.Equal("sft.yaml:2: unknown key \"max_seq_lenght\"", e.Message);
        e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse<SftConfig>("packng: true\n", "sft.yaml"));
        Assert.Equal("sft.yaml:1: unknown key \"packng\" (did you mean \"packing\"?)", e.Message);
        e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse<SftConfig>("lr_scheduler_type: wavy\n", "sft.yaml"));
        Assert.StartsWith("sft.yaml: lr_scheduler_type \"wavy\" is unknown", e.Message);
    }
}
