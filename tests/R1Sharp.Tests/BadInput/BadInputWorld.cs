using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using R1Sharp.IO;
using R1Sharp.Tests.Serving;

namespace R1Sharp.Tests.BadInput;

/// <summary>
/// What the bad-input rows run against, built once for the suite: a tiny model folder, a prompt dataset, misbehaving
/// endpoints (refusing, silent, garbage, wrong shape, 500), corrupt files, and one `r1 serve` process with a small
/// body limit. Rows name these as {placeholders}; {recipe:KEY: VALUE;KEY: VALUE} writes a recipe that trains the tiny
/// model on the dataset with those lines added ({sft-recipe:…} the same for `r1 train sft`);
/// {model-with:KEY=JSON;KEY=JSON} is the tiny model's folder with those config.json values (KEY may be nested, a.b);
/// {gen-with:KEY=JSON} the same with generation_config.json's values replaced; {file:LINE;LINE} a YAML file of those lines;
/// {gguf-with:KEY=TYPE:VALUE} is the tiny model's GGUF with that metadata value (TYPE u32, i32, u64, f32 or str).
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
        names["sft-data"] = Write("sft.jsonl", """{"messages": [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"}]}""" + "\n");
        names["bad-sft-data"] = Write("sft.jsonl", """{"messages": [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"}]}""" + "\n{\"messages\": [{\"role\": 7}]}\n");
        names["gguf"] = dir.File("tiny.gguf");
        GgufExport.Export(model, names["gguf"]);
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

    [GeneratedRegex(@"\{sft-recipe:([^}]*)\}")]
    private static partial Regex SftRecipeLines();

    [GeneratedRegex(@"\{file:([^}]*)\}")]
    private static partial Regex FileLines();

    [GeneratedRegex(@"\{model-with:([^}]*)\}")]
    private static partial Regex ModelWith();

    [GeneratedRegex(@"\{gguf-with:([^}]*)\}")]
    private static partial Regex GgufWith();

    [GeneratedRegex(@"\{gen-with:([^}]*)\}")]
    private static partial Regex GenWith();

    /// <summary>An argument with its {placeholders} replaced (names and variants first, so a recipe line may hold one).</summary>
    public string Expand(string arg)
    {
        string named = Name().Replace(arg, m => names.TryGetValue(m.Groups[1].Value, out var v) ? v : throw new ArgumentException($"no placeholder {m.Value}"));
        named = ModelWith().Replace(named, m => Variant("model", m.Groups[1].Value, (f, spec) => ModelFolderWith(f, spec, "config.json")));
        named = GenWith().Replace(named, m => Variant("gen", m.Groups[1].Value, (f, spec) => ModelFolderWith(f, spec, "generation_config.json")));
        named = GgufWith().Replace(named, m => Variant("gguf", m.Groups[1].Value, GgufFileWith));
        named = SftRecipeLines().Replace(named, m => SftRecipe(m.Groups[1].Value));
        named = FileLines().Replace(named, m => Variant("file", m.Groups[1].Value, (f, spec) => { File.WriteAllText(f + ".yaml", spec.Replace(";", "\n") + "\n"); return f + ".yaml"; }));
        return RecipeLines().Replace(named, m => Recipe(m.Groups[1].Value));
    }

    readonly Dictionary<string, string> variants = [];

    /// <summary>One file or folder per spec, made the first time a row (or its expected text) names it.</summary>
    string Variant(string kind, string spec, Func<string, string, string> make)
    {
        lock (variants)
        {
            if (!variants.TryGetValue(kind + spec, out var path))
                variants[kind + spec] = path = make(dir.File($"{kind}-{variants.Count}"), spec);
            return path;
        }
    }

    /// <summary>The tiny model's folder (its files linked, not copied) with one JSON file's values replaced.</summary>
    string ModelFolderWith(string folder, string spec, string file)
    {
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(names["model"]))
            if (Path.GetFileName(f) != file) File.CreateSymbolicLink(Path.Combine(folder, Path.GetFileName(f)), f);
        var raw = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(names["model"], file)))!;
        foreach (var edit in spec.Split(';'))
        {
            int eq = edit.IndexOf('=');
            var path = edit[..eq].Split('.');
            var owner = path.Length == 1 ? raw : (JsonObject)raw[path[0]]!;
            owner[path[^1]] = JsonNode.Parse(edit[(eq + 1)..]);
        }
        File.WriteAllText(Path.Combine(folder, file), raw.ToJsonString());
        return folder;
    }

    /// <summary>The tiny model's GGUF with one metadata value replaced (or added).</summary>
    string GgufFileWith(string path, string spec)
    {
        path += ".gguf";
        int eq = spec.IndexOf('='), colon = spec.IndexOf(':', eq);
        string key = spec[..eq], type = spec[(eq + 1)..colon], text = spec[(colon + 1)..];
        var value = type switch
        {
            "u32" => GgufValue.U32(uint.Parse(text)),
            "i32" => GgufValue.I32(int.Parse(text)),
            "u64" => new GgufValue(GgufValueType.UInt64, ulong.Parse(text)),
            "f32" => GgufValue.F32(float.Parse(text, System.Globalization.CultureInfo.InvariantCulture)),
            _ => GgufValue.Str(text),
        };
        using var g = GgufFile.Open(names["gguf"]);
        var w = new GgufWriter();
        foreach (var (k, v) in g.MetadataList) w.Add(k, k == key ? value : v);
        if (!g.Metadata.ContainsKey(key)) w.Add(key, value);
        foreach (var t in g.Tensors)
            w.AddTensor(new GgufTensorSpec(t.Name, t.Dims, t.Type, s =>
            {
                var bytes = new byte[t.ByteSize];
                g.ReadData(t, 0, bytes);
                s.Write(bytes);
            }));
        w.Write(path);
        return path;
    }

    /// <summary>An SFT recipe training the tiny model on one conversation for one step; the row's lines override.</summary>
    string SftRecipe(string lines) => WriteRecipe(lines, new Dictionary<string, string>
    {
        ["model_name_or_path"] = names["model"], ["dataset_path"] = names["sft-data"], ["output_dir"] = dir.File("sft-" + files), ["max_steps"] = "1",
    });

    /// <summary>A recipe training the tiny model on the dataset for one step; the row's "key: value" lines override.</summary>
    string Recipe(string lines) => WriteRecipe(lines, new Dictionary<string, string>
    {
        ["model_name_or_path"] = names["model"], ["dataset_path"] = names["data"], ["output_dir"] = dir.File("run-" + files),
        ["num_generations"] = "2", ["per_device_train_batch_size"] = "2", ["max_completion_length"] = "4", ["max_steps"] = "1",
    });

    string WriteRecipe(string lines, Dictionary<string, string> keys)
    {
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
