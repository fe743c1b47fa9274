using System.Text.Json;
using R1Sharp.Text;

namespace R1Sharp.Tests.Text;

/// <summary>The real tokenizers in ../shared, loaded once per test run (they take a second or two each).</summary>
public static class TokenizerTestData
{
    static readonly Lazy<HfTokenizer> s_qwen3 = new(() => HfTokenizer.FromFolder(SharedData.Path("tokenizers", "qwen3")));
    static readonly Lazy<HfTokenizer> s_deepseek = new(() => HfTokenizer.FromFolder(SharedData.Path("tokenizers", "deepseek_v3")));

    public static HfTokenizer Get(string name) => name switch
    {
        "qwen3" => s_qwen3.Value,
        "deepseek_v3" => s_deepseek.Value,
        _ => throw new ArgumentException(name),
    };

    public static readonly string[] Names = ["qwen3", "deepseek_v3"];

    /// <summary>(text, expected ids by tokenizer name) from reference_ids.json, computed by @lenml/tokenizers.</summary>
    public static IReadOnlyList<(string Text, Dictionary<string, int[]> Ids)> ReferenceCases { get; } = LoadCases(SharedData.Path("tokenizers", "reference_ids.json"));

    public static IReadOnlyList<(string Text, Dictionary<string, int[]> Ids)> LoadCases(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var cases = new List<(string, Dictionary<string, int[]>)>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var ids = new Dictionary<string, int[]>();
            foreach (var name in Names)
                if (c.TryGetProperty(name, out var arr)) ids[name] = arr.EnumerateArray().Select(x => x.GetInt32()).ToArray();
            cases.Add((c.GetProperty("text").GetString()!, ids));
        }
        return cases;
    }

    public static IEnumerable<object[]> ReferenceCaseIndices() =>
        from name in Names from i in Enumerable.Range(0, ReferenceCases.Count) select new object[] { name, i };
}
