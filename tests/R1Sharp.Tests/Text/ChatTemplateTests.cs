using System.Globalization;
using R1Sharp.Text;
using R1Sharp.Text.Jinja;

namespace R1Sharp.Tests.Text;

/// <summary>Loading templates from tokenizer_config.json and the context ChatTemplate passes to them.</summary>
public class ChatTemplateTests
{
    const string Echo = "{% for m in messages %}{{ m.role }}:{{ m.content }}{% if m.reasoning_content is defined %}({{ m.reasoning_content }}){% endif %};{% endfor %}"
        + "{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ add_generation_prompt }}{% if flag is defined %}|{{ flag }}{% endif %}";

    [Fact]
    public void LoadsTheSharedDeepSeekV3Config()
    {
        var t = ChatTemplate.FromTokenizerConfig(SharedData.Path("tokenizers", "deepseek_v3", "tokenizer_config.json"));
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>", t.Render([new ChatMessage("user", "Hi")]));
        Assert.False(t.OpensThinkBlock);
    }

    [Fact]
    public void TakesTheDefaultFromAListOfNamedTemplatesAndTokenObjects()
    {
        using var dir = new TempDir();
        var path = dir.File("tokenizer_config.json");
        File.WriteAllText(path, """
            {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]}
            """);
        var t = ChatTemplate.FromTokenizerConfig(path);
        Assert.Equal("<s>hello</s>", t.Render([new ChatMessage("user", "hello")]));
    }

    [Fact]
    public void MissingChatTemplateNamesTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("tokenizer_config.json");
        File.WriteAllText(path, """{"bos_token": "<s>"}""");
        var ex = Assert.Throws<R1SharpException>(() => ChatTemplate.FromTokenizerConfig(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("chat_template", ex.Message);
    }

    [Fact]
    public void FallsBackToChatTemplateJinjaBesideTheConfig()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"eos_token": "</s>"}""");
        File.WriteAllText(dir.File("chat_template.jinja"), "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}\n");
        Assert.Equal("hi</s>", ChatTemplate.FromTokenizerConfig(dir.File("tokenizer_config.json")).Render([new ChatMessage("user", "hi")]));
    }

    [Fact]
    public void ListWithoutDefaultNamesTheChoices()
    {
        using var dir = new TempDir();
        var path = dir.File("tokenizer_config.json");
        File.WriteAllText(path, """{"chat_template": [{"name": "rag", "template": "x"}]}""");
        var ex = Assert.Throws<R1SharpException>(() => ChatTemplate.FromTokenizerConfig(path));
        Assert.Contains("rag", ex.Message);
    }

    [Fact]
    public void TemplateSyntaxErrorsNameTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("tokenizer_config.json");
        File.WriteAllText(path, """{"chat_template": "{% if x %}unclosed"}""");
        var ex = Assert.Throws<R1SharpException>(() => ChatTemplate.FromTokenizerConfig(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("line 1", ex.Message);
    }

    [Fact]
    public void PassesMessagesTokensAndExtraContextAsTransformersDoes()
    {
        var t = new ChatTemplate(Echo, "<s>", "</s>");
        var msgs = new[] { new ChatMessage("user", "q"), new ChatMessage("assistant", "a") { ReasoningContent = "r" } };
        Assert.Equal("user:q;assistant:a(r);<s>|</s>|None|True", t.Render(msgs));
        Assert.Equal("user:q;assistant:a(r);<s>|</s>|None|False|7", t.Render(msgs, false, new Dictionary<string, object?> { ["flag"] = 7 }));
    }

    [Fact]
    public void UnsetSpecialTokensAreUndefined()
    {
        var t = new ChatTemplate("{{ bos_token is defined }}{{ eos_token is defined }}");
        Assert.Equal("FalseFalse", t.Render([]));
    }

    [Fact]
    public void ExtraContextAcceptsClrCollections()
    {
        var t = new ChatTemplate("{{ tools | tojson }}|{{ tools[0].function.name }}");
        var tools = new List<object?> { new Dictionary<string, object?> { ["type"] = "function", ["function"] = new Dictionary<string, object?> { ["name"] = "f", ["n"] = 2, ["x"] = 1.5 } } };
        Assert.Equal("""[{"type": "function", "function": {"name": "f", "n": 2, "x": 1.5}}]|f""", t.Render([], true, new Dictionary<string, object?> { ["tools"] = tools }));
    }

    [Fact]
    public void OpensThinkBlockFollowsTheGenerationPrompt()
    {
        Assert.True(new ChatTemplate("{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}").OpensThinkBlock);
        Assert.False(new ChatTemplate("{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}").OpensThinkBlock);
        Assert.False(new ChatTemplate("{{ raise_exception('no') }}").OpensThinkBlock);
    }

    [Fact]
    public void StrftimeNowGivesTodayLikePython()
    {
        // Llama 3.2-style templates call strftime_now("%d %b %Y"); C-locale month names.
        var before = DateTime.Now;
        var got = new JinjaTemplate("{{ strftime_now('%d %b %Y') }}").Render(new Dictionary<string, object?>());
        var after = DateTime.Now;
        Assert.Contains(got, new[] { before, after }.Select(d => d.ToString("dd MMM yyyy", CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void GenerationTagRendersItsBody()
    {
        // transformers' AssistantTracker extension adds {% generation %} for assistant masks; the text is unchanged.
        Assert.Equal("ABC1", new JinjaTemplate("A{% generation %}B{% endgeneration %}C{{ 1 }}").Render(new Dictionary<string, object?>()));
    }
}
