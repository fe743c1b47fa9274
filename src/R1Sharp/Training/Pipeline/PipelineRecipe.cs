using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using R1Sharp.Tasks;
using R1Sharp.Training.Distill;
using R1Sharp.Training.Sampling;
using R1Sharp.Training.Sft;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace R1Sharp.Training.Pipeline;

/// <summary>A stage input as the recipe wrote it: the key, its value(s) and the key's line.</summary>
public sealed record StageInput(string Key, IReadOnlyList<string> Values, int Line);

/// <summary>One stage of a pipeline: its name (also its folder), its kind, its options (the kind's recipe keys), its
/// inputs (models and datasets: `base`, an earlier stage, a file in an earlier stage's folder, or a path), an
/// optional wall-clock budget, and a fingerprint of its text (a finished stage whose recipe changed is not reused).</summary>
public sealed class PipelineStage
{
    public required string Name { get; init; }
    public required string Kind { get; init; }
    public required int Line { get; init; }
    public required IRecipe Options { get; init; }
    public required IReadOnlyDictionary<string, StageInput> Inputs { get; init; }
    /// <summary>Train until this stage's steps have taken as long as the named earlier stage's did.</summary>
    public string? TimeBudgetOf { get; init; }
    public double? MaxTrainSeconds { get; init; }
    public required string Fingerprint { get; init; }
}

/// <summary>The held-out evaluation run on every model a stage produces: `r1 eval`'s settings as recipe keys.</summary>
public sealed class PipelineEvalOptions : IRecipe
{
    /// <summary>Problems (problem or question, answer), a path or a file of an earlier stage ("teacher/heldout.jsonl").</summary>
    public string DatasetPath { get; set; } = "";
    public int K { get; set; } = 4;
    public int? Limit { get; set; }
    public double Temperature { get; set; } = 0.6;
    public double TopP { get; set; } = 0.95;
    public int? MaxTokens { get; set; }
    public long Seed { get; set; }
    public string Instruction { get; set; } = Eval.EvalSettings.DeepSeekInstruction;
    public bool ForceThink { get; set; } = true;
    public int MaxBatch { get; set; } = 64;

    public void Validate(string source)
    {
        void Check(bool ok, string message) { if (!ok) throw new R1SharpException($"{source}: {message}"); }
        Check(DatasetPath.Length > 0, "eval needs dataset_path (the held-out problems)");
        Check(K >= 1, $"k must be ≥ 1, got {K}");
        Check(Limit is null or >= 1, $"limit must be ≥ 1, got {Limit}");
        Check(MaxTokens is null or >= 1, $"max_tokens must be ≥ 1, got {MaxTokens}");
        Check(MaxBatch >= 1, $"max_batch must be ≥ 1, got {MaxBatch}");
    }
}

/// <summary>
/// A multi-stage recipe as data (`r1 pipeline --config`): where the run goes, the base model, the held-out evaluation
/// after each stage, and the stages in order. Parsing checks everything it can before anything runs: an unknown top-
/// level key, stage kind or stage option, a duplicate name, an input that names a later stage or a path that does not
/// exist is one error naming the file, the line and the key.
/// </summary>
public sealed partial record PipelineRecipe
{
    /// <summary>Each kind's options; <c>model</c>/<c>dataset</c>: what the stage produces (the input a later stage's
    /// model_name_or_path / dataset_path gets when it names this stage).</summary>
    public static readonly IReadOnlyDictionary<string, (Func<IRecipe> Options, bool Model, bool Dataset, string[] ModelKeys, string[] DatasetKeys)> Kinds =
        new Dictionary<string, (Func<IRecipe>, bool, bool, string[], string[])>
        {
            ["sft"] = (() => new SftConfig(), true, false, ["model_name_or_path"], ["dataset_path", "eval_dataset_path"]),
            ["grpo"] = (() => new GrpoConfig(), true, false, ["model_name_or_path"], ["dataset_path"]),
            ["sample"] = (() => new SampleOptions(), false, true, ["model_name_or_path"], ["dataset_path"]),
            ["distill"] = (() => new DistillConfig(), true, false, ["model_name_or_path", "teacher_model_name_or_path"], ["dataset_path"]),
            ["zero"] = (() => new ZeroStageOptions(), true, true, [], []),
            ["pretrain"] = (() => new ZeroStageOptions(pretrainOnly: true), true, false, [], []),
        };

    static readonly string[] TopLevelKeys = ["output_dir", "base_model", "eval", "stages", "compare", "expected_winner", "expectation"];
    static readonly string[] StageKeys = ["name", "kind", "time_budget_of", "max_train_seconds"];

    public required string Source { get; init; }
    /// <summary>The folder relative paths in the recipe are relative to.</summary>
    public required string Directory { get; init; }
    public required string OutputDir { get; init; }
    public string? BaseModel { get; init; }
    public PipelineEvalOptions? Eval { get; init; }
    public StageInput? EvalInput { get; init; }
    public required IReadOnlyList<PipelineStage> Stages { get; init; }
    /// <summary>Stages whose held-out pass@1 the report ranks against each other (e.g. base, grpo, sft).</summary>
    public IReadOnlyList<string> Compare { get; init; } = [];
    /// <summary>The compared stage a reference result predicts to win (DeepSeek-R1 §4.1: the distilled student); the
    /// report says whether the run agrees, whatever the result.</summary>
    public string? ExpectedWinner { get; init; }
    /// <summary>Where the expectation comes from, quoted in the report.</summary>
    public string? Expectation { get; init; }
    public required string Text { get; init; }

    public static PipelineRecipe Load(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"{path}: recipe not found");
        return Parse(File.ReadAllText(path), path, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <param name="checkPaths">false: inputs that are plain paths are not required to exist yet (checking a shipped
    /// recipe whose data a user supplies)</param>
    public static PipelineRecipe Parse(string yaml, string source, string directory, bool checkPaths = true)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e) { throw new R1SharpException($"{source}:{e.Start.Line}: malformed YAML: {e.Message}"); }
        // YamlDotNet reports a few malformed documents (an unclosed flow sequence) without a position.
        catch (InvalidOperationException e) { throw new R1SharpException($"{source}: malformed YAML: {e.Message}"); }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new R1SharpException($"{source}: expected a mapping with output_dir, stages and optionally base_model, eval, compare");
        string? outputDir = null, baseModel = null, expectedWinner = null, expectation = null;
        int expectedLine = 0;
        YamlMappingNode? evalNode = null;
        YamlSequenceNode? stagesNode = null;
        var compare = new List<string>();
        int compareLine = 0;
        foreach (var (k, v) in root.Children)
        {
            string key = Key(k);
            int line = (int)k.Start.Line;
            switch (key)
            {
                case "output_dir": outputDir = Scalar(v, source, line, key); break;
                case "base_model": baseModel = Scalar(v, source, line, key); break;
                case "eval": evalNode = v as YamlMappingNode ?? throw new R1SharpException($"{source}:{line}: \"eval\" must be a mapping of r1 eval's options"); break;
                case "stages": stagesNode = v as YamlSequenceNode ?? throw new R1SharpException($"{source}:{line}: \"stages\" must be a list of stages"); break;
                case "compare": compare = Values(v, source, line, key); compareLine = line; break;
                case "expected_winner": expectedWinner = Scalar(v, source, line, key); expectedLine = line; break;
                case "expectation": expectation = Scalar(v, source, line, key); break;
                default: throw Unknown(source, line, key, TopLevelKeys, "key");
            }
        }
        if (stagesNode is null || stagesNode.Children.Count == 0) throw new R1SharpException($"{source}: \"stages\" is missing or empty");
        string Resolve(string p) => Path.IsPathRooted(p) ? p : Path.GetFullPath(Path.Combine(directory, p));
        Func<string, bool> exists = checkPaths ? p => File.Exists(Resolve(p)) || System.IO.Directory.Exists(Resolve(p)) : _ => true;

        var stages = new List<PipelineStage>();
        foreach (var node in stagesNode.Children) stages.Add(ParseStage(node, source, stages, baseModel, exists));

        PipelineEvalOptions? eval = null;
        StageInput? evalInput = null;
        if (evalNode != null)
        {
            eval = new PipelineEvalOptions();
            var inputs = Inputs(evalNode, source, [], ["dataset_path"]);
            RecipeLoader.Apply(evalNode, eval, source, new HashSet<string>(["dataset_path"]));
            evalInput = inputs.GetValueOrDefault("dataset_path") ?? throw new R1SharpException($"{source}:{evalNode.Start.Line}: eval needs dataset_path (the held-out problems)");
            eval.DatasetPath = evalInput.Values[0];
            eval.Validate($"{source}:{evalNode.Start.Line}");
            // The held-out problems may be a file an earlier stage writes (teacher/heldout.jsonl): any stage is earlier.
            CheckInput(evalInput, source, stages, stages.Count, baseModel, exists, dataset: true);
        }
        foreach (var name in compare)
            if (stages.All(s => s.Name != name) && name != "base")
                throw new R1SharpException($"{source}:{compareLine}: compare names \"{name}\", which is not a stage");
        if (expectedWinner != null && !compare.Contains(expectedWinner))
            throw new R1SharpException($"{source}:{expectedLine}: expected_winner \"{expectedWinner}\" is not one of compare ({string.Join(", ", compare)})");
        return new PipelineRecipe
        {
            Source = source, Directory = directory, OutputDir = Resolve(outputDir ?? throw new R1SharpException($"{source}: output_dir is required")),
            BaseModel = baseModel is null ? null : Resolve(baseModel), Eval = eval, EvalInput = evalInput, Stages = stages, Compare = compare,
            ExpectedWinner = expectedWinner, Expectation = expectation, Text = yaml,
        };
    }

    static PipelineStage ParseStage(YamlNode node, string source, List<PipelineStage> earlier, string? baseModel, Func<string, bool> exists)
    {
        int line = (int)node.Start.Line;
        if (node is not YamlMappingNode map) throw new R1SharpException($"{source}:{line}: a stage must be a mapping with name, kind and the kind's options");
        string? name = null, kind = null, budgetOf = null;
        double? maxSeconds = null;
        foreach (var (k, v) in map.Children)
        {
            int l = (int)k.Start.Line;
            switch (Key(k))
            {
                case "name": name = Scalar(v, source, l, "name"); break;
                case "kind": kind = Scalar(v, source, l, "kind"); break;
                case "time_budget_of": budgetOf = Scalar(v, source, l, "time_budget_of"); break;
                case "max_train_seconds":
                    maxSeconds = double.TryParse(Scalar(v, source, l, "max_train_seconds"), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) && d > 0
                        ? d : throw new R1SharpException($"{source}:{l}: \"max_train_seconds\" expects a positive number, found \"{v}\"");
                    break;
                case "output_dir": throw new R1SharpException($"{source}:{l}: \"output_dir\" of a stage is set by the pipeline (the run folder's subfolder named after the stage)");
            }
        }
        if (name is null) throw new R1SharpException($"{source}:{line}: a stage needs a \"name\"");
        if (!NamePattern().IsMatch(name) || name == "base")
            throw new R1SharpException($"{source}:{line}: stage name \"{name}\" must be letters, digits, '_' or '-' and not \"base\" (it names the stage's folder)");
        if (earlier.Any(s => s.Name == name)) throw new R1SharpException($"{source}:{line}: a stage named \"{name}\" already exists");
        if (kind is null) throw new R1SharpException($"{source}:{line}: stage \"{name}\" needs a \"kind\" ({string.Join(", ", Kinds.Keys)})");
        if (!Kinds.TryGetValue(kind, out var spec))
        {
            int kindLine = (int)map.Children.First(kv => Key(kv.Key) == "kind").Key.Start.Line;
            throw Unknown(source, kindLine, kind, Kinds.Keys, "stage kind");
        }
        var options = spec.Options();
        var inputs = Inputs(map, source, spec.ModelKeys, spec.DatasetKeys);
        RecipeLoader.Apply(map, options, source, new HashSet<string>(StageKeys.Concat(spec.ModelKeys).Concat(spec.DatasetKeys)));
        string where = $"{source}:{line}";
        options.Validate(where);
        foreach (var input in inputs.Values)
            CheckInput(input, source, earlier, earlier.Count, baseModel, exists, dataset: spec.DatasetKeys.Contains(input.Key));
        if (budgetOf != null && earlier.All(s => s.Name != budgetOf))
            throw new R1SharpException($"{where}: time_budget_of names \"{budgetOf}\", which is not an earlier stage");
        if ((budgetOf != null || maxSeconds != null) && kind is not ("sft" or "grpo" or "distill"))
            throw new R1SharpException($"{where}: a time budget applies to training stages (sft, grpo, distill), not {kind}");
        return new PipelineStage
        {
            Name = name, Kind = kind, Line = line, Options = options, Inputs = inputs, TimeBudgetOf = budgetOf, MaxTrainSeconds = maxSeconds,
            Fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical(map))))[..16],
        };
    }

    /// <summary>The input keys of a mapping: one value each, or a list for dataset_path (datasets concatenated).</summary>
    static Dictionary<string, StageInput> Inputs(YamlMappingNode map, string source, string[] modelKeys, string[] datasetKeys)
    {
        var inputs = new Dictionary<string, StageInput>();
        foreach (var (k, v) in map.Children)
        {
            string key = Key(k);
            int line = (int)k.Start.Line;
            if (!modelKeys.Contains(key) && !datasetKeys.Contains(key)) continue;
            var values = Values(v, source, line, key);
            if (values.Count == 0 || values.Any(x => x.Length == 0)) throw new R1SharpException($"{source}:{line}: \"{key}\" is empty");
            if (values.Count > 1 && key != "dataset_path") throw new R1SharpException($"{source}:{line}: \"{key}\" takes one value, found a list");
            inputs[key] = new StageInput(key, values, line);
        }
        return inputs;
    }

    /// <summary>An input must be `base` (a model, when base_model is set), an earlier stage that produces what is
    /// asked, a file under an earlier stage's folder, or an existing path.</summary>
    static void CheckInput(StageInput input, string source, IReadOnlyList<PipelineStage> stages, int before, string? baseModel,
        Func<string, bool> exists, bool dataset)
    {
        foreach (var value in input.Values)
        {
            string where = $"{source}:{input.Line}: {input.Key} \"{value}\"";
            if (value == "base")
            {
                if (dataset) throw new R1SharpException($"{where}: base is a model, not a dataset");
                if (baseModel is null) throw new R1SharpException($"{where}: the recipe has no base_model");
                continue;
            }
            string head = value.Split('/')[0];
            int at = stages.Select((s, i) => (s, i)).FirstOrDefault(x => x.s.Name == head, (null!, -1)).Item2;
            if (at >= before || (at < 0 && head != value && stages.Skip(before).Any(s => s.Name == head)))
                throw new R1SharpException($"{where}: stage \"{head}\" has not run at this point (a stage's inputs come from earlier stages)");
            if (at >= 0)
            {
                if (head != value) continue; // a file in that stage's folder
                var spec = Kinds[stages[at].Kind];
                if (dataset ? !spec.Dataset : !spec.Model)
                    throw new R1SharpException($"{where}: a {stages[at].Kind} stage produces {(spec.Model ? "a model" : "a dataset")}, not {(dataset ? "a dataset" : "a model")}");
                continue;
            }
            if (!exists(value))
                throw new R1SharpException($"{where} is not base, an earlier stage or an existing path");
        }
    }

    static string Key(YamlNode k) => (k as YamlScalarNode)?.Value ?? "";

    static string Scalar(YamlNode v, string source, int line, string key) =>
        v is YamlScalarNode s && s.Value is { Length: > 0 } text ? text : throw new R1SharpException($"{source}:{line}: \"{key}\" expects a string, found \"{v}\"");

    static List<string> Values(YamlNode v, string source, int line, string key) => v switch
    {
        YamlScalarNode s => [s.Value ?? ""],
        YamlSequenceNode seq => seq.Children.Select(c => c is YamlScalarNode cs ? cs.Value ?? "" : throw new R1SharpException($"{source}:{line}: \"{key}\" expects strings")).ToList(),
        _ => throw new R1SharpException($"{source}:{line}: \"{key}\" expects a string or a list of strings"),
    };

    /// <summary>"unknown key "x" (did you mean "y"?)" for a near miss, else the list of what is known.</summary>
    static R1SharpException Unknown(string source, int line, string key, IEnumerable<string> known, string what)
    {
        string? near = known.OrderBy(k => RecipeLoader.Distance(k, key)).FirstOrDefault();
        return new R1SharpException($"{source}:{line}: unknown {what} \"{key}\" " + (near != null && RecipeLoader.Distance(near, key) <= 3
            ? $"(did you mean \"{near}\"?)" : $"(expected {string.Join(", ", known)})"));
    }

    static string Canonical(YamlNode node) => node switch
    {
        YamlScalarNode s => s.Value ?? "",
        YamlSequenceNode seq => "[" + string.Join(",", seq.Children.Select(Canonical)) + "]",
        YamlMappingNode map => "{" + string.Join(",", map.Children.Select(kv => Canonical(kv.Key) + ":" + Canonical(kv.Value))) + "}",
        _ => "",
    };

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex NamePattern();
}
