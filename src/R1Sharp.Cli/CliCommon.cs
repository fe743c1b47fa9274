using System.CommandLine;
using System.Text.Json;
using R1Sharp.Generation;

namespace R1Sharp.Cli;

/// <summary>What every command shares: error handling (one line, non-zero exit), JSON output, sampling options.</summary>
public static class CliCommon
{
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Print stack traces on errors", Recursive = true };

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Runs a command body: a user error prints one line on stderr and exits 1; --verbose adds the trace.</summary>
    public static int Run(ParseResult parse, Func<int> body)
    {
        try { return body(); }
        catch (R1SharpException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            if (parse.GetValue(Verbose)) Console.Error.WriteLine(e);
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or FormatException or InvalidOperationException or System.Runtime.InteropServices.ExternalException)
        {
            Console.Error.WriteLine($"error: {ErrorLine(e)}");
            if (parse.GetValue(Verbose)) Console.Error.WriteLine(e);
            return 1;
        }
    }

    /// <summary>An unexpected exception as one line: libtorch's messages carry its C++ backtrace (20-odd "frame #N"
    /// lines) after the first line, which says what failed; --verbose shows the rest.</summary>
    public static string ErrorLine(Exception e)
    {
        string message = e.Message.Trim();
        int newline = message.IndexOf('\n');
        if (newline < 0) return message;
        return $"{message[..newline].TrimEnd()} (native error; --verbose shows the rest)";
    }

    /// <summary>The value of an --api-key-env variable; unset or empty is the user's error, named.</summary>
    public static string RequiredEnv(string variable)
    {
        string? value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrEmpty(value)) throw new R1SharpException($"--api-key-env {variable}: that environment variable is not set or empty");
        return value;
    }

    /// <summary>A sampling number from the command line must be a number: "Infinity" and "NaN" parse as floats but would
    /// sample garbage (or nothing) rather than fail.</summary>
    public static void CheckFinite(double? value, string option)
    {
        if (value is double v && !double.IsFinite(v)) throw new R1SharpException($"{option} must be a finite number, got {v}");
    }

    public static void PrintJson(object value) => Console.WriteLine(JsonSerializer.Serialize(value, Json));

    public static Option<string> Model() => new("--model") { Description = "Hugging Face model folder (config.json, *.safetensors, tokenizer.json) or GGUF file (quantized weights run as they are)", Required = true };
    public static Option<string?> Device() => new("--device") { Description = "cpu (default), cuda or cuda:N" };
    public static Option<string?> DType() => new("--dtype") { Description = "f32 or bf16 (default: the checkpoint's)" };
}

/// <summary>--temperature --top-p --top-k --max-tokens --seed --stop, defaulting to the model's generation_config.json.</summary>
public sealed class SamplingArgs
{
    public readonly Option<float?> Temperature = new("--temperature") { Description = "0 is greedy (default: generation_config.json's, DeepSeek recommends 0.6)" };
    public readonly Option<float?> TopP = new("--top-p") { Description = "nucleus sampling mass (default: generation_config.json's)" };
    public readonly Option<int?> TopK = new("--top-k") { Description = "keep the k most likely tokens (0: off)" };
    public readonly Option<int> MaxTokens = new("--max-tokens") { Description = "tokens to generate at most", DefaultValueFactory = _ => 256 };
    public readonly Option<long?> Seed = new("--seed") { Description = "makes sampling repeatable" };
    public readonly Option<string[]> Stop = new("--stop") { Description = "stop string (repeatable)", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Temperature, TopP, TopK, MaxTokens, Seed, Stop }) c.Options.Add(o);
    }

    /// <summary>What can be refused before a model loads: numbers that are not finite, budgets below one token.</summary>
    public void Check(ParseResult p)
    {
        CliCommon.CheckFinite(p.GetValue(Temperature), "--temperature");
        CliCommon.CheckFinite(p.GetValue(TopP), "--top-p");
        if (p.GetValue(MaxTokens) < 1) throw new R1SharpException($"--max-tokens must be ≥ 1, got {p.GetValue(MaxTokens)}");
    }

    public SamplingOptions Resolve(ParseResult p, SamplingOptions defaults)
    {
        Check(p);
        return defaults with
        {
        Temperature = p.GetValue(Temperature) ?? defaults.Temperature,
        TopP = p.GetValue(TopP) ?? defaults.TopP,
        TopK = p.GetValue(TopK) ?? defaults.TopK,
        MaxTokens = p.GetValue(MaxTokens),
        Seed = p.GetValue(Seed),
        Stop = p.GetValue(Stop) ?? [],
        };
    }
}
