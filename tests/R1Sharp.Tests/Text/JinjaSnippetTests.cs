using System.Text.Json;
using R1Sharp.Text.Jinja;

namespace R1Sharp.Tests.Text;

/// <summary>One small template per Jinja feature (Fixtures/chat_templates/jinja_snippets.py), rendered by Python jinja2
/// in transformers' configuration: our output must match byte for byte, and where jinja2 raises we must raise too.</summary>
public class JinjaSnippetTests
{
    static readonly Lazy<JsonDocument> Doc = new(() => JsonDocument.Parse(File.ReadAllText(
        Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates", "jinja_cases.json"))));

    public static IEnumerable<object[]> Cases() =>
        Doc.Value.RootElement.GetProperty("cases").EnumerateArray().Select(c => new object[] { c.GetProperty("name").GetString()! });

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesJinja2(string name)
    {
        var root = Doc.Value.RootElement;
        var c = root.GetProperty("cases").EnumerateArray().First(x => x.GetProperty("name").GetString() == name);
        var context = root.GetProperty("context").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        var source = c.GetProperty("template").GetString()!;
        if (c.TryGetProperty("error", out var err))
        {
            var ex = Assert.Throws<R1SharpException>(() => new JinjaTemplate(source).Render(context));
            Assert.StartsWith("chat template line ", ex.Message);
            if (err.GetString()!.StartsWith("TemplateError: ")) Assert.Contains(err.GetString()!["TemplateError: ".Length..], ex.Message);
            return;
        }
        Assert.Equal(c.GetProperty("expected").GetString(), new JinjaTemplate(source).Render(context));
    }
}
