using System.Text.Json.Nodes;

namespace R1Sharp.Tests.BadInput;

/// <summary>One malformed input: a command line (run as `r1 …`) or an HTTP request to `r1 serve`, and the text the
/// one-line error (or the JSON error object) must contain to name the file, key, line, tensor or endpoint.</summary>
public sealed record BadInputRow(string Names, string[] Args, int Status = 0, string Path = "", string Body = "")
{
    public bool IsHttp => Status != 0;
    public override string ToString() => IsHttp ? $"{Status} {Path} {Body[..Math.Min(60, Body.Length)]}" : string.Join(' ', Args);
}

/// <summary>
/// The bad-input corpus of issue 18, one row per line. A CLI row: what the error must name, then the arguments, with
/// {placeholders} from <see cref="BadInputWorld"/>. An HTTP row: the status, what the error object must name, the
/// route and the body. Config-value rows (config.json keys zero, negative, fractional, huge, of the wrong type) join
/// when the per-family config records validate them.
/// </summary>
public static class BadInputRows
{
    static BadInputRow Cli(string names, params string[] args) => new(names, args);
    static BadInputRow Http(int status, string names, string path, string body) => new(names, [], status, path, body);

    /// <summary>A chat body with one user message (JSON-escaped here; use \\ud800 for a lone surrogate).</summary>
    static string Chat(string content, string extra = "") =>
        $$"""{"model": "tiny", "messages": [{"role": "user", "content": "{{content}}"}]{{extra}}}""";

    public static readonly BadInputRow[] All =
    [
        // generate / chat / tokenize
        Cli("--temperature", "generate", "--model", "{model}", "--prompt", "hi", "--temperature", "Infinity"),
        Cli("--temperature", "generate", "--model", "{model}", "--prompt", "hi", "--temperature", "NaN"),
        Cli("--top-p", "generate", "--model", "{model}", "--prompt", "hi", "--top-p", "-Infinity"),
        Cli("--max-tokens", "generate", "--model", "{model}", "--prompt", "hi", "--max-tokens", "0"),
        Cli("{missing}", "generate", "--model", "{missing}", "--prompt", "hi"),
        Cli("{truncated-model}/model.safetensors", "generate", "--model", "{truncated-model}", "--prompt", "hi"),
        Cli("--temperature", "chat", "--model", "{model}", "--temperature", "Infinity"),
        Cli("tokenizer.json", "tokenize", "--tokenizer", "{bad-tokenizer}", "--text", "hi"),
        Cli("line 3", "tokenize", "--tokenizer", "{bad-tokenizer}", "--text", "hi"),
        Cli("{missing}", "tokenize", "--tokenizer", "{missing}", "--text", "hi"),
        // verify
        Cli("--file", "verify", "--file", "{bad-jsonl}", "--gold", "1"),
        Cli("--file", "verify", "--file", "{bad-jsonl}", "--pred", "1"),
        Cli("pairs.jsonl:2", "verify", "--file", "{bad-jsonl}"),
        Cli("{missing}", "verify", "--file", "{missing}"),
        Cli("--gold", "verify", "--pred", "1"),
        // eval against endpoints that refuse, answer garbage, the wrong shape, a 500, or nothing
        Cli("endpoint {closed}: connection refused", "eval", "--bench", "{data}", "--limit", "1", "--k", "1", "--endpoint", "{closed}", "--model-name", "m", "--out", "{dir}/e1"),
        Cli("endpoint {garbage}: answered HTTP 200 with a body that is not JSON", "eval", "--bench", "{data}", "--limit", "1", "--k", "1", "--endpoint", "{garbage}", "--model-name", "m", "--out", "{dir}/e2"),
        Cli("endpoint {shape}: the answer is not a chat completion", "eval", "--bench", "{data}", "--limit", "1", "--k", "1", "--endpoint", "{shape}", "--model-name", "m", "--out", "{dir}/e3"),
        Cli("the GPU fell off the bus", "eval", "--bench", "{data}", "--limit", "1", "--k", "1", "--endpoint", "{http500}", "--model-name", "m", "--out", "{dir}/e4"),
        Cli("endpoint {silent}: no answer within 1 s", "eval", "--bench", "{data}", "--limit", "1", "--k", "1", "--endpoint", "{silent}", "--model-name", "m", "--request-timeout", "1", "--out", "{dir}/e5"),
        Cli("--endpoint \"ftp://x/v1\"", "eval", "--bench", "{data}", "--endpoint", "ftp://x/v1", "--model-name", "m", "--out", "{dir}/e6"),
        Cli("--request-timeout", "eval", "--bench", "{data}", "--endpoint", "{closed}", "--model-name", "m", "--request-timeout", "0", "--out", "{dir}/e7"),
        Cli("--temperature", "eval", "--bench", "{data}", "--endpoint", "{closed}", "--model-name", "m", "--temperature", "Infinity", "--out", "{dir}/e8"),
        Cli("--max-tokens", "eval", "--bench", "{data}", "--endpoint", "{closed}", "--model-name", "m", "--max-tokens", "0", "--out", "{dir}/e9"),
        // train grpo: recipes, and rollout servers that refuse or answer garbage
        Cli("\"temperature\" expects a finite number", "train", "grpo", "--config", "{recipe:temperature: Infinity}"),
        Cli("\"temperature\" expects a finite number", "train", "grpo", "--config", "{recipe:temperature: .nan}"),
        Cli("\"learning_rate\" expects a finite number", "train", "grpo", "--config", "{recipe:learning_rate: 1e999}"),
        Cli("rollout_request_timeout", "train", "grpo", "--config", "{recipe:rollout_request_timeout: 0}"),
        Cli("recipe.yaml: max_completion_length 100000 does not fit the model's context", "train", "grpo", "--config", "{recipe:max_completion_length: 100000}"),
        Cli("unknown key \"temprature\"", "train", "grpo", "--config", "{recipe:temprature: 0.7}"),
        Cli("prompts.jsonl", "train", "grpo", "--config", "{recipe:dataset_path: {bad-data}}"),
        Cli("prompts.jsonl", "eval", "--bench", "{bad-data}", "--endpoint", "{closed}", "--model-name", "m", "--out", "{dir}/e10"),
        Cli("POST /update_weights_from_disk failed: connection refused", "train", "grpo", "--config", "{recipe:}", "--rollout-endpoints", "{closed}"),
        Cli("POST /update_weights_from_disk answered HTTP 200 with a body that is not JSON", "train", "grpo", "--config", "{recipe:}", "--rollout-endpoints", "{garbage}"),
        Cli("the GPU fell off the bus", "train", "grpo", "--config", "{recipe:}", "--rollout-endpoints", "{http500}"),
        // GGUF import / export, init
        Cli("{corrupt-gguf}: metadata key at byte 24 claims 18,000,000 bytes", "import", "gguf", "--gguf", "{corrupt-gguf}", "--out", "{dir}/imported"),
        Cli("not a GGUF file", "import", "gguf", "--gguf", "{not-gguf}", "--out", "{dir}/imported2"),
        Cli("{missing}", "export", "gguf", "--model", "{missing}", "--out", "{dir}/x.gguf"),
        Cli("q9", "export", "gguf", "--model", "{model}", "--out", "{dir}/x.gguf", "--type", "q9"),
        Cli("q5", "quantize", "--model", "{model}", "--out", "{dir}/q.gguf", "--type", "q5"),
        Cli("{missing}", "quantize", "--model", "{missing}", "--out", "{dir}/q.gguf"),
        // GGUF files run as they are (--model FILE.gguf)
        Cli("{corrupt-gguf}: metadata key at byte 24 claims 18,000,000 bytes", "generate", "--model", "{corrupt-gguf}", "--prompt", "hi"),
        Cli("\"{truncated-gguf-tensor}\"", "generate", "--model", "{truncated-gguf}", "--prompt", "hi"),
        Cli("\"{mislabelled-gguf-tensor}\"", "generate", "--model", "{mislabelled-gguf}", "--prompt", "hi"),
        Cli("\"{mislabelled-gguf-tensor}\"", "eval", "--bench", "{data}", "--model", "{mislabelled-gguf}", "--limit", "1", "--k", "1", "--out", "{dir}/e11"),
        Cli("GGUF files run on the CPU", "generate", "--model", "{truncated-gguf}", "--prompt", "hi", "--device", "cuda"),
        Cli("mamba", "init", "--arch", "mamba", "--size", "tiny", "--tokenizer", "{tokenizer}", "--out", "{dir}/i1"),
        Cli("huge", "init", "--arch", "qwen2", "--size", "huge", "--tokenizer", "{tokenizer}", "--out", "{dir}/i2"),
        Cli("{missing}", "init", "--arch", "qwen2", "--size", "tiny", "--tokenizer", "{missing}", "--out", "{dir}/i3"),
        // serve: options refused before the model loads
        Cli("--port must be between 0 and 65535, got 70000", "serve", "--model", "{model}", "--port", "70000"),
        Cli("--port must be between 0 and 65535, got -1", "serve", "--model", "{model}", "--port", "-1"),
        Cli("--host \"not-an-ip\"", "serve", "--model", "{model}", "--host", "not-an-ip"),
        Cli("--request-timeout", "serve", "--model", "{model}", "--request-timeout", "0"),
        Cli("--max-request-bytes", "serve", "--model", "{model}", "--max-request-bytes", "10"),
        // serve over HTTP (a server with --max-request-bytes 65536 and --max-context 64)
        Http(413, "request_too_large", "/v1/chat/completions", Chat(new string('a', 100_000))),
        Http(400, "messages[0].content", "/v1/chat/completions", Chat("a\\ud800b")),
        Http(400, "invalid_unicode", "/v1/chat/completions", """{"model": "ti\udfffny", "messages": [{"role": "user", "content": "x"}]}"""),
        Http(400, "stop[0]", "/v1/chat/completions", Chat("x", """, "stop": ["\ud800"]""")),
        Http(400, "prompt", "/v1/completions", """{"model": "tiny", "prompt": "2+2=\ud83d"}"""),
        Http(400, "invalid_unicode", "/v1/completions", """{"model": "tiny", "prompt": "x", "\udc00": 1}"""),
        Http(400, "invalid_json", "/v1/chat/completions", """{"model": "tiny", "messages": ["""),
        Http(400, "invalid_json", "/v1/chat/completions", new string('[', 5000) + new string(']', 5000)),
        Http(400, "max_tokens", "/v1/chat/completions", Chat("x", """, "max_tokens": 1000000000""")),
        Http(400, "temperature", "/v1/chat/completions", Chat("x", """, "temperature": 1e999""")),
        Http(400, "temperature", "/v1/chat/completions", Chat("x", """, "temperature": -0.5""")),
        Http(400, "n", "/v1/chat/completions", Chat("x", """, "n": 100000""")),
        Http(400, "context_length_exceeded", "/v1/chat/completions", Chat(new string('z', 60_000))),
        Http(400, "model_not_found", "/v1/chat/completions", """{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"""),
        Http(404, "not_found", "/v1/nope", "{}"),
    ];

    public static IEnumerable<object[]> CliRows() => All.Select((r, i) => (r, i)).Where(x => !x.r.IsHttp).Select(x => new object[] { x.i, x.r.ToString() });
    public static IEnumerable<object[]> HttpRows() => All.Select((r, i) => (r, i)).Where(x => x.r.IsHttp).Select(x => new object[] { x.i, x.r.ToString() });
}
