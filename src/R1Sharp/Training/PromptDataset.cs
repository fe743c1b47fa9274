using System.Text.Json;

namespace R1Sharp.Training;

/// <summary>One RL prompt: the question as the user wrote it and its reference answer.</summary>
public sealed record PromptExample(string Prompt, string Answer);

/// <summary>Reads prompt/answer pairs from JSONL (one object per line), from a Parquet file, or from a folder of
/// Parquet shards (Hugging Face's data/train-0000x-of-0000y.parquet). Bad input is an error naming the file and the
/// line or row.</summary>
public static class PromptDataset
{
    public static List<PromptExample> Load(string path, string promptField = "prompt", string answerField = "answer")
    {
        List<PromptExample> list;
        if (Directory.Exists(path)) list = ParquetPrompts.LoadFolder(path, promptField, answerField);
        else if (!File.Exists(path)) throw new R1SharpException($"{path}: dataset not found");
        else if (path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)) list = ParquetPrompts.Load(path, promptField, answerField);
        else if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            list = LoadJsonl(path, promptField, answerField);
        else throw new R1SharpException($"{path}: unsupported dataset format (expected .jsonl, .parquet or a folder of .parquet files)");
        if (list.Count == 0) throw new R1SharpException($"{path}: the dataset is empty");
        return list;
    }

    static List<PromptExample> LoadJsonl(string path, string promptField, string answerField)
    {
        var list = new List<PromptExample>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new R1SharpException($"{path}:{lineNo}: malformed JSON: {e.Message}"); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new R1SharpException($"{path}:{lineNo}: expected a JSON object, found {doc.RootElement.ValueKind}");
                list.Add(new PromptExample(Field(doc.RootElement, promptField, path, lineNo), Field(doc.RootElement, answerField, path, lineNo)));
            }
        }
        return list;
    }

    static string Field(JsonElement o, string name, string path, int line)
    {
        if (!o.TryGetProperty(name, out var v)) throw new R1SharpException($"{path}:{line}: no \"{name}\" field");
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString()!,
            JsonValueKind.Number => v.GetRawText(),
            // A code problem's tests (open-r1's verification_info) are an object: the code rewards read it as JSON.
            JsonValueKind.Object or JsonValueKind.Array => v.GetRawText(),
            _ => throw new R1SharpException($"{path}:{line}: \"{name}\" must be a string, a number or (code tests) an object, found {v.ValueKind}"),
        };
    }
}
