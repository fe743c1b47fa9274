using Parquet;
using Parquet.Schema;
using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

/// <summary>Parquet prompts: files written here by Parquet.Net (several row groups, numbers, nulls, shards) and one
/// fixture written by another implementation (hyparquet-writer, Fixtures/parquet/make-fixture.mjs).</summary>
public class ParquetDatasetTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static readonly DataField<string> Problem = new("problem");
    static readonly DataField<string> Solution = new("solution", nullable: true);
    static readonly DataField<int> IntAnswer = new("int_answer", nullable: false);
    static readonly DataField<double> Score = new("score", nullable: true);

    /// <summary>Writes rows [from, from+count) of a synthetic table, in row groups of the given sizes.</summary>
    static void Write(string path, int[] groups, int from = 0, int nullSolutionAt = -1) =>
        WriteAsync(path, groups, from, nullSolutionAt).GetAwaiter().GetResult();

    static async Task WriteAsync(string path, int[] groups, int from, int nullSolutionAt)
    {
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(Problem, Solution, IntAnswer, Score), stream);
        int row = from;
        foreach (int size in groups)
        {
            var rows = Enumerable.Range(row, size).ToArray();
            using (var g = writer.CreateRowGroup())
            {
                await g.WriteAsync(Problem, rows.Select(i => $"What is {i}+{i}?").ToArray());
                await g.WriteAsync(Solution, rows.Select(i => i == nullSolutionAt ? null! : (2 * i).ToString()).ToArray());
                await g.WriteAsync<int>(IntAnswer, rows.Select(i => -i).ToArray().AsMemory());
                await g.WriteAsync<double>(Score, rows.Select(i => (double?)(i + 0.25)).ToArray().AsMemory());
                g.CompleteValidate();
            }
            row += size;
        }
    }

    [Fact]
    public void SeveralRowGroups_ReadInOrder_NumbersAsInvariantStrings()
    {
        using var dir = new TempDir();
        string path = dir.File("train.parquet");
        Write(path, [2, 3, 1]);
        var data = PromptDataset.Load(path, "problem", "solution");
        Assert.Equal(Enumerable.Range(0, 6).Select(i => new PromptExample($"What is {i}+{i}?", (2 * i).ToString())), data);
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (-i).ToString()), PromptDataset.Load(path, "problem", "int_answer").Select(e => e.Answer));
        Assert.Equal(["0.25", "1.25", "2.25", "3.25", "4.25", "5.25"], PromptDataset.Load(path, "problem", "score").Select(e => e.Answer));
    }

    [Fact]
    public void AFolderOfShards_IsOneDataset_AndMixedSplitsAreRefused()
    {
        using var dir = new TempDir();
        string data = dir.File("data");
        Directory.CreateDirectory(data);
        Write(Path.Combine(data, "train-00001-of-00002.parquet"), [2, 2], from: 3);
        Write(Path.Combine(data, "train-00000-of-00002.parquet"), [3]);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (2 * i).ToString()), PromptDataset.Load(data, "problem", "solution").Select(e => e.Answer));
        Write(Path.Combine(data, "test-00000-of-00001.parquet"), [1]);
        var e = Assert.Throws<R1SharpException>(() => PromptDataset.Load(data, "problem", "solution"));
        Assert.Equal($"{data}: holds shards of several splits (test, train); name one file or a folder of one split", e.Message);
    }

    [Fact]
    public void MissingColumn_ListsTheColumnsThatExist()
    {
        using var dir = new TempDir();
        string path = dir.File("train.parquet");
        Write(path, [2]);
        var e = Assert.Throws<R1SharpException>(() => PromptDataset.Load(path, "question", "solution"));
        Assert.Equal($"{path}: no column \"question\" (columns: problem, solution, int_answer, score)", e.Message);
    }

    [Fact]
    public void ANull_NamesTheRow()
    {
        using var dir = new TempDir();
        string path = dir.File("train.parquet");
        Write(path, [2, 3], nullSolutionAt: 3);
        var e = Assert.Throws<R1SharpException>(() => PromptDataset.Load(path, "problem", "solution"));
        Assert.Equal($"{path}: row 4: \"solution\" is null", e.Message);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("not-parquet")]
    [InlineData("bad-footer")]
    public void ACorruptFile_IsOneErrorNamingTheFile(string kind)
    {
        using var dir = new TempDir();
        string path = dir.File("train.parquet");
        Write(path, [2, 3]);
        var bytes = File.ReadAllBytes(path);
        switch (kind)
        {
            case "truncated": File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]); break;
            case "not-parquet": File.WriteAllText(path, "{\"problem\": \"1+1\", \"solution\": \"2\"}\n"); break;
            case "bad-footer":
                // Garbage in the metadata just before the footer length and magic.
                for (int i = bytes.Length - 40; i < bytes.Length - 8; i++) bytes[i] = 0xFF;
                File.WriteAllBytes(path, bytes);
                break;
        }
        var e = Assert.Throws<R1SharpException>(() => PromptDataset.Load(path, "problem", "solution"));
        output.WriteLine(e.Message);
        Assert.StartsWith($"{path}: not a readable Parquet file (", e.Message);
    }

    [Fact]
    public void AFileFromAnotherWriter_ReadsAsThatWriterWroteIt()
    {
        // hyparquet-writer 0.17.0: Snappy pages, row groups of 2 rows; the expected rows are as hyparquet read them back.
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "parquet", "hyparquet.parquet");
        var data = PromptDataset.Load(path, "problem", "solution");
        Assert.Equal([
            new PromptExample("What is 1+1?", "2"),
            new PromptExample("Solve $x^2=4$ for x > 0.", "2"),
            new PromptExample("π ≈ ? (two decimals)", "3.14"),
            new PromptExample("Größte Zahl: 7, 3, 9?", "9"),
            new PromptExample("答案是多少？ 6×7", "42"),
        ], data);
        Assert.Equal(["2", "2", "3", "9", "42"], PromptDataset.Load(path, "problem", "int_answer").Select(e => e.Answer));
    }
}

/// <summary>Parquet files for tests that need a dataset.</summary>
public static class ParquetFiles
{
    /// <summary>Prompt/answer pairs as a Parquet file with "prompt" and "answer" columns, in row groups of at most groupSize.</summary>
    public static void WritePrompts(string path, IReadOnlyList<PromptExample> rows, int groupSize) =>
        WritePromptsAsync(path, rows, groupSize).GetAwaiter().GetResult();

    static async Task WritePromptsAsync(string path, IReadOnlyList<PromptExample> rows, int groupSize)
    {
        var prompt = new DataField<string>("prompt");
        var answer = new DataField<string>("answer");
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(prompt, answer), stream);
        foreach (var chunk in rows.Chunk(groupSize))
        {
            using var g = writer.CreateRowGroup();
            await g.WriteAsync(prompt, chunk.Select(r => r.Prompt).ToArray());
            await g.WriteAsync(answer, chunk.Select(r => r.Answer).ToArray());
            g.CompleteValidate();
        }
    }
}
