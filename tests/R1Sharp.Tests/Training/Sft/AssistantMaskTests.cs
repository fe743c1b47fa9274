using System.Text.Json.Nodes;
using R1Sharp.Text;
using R1Sharp.Training.Sft;

namespace R1Sharp.Tests.Training.Sft;

/// <summary>
/// The assistant-only loss mask, token by token, against the real chat templates of R1-Distill, DeepSeek-R1, Qwen2.5,
/// Qwen3 and Llama 3 with real tokenizers. The expected context and reply texts are written out by hand from each
/// template (the templates' rendering itself is proven against Python jinja2 in ChatTemplateFixtureTests); each test
/// checks the ids, the mask of every token, and that tokenizing the pieces apart gives the ids of the whole text.
/// </summary>
public class AssistantMaskTests
{
    static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates");
    static readonly Lazy<HfTokenizer> Qwen = new(() => HfTokenizer.FromFolder(SharedData.Path("tokenizers", "qwen3")));
    static readonly Lazy<HfTokenizer> DeepSeek = new(() => HfTokenizer.FromFolder(SharedData.Path("tokenizers", "deepseek_v3")));
    static readonly Lazy<HfTokenizer> Llama = new(LlamaTokenizer);

    const string Think1 = "<think>\n2 plus 3 is 5.\n</think>\n\nThe answer is 5.";
    const string Think2 = "<think>\nDouble 5: 10.\n</think>\n\nIt is 10.";

    static List<ChatMessage> SingleTurn() => [new("user", "What is 2+3?"), new("assistant", Think1)];
    static List<ChatMessage> TwoTurns() =>
        [new("user", "What is 2+3?"), new("assistant", Think1), new("user", "And twice that?"), new("assistant", Think2)];

    static ChatTemplate Fixture(string file, string? bos, string? eos) => new(File.ReadAllText(Path.Combine(Fixtures, file)), bos, eos);
    static ChatTemplate Qwen3Template() => ChatTemplate.FromTokenizerConfig(SharedData.Path("tokenizers", "qwen3", "tokenizer_config.json"));

    const string DsBos = "<｜begin▁of▁sentence｜>", DsEos = "<｜end▁of▁sentence｜>";

    [Fact]
    public void R1Distill_SingleTurn_TrainsTheWholeReasoningAfterTheOpenedThinkBlock()
    {
        var sft = new SftTokenizer(DeepSeek.Value, Fixture("deepseek_r1_distill.jinja", DsBos, DsEos));
        var s = sft.Tokenize(new SftExample("t") { Messages = SingleTurn() });
        // The generation prompt opens "<think>\n"; the template would drop the reasoning from a rendered reply, so
        // the reply is trained as generated: the rest of the think block, the answer, the end of sentence.
        Expect(DeepSeek.Value, s,
            (DsBos + "<｜User｜>What is 2+3?<｜Assistant｜><think>\n", false),
            ("2 plus 3 is 5.\n</think>\n\nThe answer is 5." + DsEos, true));
    }

    [Fact]
    public void R1Distill_TwoTurns_TrainsTheLastTurnAfterHistoryAsTheTemplateStripsIt()
    {
        var sft = new SftTokenizer(DeepSeek.Value, Fixture("deepseek_r1_distill.jinja", DsBos, DsEos));
        var s = sft.Tokenize(new SftExample("t") { Messages = TwoTurns() });
        Expect(DeepSeek.Value, s,
            // content.split('</think>')[-1] keeps the "\n\n" before the answer.
            (DsBos + "<｜User｜>What is 2+3?<｜Assistant｜>\n\nThe answer is 5." + DsEos + "<｜User｜>And twice that?<｜Assistant｜><think>\n", false),
            ("Double 5: 10.\n</think>\n\nIt is 10." + DsEos, true));
        Assert.Equal(1, sft.UntrainedTurns);
    }

    [Fact]
    public void DeepSeekR1_SingleTurn()
    {
        var sft = new SftTokenizer(DeepSeek.Value, Fixture("deepseek_r1.jinja", DsBos, DsEos));
        var s = sft.Tokenize(new SftExample("t") { Messages = [new("system", "Be brief."), .. SingleTurn()] });
        Expect(DeepSeek.Value, s,
            (DsBos + "Be brief.<｜User｜>What is 2+3?<｜Assistant｜><think>\n", false),
            ("2 plus 3 is 5.\n</think>\n\nThe answer is 5." + DsEos, true));
    }

    [Fact]
    public void Qwen3_SingleTurn_TrainsThinkBlockAnswerAndImEnd_NotTheNewlineAfterIt()
    {
        var sft = new SftTokenizer(Qwen.Value, Qwen3Template());
        var s = sft.Tokenize(new SftExample("t") { Messages = SingleTurn() });
        Expect(Qwen.Value, s,
            ("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n", false),
            (Think1 + "<|im_end|>", true));
    }

    [Fact]
    public void Qwen3_TwoTurns_HistoryLosesItsReasoning_SoOnlyTheLastTurnIsTrained()
    {
        var sft = new SftTokenizer(Qwen.Value, Qwen3Template());
        var s = sft.Tokenize(new SftExample("t") { Messages = TwoTurns() });
        Expect(Qwen.Value, s,
            ("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\nThe answer is 5.<|im_end|>\n" +
             "<|im_start|>user\nAnd twice that?<|im_end|>\n<|im_start|>assistant\n", false),
            (Think2 + "<|im_end|>", true));
        Assert.Equal(1, sft.UntrainedTurns);
    }

    [Fact]
    public void Qwen3_ReasoningContentField_IsRenderedAsAThinkBlock()
    {
        var sft = new SftTokenizer(Qwen.Value, Qwen3Template());
        var s = sft.Tokenize(new SftExample("t")
        {
            Messages = [new("user", "What is 2+3?"), new("assistant", "The answer is 5.") { ReasoningContent = "2 plus 3 is 5." }],
        });
        Expect(Qwen.Value, s,
            ("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n", false),
            (Think1 + "<|im_end|>", true));
    }

    [Fact]
    public void Qwen25_TwoTurns_EveryAssistantTurnTrained_InOneSequence()
    {
        var sft = new SftTokenizer(Qwen.Value, Fixture("qwen2_5_instruct.jinja", null, "<|im_end|>"));
        var s = sft.Tokenize(new SftExample("t") { Messages = TwoTurns() });
        Expect(Qwen.Value, s,
            ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
             "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n", false),
            (Think1 + "<|im_end|>", true),
            ("\n<|im_start|>user\nAnd twice that?<|im_end|>\n<|im_start|>assistant\n", false),
            (Think2 + "<|im_end|>", true));
        Assert.Equal(0, sft.UntrainedTurns);
    }

    [Fact]
    public void Llama3_TwoTurnsWithSystem_EveryAssistantTurnTrainedThroughEotId()
    {
        var tok = Llama.Value;
        var sft = new SftTokenizer(tok, Fixture("llama3_3_instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"));
        var s = sft.Tokenize(new SftExample("t") { Messages = [new("system", "Be brief."), .. TwoTurns()] });
        Expect(tok, s,
            ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
             "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", false),
            (Think1 + "<|eot_id|>", true),
            ("<|start_header_id|>user<|end_header_id|>\n\nAnd twice that?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", false),
            (Think2 + "<|eot_id|>", true));
    }

    [Fact]
    public void ConversationalPromptCompletion_TrainsOnlyTheCompletionsTurns()
    {
        var sft = new SftTokenizer(Qwen.Value, Fixture("qwen2_5_instruct.jinja", null, "<|im_end|>"));
        var s = sft.Tokenize(new SftExample("t") { Messages = TwoTurns(), FirstTrained = 2 });
        Expect(Qwen.Value, s,
            ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
             "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n" + Think1 + "<|im_end|>\n" +
             "<|im_start|>user\nAnd twice that?<|im_end|>\n<|im_start|>assistant\n", false),
            (Think2 + "<|im_end|>", true));
    }

    [Fact]
    public void WithoutAssistantOnlyLoss_EveryTokenIsTrained()
    {
        var sft = new SftTokenizer(Qwen.Value, Qwen3Template(), assistantOnlyLoss: false);
        var s = sft.Tokenize(new SftExample("t") { Messages = SingleTurn() });
        Assert.All(s.Trained, Assert.True);
    }

    [Fact]
    public void PromptCompletionStrings_TrainTheCompletionAndEos_TextTrainsEverything()
    {
        var tok = Qwen.Value;
        var sft = new SftTokenizer(tok, null);
        Expect(tok, sft.Tokenize(new SftExample("t") { Prompt = "2+3=", Completion = "5" }), ("2+3=", false), ("5<|im_end|>", true));
        Expect(tok, sft.Tokenize(new SftExample("t") { Text = "Hello world" }), ("Hello world<|im_end|>", true));
        var all = new SftTokenizer(tok, null, completionOnlyLoss: false);
        Expect(tok, all.Tokenize(new SftExample("t") { Prompt = "2+3=", Completion = "5" }), ("2+3=5<|im_end|>", true));
    }

    [Fact]
    public void ARowWithoutAnAssistantTurn_IsAnErrorNamingIt()
    {
        var sft = new SftTokenizer(Qwen.Value, Qwen3Template());
        var e = Assert.Throws<R1SharpException>(() => sft.Tokenize(new SftExample("data.jsonl:7") { Messages = [new("user", "hi")] }));
        Assert.Equal("data.jsonl:7: no assistant message to train on", e.Message);
        var none = new SftTokenizer(Qwen.Value, null);
        e = Assert.Throws<R1SharpException>(() => none.Tokenize(new SftExample("data.jsonl:3") { Messages = SingleTurn() }));
        Assert.StartsWith("data.jsonl:3: a conversation row needs the model's chat template", e.Message);
    }

    /// <summary>The sample's ids are the pieces' ids in order, each token trained exactly when its piece is, and
    /// tokenizing the whole text at once gives the same ids (no merge across a piece boundary).</summary>
    static void Expect(HfTokenizer tok, TokenizedSample s, params (string Text, bool Trained)[] pieces)
    {
        var ids = new List<int>();
        var mask = new List<bool>();
        foreach (var (text, trained) in pieces)
        {
            var p = tok.Encode(text);
            ids.AddRange(p);
            mask.AddRange(Enumerable.Repeat(trained, p.Count));
        }
        Assert.Equal(ids, s.Ids);
        for (int i = 0; i < ids.Count; i++)
            Assert.True(mask[i] == s.Trained[i], $"token {i} ({tok.Decode([ids[i]])}): expected trained={mask[i]}");
        Assert.Equal(tok.Encode(string.Concat(pieces.Select(p => p.Text))), s.Ids);
    }

    /// <summary>Qwen's byte-level BPE with Llama 3's special tokens added (no Llama 3 tokenizer is available here; the
    /// template's structure, which the mask depends on, is carried by these special tokens).</summary>
    static HfTokenizer LlamaTokenizer()
    {
        var json = JsonNode.Parse(File.ReadAllText(SharedData.Path("tokenizers", "qwen3", "tokenizer.json")))!.AsObject();
        var added = json["added_tokens"]!.AsArray();
        int next = added.Max(t => (int)t!["id"]!) + 1;
        foreach (var t in new[] { "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>" })
            added.Add(new JsonObject
            {
                ["id"] = next++, ["content"] = t, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-test-llama-tok-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}""");
        return HfTokenizer.FromFolder(dir);
    }
}
