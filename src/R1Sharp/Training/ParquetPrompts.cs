using System.Globalization;
using System.Text.RegularExpressions;
using Parquet;
using Parquet.Schema;

namespace R1Sharp.Training;

/// <summary>
/// Prompt/answer pairs from Parquet, the format of Hugging Face datasets: two top-level columns read row group by row
/// group. Strings are taken as they are; integer and floating-point answers become invariant-culture strings (as a
/// number in JSONL does). A missing column, a null or a value of another type is an error naming the file (and the
/// row, counted from 1 across row groups).
/// </summary>
public static partial class ParquetPrompts
{
    /// <summary>Every *.parquet file of a folder, in name order, as one dataset.</summary>
    public static List<PromptExample> LoadFolder(string dir, string promptColumn, string answerColumn)
    {
        var files = Directory.GetFiles(dir, "*.parquet").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new R1SharpException($"{dir}: a folder dataset must hold .parquet files; found none");
        // HF shards are "<split>-00000-of-00002.parquet": a folder with train and test shards is a mistake to stop.
        var splits = files.Select(f => ShardName().Match(Path.GetFileName(f))).Where(m => m.Success)
            .Select(m => m.Groups[1].Value).Distinct().ToArray();
        if (splits.Length > 1)
            throw new R1SharpException($"{dir}: holds shards of several splits ({string.Join(", ", splits)}); name one file or a folder of one split");
        return files.SelectMany(f => Load(f, promptColumn, answerColumn)).ToList();
    }

    public static List<PromptExample> Load(string path, string promptColumn, string answerColumn)
    {
        try { return LoadAsync(path, promptColumn, answerColumn).GetAwaiter().GetResult(); }
        catch (Exception e) when (e is not R1SharpException)
        {
            throw new R1SharpException($"{path}: not a readable Parquet file ({e.GetType().Name}: {e.Message})");
        }
    }

    static async Task<List<PromptExample>> LoadAsync(string path, string promptColumn, string answerColumn)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        var prompt = Column(reader.Schema, promptColumn, path);
        var answer = Column(reader.Schema, answerColumn, path);
        var list = new List<PromptExample>();
        long firstRow = 1;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            int n = checked((int)group.RowCount);
            var prompts = await ReadStrings(group, prompt, n, path, firstRow);
            var answers = await ReadStrings(group, answer, n, path, firstRow);
            for (int i = 0; i < n; i++) list.Add(new PromptExample(prompts[i], answers[i]));
            firstRow += n;
        }
        return list;
    }

    static DataField Column(ParquetSchema schema, string name, string path)
    {
        var field = schema.Fields.FirstOrDefault(f => f.Name == name)
            ?? throw new R1SharpException($"{path}: no column \"{name}\" (columns: {string.Join(", ", schema.Fields.Select(f => f.Name))})");
        if (field is not DataField data || data.IsArray)
            throw new R1SharpException($"{path}: column \"{name}\" is a {field.SchemaType.ToString().ToLowerInvariant()}, expected strings or numbers");
        return data;
    }

    static async Task<string[]> ReadStrings(ParquetRowGroupReader group, DataField field, int n, string path, long firstRow)
    {
        var t = field.ClrType;
        string?[] values;
        if (t == typeof(string) || t == typeof(ReadOnlyMemory<char>)) // Parquet.Net 6 reports UTF-8 columns as ReadOnlyMemory<char>
        {
            values = new string?[n];
            await group.ReadAsync(field, values.AsMemory());
        }
        else if (t == typeof(int)) values = await Numbers<int>(group, field, n, v => v.ToString(CultureInfo.InvariantCulture));
        else if (t == typeof(long)) values = await Numbers<long>(group, field, n, v => v.ToString(CultureInfo.InvariantCulture));
        else if (t == typeof(short)) values = await Numbers<short>(group, field, n, v => v.ToString(CultureInfo.InvariantCulture));
        else if (t == typeof(double)) values = await Numbers<double>(group, field, n, v => v.ToString(CultureInfo.InvariantCulture));
        else if (t == typeof(float)) values = await Numbers<float>(group, field, n, v => v.ToString(CultureInfo.InvariantCulture));
        else throw new R1SharpException($"{path}: column \"{field.Name}\" holds {t.Name} values, expected strings or numbers");
        for (int i = 0; i < n; i++)
            if (values[i] is null) throw new R1SharpException($"{path}: row {firstRow + i}: \"{field.Name}\" is null");
        return values!;
    }

    static async Task<string?[]> Numbers<T>(ParquetRowGroupReader group, DataField field, int n, Func<T, string> format) where T : struct
    {
        if (field.IsNullable)
        {
            var nullable = new T?[n];
            await group.ReadAsync<T>(field, nullable.AsMemory());
            return nullable.Select(v => v is { } x ? format(x) : null).ToArray();
        }
        var plain = new T[n];
        await group.ReadAsync<T>(field, plain.AsMemory());
        return plain.Select(format).ToArray();
    }

    [GeneratedRegex(@"^(.+)-\d+-of-\d+\.parquet$")]
    private static partial Regex ShardName();
}
