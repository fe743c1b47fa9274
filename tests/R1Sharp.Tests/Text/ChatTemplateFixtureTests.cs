using System.Text.Json;
using R1Sharp.Text;

namespace R1Sharp.Tests.Text;

/// <summary>Every template × conversation in Fixtures/chat_templates/expected.json, rendered by Python jinja2 as
/// transformers configures it (make_fixtures.py), must come out of ChatTemplate byte for byte.</summary>
public class ChatTemplateFixtureTests
{
    static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates");
    static readonly Lazy<JsonDocument> Expected = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "expected.json"))));
    static readonly Dictionary<string, ChatTemplate> Templates = new();

    public static IEnumerable<object[]> Cases()
    {
        foreach (var t in Expected.Value.RootElement.GetProperty("templates").EnumerateArray())
            foreach (var c in t.GetProperty("cases").EnumerateArray())
                yield return [t.GetProperty("id").GetString()!, c.GetProperty("name").GetString()!];
    }

    static (JsonElement Template, JsonElement Case) Find(string templateId, string caseName)
    {
        foreach (var t in Expected.Value.RootElement.GetProperty("templates").EnumerateArray())
            if (t.GetProperty("id").GetString() == templateId)
                foreach (var c in t.GetProperty("cases").EnumerateArray())
                    if (c.GetProperty("name").GetString() == caseName) return (t, c);
        throw new KeyNotFoundException($"{templateId}/{caseName}");
    }

    internal static ChatTemplate Load(JsonElement t)
    {
        var id = t.GetProperty("id").GetString()!;
        lock (Templates)
        {
            if (Templates.TryGetValue(id, out var cached)) return cached;
            var source = t.GetProperty("source").GetString()!;
            var template = source.StartsWith("shared:")
                ? ChatTemplate.FromTokenizerConfig(SharedData.Path("tokenizers", source["shared:".Length..], "tokenizer_config.json"))
                : new ChatTemplate(File.ReadAllText(Path.Combine(FixtureDir, source)), t.GetProperty("bos_token").GetString(), t.GetProperty("eos_token").GetString());
            Templates[id] = template;
            return template;
        }
    }

    static List<ChatMessage> Messages(JsonElement c) => c.GetProperty("messages").EnumerateArray().Select(m => new ChatMessage(
        m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)
    {
        ReasoningContent = m.TryGetProperty("reasoning_content", out var r) ? r.GetString() : null,
    }).ToList();

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersLikeJinja2(string templateId, string caseName)
    {
        var (t, c) = Find(templateId, caseName);
        var template = Load(t);
        var extra = c.GetProperty("extra").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        var messages = Messages(c);
        bool agp = c.GetProperty("add_generation_prompt").GetBoolean();
        if (c.TryGetProperty("error", out var err))
        {
            // jinja2 raised (e.g. raise_exception, or iterating tools=None): we must refuse too, with the template's own text.
            var ex = Assert.Throws<R1SharpException>(() => template.Render(messages, agp, extra));
            if (err.GetString()!.StartsWith("TemplateError: ")) Assert.Contains(err.GetString()!["TemplateError: ".Length..], ex.Message);
            return;
        }
        Assert.Equal(c.GetProperty("expected").GetString(), template.Render(messages, agp, extra));
    }

    [Theory]
    [InlineData("deepseek_v3", false)]
    [InlineData("qwen3", false)]
    [InlineData("deepseek_r1", true)]
    [InlineData("deepseek_r1_distill", true)]
    [InlineData("qwen2_5_instruct", false)]
    [InlineData("llama3_3_instruct", false)]
    public void KnowsWhetherGenerationOpensThinkBlock(string templateId, bool expected)
    {
        var t = Expected.Value.RootElement.GetProperty("templates").EnumerateArray().First(x => x.GetProperty("id").GetString() == templateId);
        Assert.Equal(expected, Load(t).OpensThinkBlock);
    }
}
