using System.Text;
using System.Text.RegularExpressions;
using R1Sharp.IO;
using R1Sharp.Tests.Serving;

namespace R1Sharp.Tests.BadInput;

/// <summary>
/// What the bad-input rows run against, built once for the suite: a tiny model folder, a prompt dataset, misbehaving
/// endpoints (refusing, silent, garbage, wrong shape, 500), corrupt files, and one `r1 serve` process with a small
/// body limit. Rows name these as {placeholders}; {recipe:KEY: VALUE;KEY: VALUE} writes a recipe that trains the tiny
/// model on the dataset with those lines added.
/// </summary>
public sealed partial class BadInputWorld : IAsyncLifetime
{
    readonly TempDir dir = new();
    readonly List<IDisposable> owned = [];
    readonly Dictionary<string, string> names = [];
    int files;
    public ServeProcess? Server { get; private set; }

    public async Task InitializeAsync()
    {
        string model = ServingTestKit.TinyFolder(dir, "tiny", seed: 1);
        names["model"] = model;
        names["tokenizer"] = ServingTestKit.Qwen3Tokenizer;
        names["dir"] = dir.Path;
        names["missing"] = dir.File("no-such-file");
        names["data"] = Write("data.jsonl", """{"prompt": "1+1", "problem": "1+1", "answer": "2"}""" + "\n" + """{"prompt": "2+2", "problem": "2+2", "answer": "4"}""" + "\n");

        names["closed"] = StubEndpoint.ClosedPort();
        names["garbage"] = Own(StubEndpoint.Answering(200, "<html>\u0000\u001b[2J not json")).Url;
        names["shape"] = Own(StubEndpoint.Answering(200, """{"object": "list", "data": []}""")).Url;
        names["http500"] = Own(StubEndpoint.Answering(500, """{"error": {"message": "the GPU fell off the bus", "type": "server_error"}}""")).Url;
        names["silent"] = Own(StubEndpoint.Silent()).Url;

        // A tokenizer.json whose JSON breaks on line 3.
        string badTok = Path.Combine(dir.Path, "bad-tokenizer");
        Directory.CreateDirectory(badTok);
        File.WriteAllText(Path.Combine(badTok, "tokenizer.json"), "{\n  \"model\": {\n    \"vocab\": {\"a\": 0,, }\n}\n");
        names["bad-tokenizer"] = badTok;
        names["bad-jsonl"] = Write("pairs.jsonl", """{"gold": "1", "prediction": "1"}""" + "\n{\"gold\": \"2\", \"prediction\n");
        names["invalid-utf8"] = WriteBytes("utf8.jsonl", [.. "{\"gold\": \""u8, 0xff, 0xfe, .. "\", \"prediction\": \""u8, 0xc3, 0x28, .. "\"}\n"u8]);
        names["not-gguf"] = Write("not.gguf", "GGML nonsense");
        names["bad-data"] = Write("prompts.jsonl", "{\"prompt\": \"1+1\", \"problem\": \"1+1\", \"answer\": \"2\"}\n{\"prompt\": 3, \"answer\n");
        names["truncated-model"] = Truncated(model);
        names["corrupt-gguf"] = CorruptGguf();
        QuantizedGgufs(model);

        Server = await ServeProcess.StartAsync(model, ["--max-request-bytes", "65536", "--max-context", "64", "--request-timeout", "30"]);
    }

    T Own<T>(T d) where T : IDisposable { owned.Add(d); return d; }

    string Write(string name, string text) => WriteBytes(name, Encoding.UTF8.GetBytes(text));

    string WriteBytes(string name, byte[] bytes)
    {
        string path = dir.File($"{Interlocked.Increment(ref files)}-{name}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A copy of the model folder whose weights file is cut in half.</summary>
    string Truncated(string model)
    {
        string copy = dir.File("truncated-model");
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(model)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        string weights = Path.Combine(copy, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        return copy;
    }

    /// <summary>A GGUF whose first key claims 18,000,000 bytes, with 800 KB of control bytes after it (issue 18).</summary>
    string CorruptGguf()
    {
        string path = dir.File("corrupt.gguf");
        var data = new byte[800_000];
        for (int i = 0; i < data.Length; i++) data[i] = "\0\u001b[31m\u0007\r"u8[i % 8];
        new GgufWriter().Add("general.architecture", GgufValue.Str("qwen2"))
            .AddTensor(new GgufTensorSpec("token_embd.weight", [1000, 200], GgmlType.F32, s => s.Write(data)))
            .Write(path);
        var bytes = File.ReadAllBytes(path);
        BitConverter.TryWriteBytes(bytes.AsSpan(24, 8), 18_000_000UL);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>The tiny model quantized as `r1 quantize --type q4_k_m` writes it, then two broken copies: one cut
    /// inside the data of its last tensor, one with a Q5_0 matrix labelled Q4_0 (its blocks are 4 bytes shorter, so the
    /// header claims less data than the file holds before the next tensor).</summary>
    void QuantizedGgufs(string model)
    {
        string good = dir.File("tiny.q4_k_m.gguf");
        GgufExport.Export(model, good, GgufFileType.Of(GgufQuantType.Q4_K_M));
        GgufTensorInfo last, relabel;
        using (var g = GgufFile.Open(good))
        {
            last = g.Tensors.MaxBy(t => t.Offset)!;
            relabel = g.Tensors.First(t => t.Type == GgmlType.Q5_0);
        }
        var bytes = File.ReadAllBytes(good);
        names["truncated-gguf"] = WriteBytes("truncated.gguf", bytes[..(bytes.Length - (int)last.ByteSize / 2)]);
        names["truncated-gguf-tensor"] = last.Name;
        var name = Encoding.UTF8.GetBytes(relabel.Name);
        int at = bytes.AsSpan().IndexOf(name) + name.Length + 4 + 8 * relabel.Dims.Length; // n_dims, the dims, then the type
        BitConverter.GetBytes((uint)GgmlType.Q4_0).CopyTo(bytes, at);
        names["mislabelled-gguf"] = WriteBytes("mislabelled.gguf", bytes);
        names["mislabelled-gguf-tensor"] = relabel.Name;
    }

    [GeneratedRegex(@"\{([a-z0-9-]+)\}")]
    private static partial Regex Name();

    [GeneratedRegex(@"\{recipe:([^}]*)\}")]
    private static partial Regex RecipeLines();

    /// <summary>An argument with its {placeholders} replaced (names first, so a recipe line may hold one).</summary>
    public string Expand(string arg)
    {
        string named = Name().Replace(arg, m => names.TryGetValue(m.Groups[1].Value, out var v) ? v : throw new ArgumentException($"no placeholder {m.Value}"));
        return RecipeLines().Replace(named, m => Recipe(m.Groups[1].Value));
    }

    /// <summary>A recipe training the tiny model on the dataset for one step; the row's "key: value" lines override.</summary>
    string Recipe(string lines)
    {
        var keys = new Dictionary<string, string>
        {
            ["model_name_or_path"] = names["model"], ["dataset_path"] = names["data"], ["output_dir"] = dir.File("run-" + files),
            ["num_generations"] = "2", ["per_device_train_batch_size"] = "2", ["max_completion_length"] = "4", ["max_steps"] = "1",
        };
        var extra = new List<string>();
        foreach (var line in lines.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = line.IndexOf(':');
            if (colon > 0 && keys.ContainsKey(line[..colon].Trim())) keys[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            else extra.Add(line);
        }
        return Write("recipe.yaml", string.Concat(keys.Select(k => $"{k.Key}: {k.Value}\n")) + string.Concat(extra.Select(l => l + "\n")));
    }

    public Task DisposeAsync()
    {
        Server?.Dispose();
        foreach (var d in owned) d.Dispose();
        dir.Dispose();
        return Task.CompletedTask;
    }
}
