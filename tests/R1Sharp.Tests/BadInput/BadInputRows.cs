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
/// route and the body. The issue's own config.json cases run here through every command that loads a model; the full
/// table of config keys × bad values × families runs in process (<see cref="ConfigCorpusTests"/>).
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
        Cli("generation_config.json: \"eos_token_id\" expects token ids", "generate", "--model", "{gen-with:eos_token_id=[null]}", "--prompt", "hi"),
        Cli("generation_config.json: \"temperature\" expects a finite number ≥ 0, found \"hot\"", "generate", "--model", "{gen-with:temperature=\"hot\"}", "--prompt", "hi"),
        Cli("generation_config.json: \"top_k\" expects an integer ≥ 0", "serve", "--model", "{gen-with:top_k=1.5}", "--port", "0"),
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
        Cli("adam_beta2 must be in [0, 1)", "train", "grpo", "--config", "{recipe:adam_beta2: -1}"),
        Cli("num_threads must be 0 (libtorch's default) or between 1 and", "train", "grpo", "--config", "{recipe:num_threads: -1}"),
        Cli("is more than 1,048,576 completions per step", "train", "grpo", "--config", "{recipe:per_device_train_batch_size: 1000000000}"),
        // train sft (issue 14): recipes, datasets, and what a step would hold
        Cli("\"learning_rate\" expects a finite number", "train", "sft", "--config", "{sft-recipe:learning_rate: .nan}"),
        Cli("max_length must be ≥ 2", "train", "sft", "--config", "{sft-recipe:max_length: 1}"),
        Cli("per_device_train_batch_size 100000: the logits of one micro-batch", "train", "sft", "--config", "{sft-recipe:per_device_train_batch_size: 100000}"),
        Cli("is more than 1,048,576 rows per step", "train", "sft", "--config", "{sft-recipe:gradient_accumulation_steps: 1000000000}"),
        Cli("num_threads must be 0 (libtorch's default) or between 1 and", "train", "sft", "--config", "{sft-recipe:num_threads: 100000}"),
        Cli("adam_beta1 must be in [0, 1)", "train", "sft", "--config", "{sft-recipe:adam_beta1: 1.5}"),
        Cli("weight_decay must be ≥ 0", "train", "sft", "--config", "{sft-recipe:weight_decay: -1}"),
        Cli("logging_steps must be ≥ 1", "train", "sft", "--config", "{sft-recipe:logging_steps: 0}"),
        Cli("lr_scheduler_type \"wavy\" is unknown", "train", "sft", "--config", "{sft-recipe:lr_scheduler_type: wavy}"),
        Cli("unknown key \"max_seq_length\"", "train", "sft", "--config", "{sft-recipe:max_seq_length: 64}"),
        Cli("eval_steps needs eval_dataset_path", "train", "sft", "--config", "{sft-recipe:eval_steps: 1}"),
        Cli("sft.jsonl:2", "train", "sft", "--config", "{sft-recipe:dataset_path: {bad-sft-data}}"),
        Cli("{missing}: dataset not found", "train", "sft", "--config", "{sft-recipe:dataset_path: {missing}}"),
        Cli("{missing}: model folder not found", "train", "sft", "--config", "{sft-recipe:model_name_or_path: {missing}}"),
        // sample (issue 14): sampling, the readability filter's thresholds, sizes, backends
        Cli("--temperature must be a finite number", "sample", "--prompts", "{data}", "--model", "{model}", "--temperature", "Infinity", "--out", "{dir}/s2"),
        Cli("--top-p must be a finite number", "sample", "--prompts", "{data}", "--model", "{model}", "--top-p", "NaN", "--out", "{dir}/s3"),
        Cli("--k 1000000000 × 2 problems", "sample", "--prompts", "{data}", "--model", "{model}", "--k", "1000000000", "--max-tokens", "2", "--out", "{dir}/s4"),
        Cli("--min-language-consistency must be a share in [0, 1], got NaN", "sample", "--prompts", "{data}", "--model", "{model}", "--min-language-consistency", "NaN", "--out", "{dir}/s5"),
        Cli("--max-repetition must be a rate in [0, 1]", "sample", "--prompts", "{data}", "--model", "{model}", "--max-repetition", "-1", "--out", "{dir}/s6"),
        Cli("--repetition-n-grams must be ≥ 1", "sample", "--prompts", "{data}", "--model", "{model}", "--repetition-n-grams", "0", "--out", "{dir}/s7"),
        Cli("--max-completion-tokens must be ≥ 0", "sample", "--prompts", "{data}", "--model", "{model}", "--max-completion-tokens", "-1", "--out", "{dir}/s8"),
        Cli("--max-batch must be ≥ 1", "sample", "--prompts", "{data}", "--model", "{model}", "--max-batch", "0", "--out", "{dir}/s9"),
        Cli("language \"xx\" is unknown", "sample", "--prompts", "{data}", "--model", "{model}", "--language", "xx", "--out", "{dir}/s10"),
        Cli("prompts.jsonl", "sample", "--prompts", "{bad-data}", "--model", "{model}", "--out", "{dir}/s11"),
        Cli("give exactly one of --model", "sample", "--prompts", "{data}", "--out", "{dir}/s12"),
        Cli("endpoint {closed}: connection refused", "sample", "--prompts", "{data}", "--endpoint", "{closed}", "--model-name", "m", "--k", "1", "--out", "{dir}/s13"),
        Cli("--k 1000000000 × 2 problems", "eval", "--bench", "{data}", "--endpoint", "{closed}", "--model-name", "m", "--k", "1000000000", "--out", "{dir}/e13"),
        Cli("--max-batch must be ≥ 1", "eval", "--bench", "{data}", "--model", "{model}", "--max-batch", "0", "--out", "{dir}/e14"),
        // zero: the demo's options, refused before it starts
        Cli("--threads must be between 1 and", "zero", "--threads", "-1", "--out", "{dir}/z1"),
        Cli("--threads must be between 1 and", "zero", "--threads", "100000", "--out", "{dir}/z2"),
        Cli("--pretrain-batch must be between 1 and 65,536", "zero", "--pretrain-batch", "1000000000", "--out", "{dir}/z3"),
        Cli("--pretrain-lr must be a positive number, got NaN", "zero", "--pretrain-lr", "NaN", "--out", "{dir}/z4"),
        Cli("--steps-fraction must be a share in [0, 1]", "zero", "--steps-fraction", "2", "--out", "{dir}/z5"),
        Cli("--grpo-steps must be ≥ 1", "zero", "--grpo-steps", "0", "--out", "{dir}/z6"),
        Cli("--digits must be between 1 and 9", "zero", "--digits", "0", "--out", "{dir}/z7"),
        // GGUF import / export, init
        Cli("{corrupt-gguf}: metadata key at byte 24 claims 18,000,000 bytes", "import", "gguf", "--gguf", "{corrupt-gguf}", "--out", "{dir}/imported"),
        Cli("not a GGUF file", "import", "gguf", "--gguf", "{not-gguf}", "--out", "{dir}/imported2"),
        Cli("{missing}", "export", "gguf", "--model", "{missing}", "--out", "{dir}/x.gguf"),
        Cli("q9", "export", "gguf", "--model", "{model}", "--out", "{dir}/x.gguf", "--type", "q9"),
        // distill / pipeline / merge / board
        Cli("--temperature applies to a distillation job", "distill", "--temperature", "NaN"),
        Cli("--k must be ≥ 1", "distill", "--teacher", "{model}", "--student", "{model}", "--prompts", "{data}", "--k", "0", "--out", "{dir}/d1"),
        Cli("{missing}: prompts file not found", "distill", "--teacher", "{model}", "--student", "{model}", "--prompts", "{missing}", "--out", "{dir}/d2"),
        Cli("--mode \"sideways\"", "distill", "--teacher", "{model}", "--student", "{model}", "--prompts", "{data}", "--mode", "sideways", "--out", "{dir}/d3"),
        Cli("--top-p", "distill", "--teacher", "{model}", "--student", "{model}", "--prompts", "{data}", "--top-p", "Infinity", "--out", "{dir}/d4"),
        Cli("{missing}", "distill", "--teacher", "{missing}", "--student", "{model}", "--prompts", "{data}", "--out", "{dir}/d5"),
        Cli("unknown key \"bogus_key\"", "pipeline", "--config", "{file:output_dir: {dir}/p1;bogus_key: 1}"),
        Cli("unknown stage kind \"nonsense\"", "pipeline", "--config", "{file:output_dir: {dir}/p2;stages:;  - name: a;    kind: nonsense}"),
        Cli("malformed YAML", "pipeline", "--config", "{file:stages: [;  name: a}"),
        Cli("{missing}", "pipeline", "--config", "{missing}"),
        Cli("{missing}", "merge", "--model", "{model}", "--adapter", "{missing}", "--out", "{dir}/m1"),
        Cli("{dir}: not a model folder", "merge", "--model", "{dir}", "--adapter", "{model}", "--out", "{dir}/m2"),
        Cli("--poll", "board", "{dir}", "--poll", "0"),
        Cli("{missing}", "board", "{missing}"),
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
        // config.json values that shape the computation (issue 18 items 1, 2, 4, 5), through generate
        Cli("config.json: \"num_attention_heads\" must be a positive integer, found 0", "generate", "--model", "{model-with:num_attention_heads=0}", "--prompt", "hi"),
        Cli("config.json: \"num_key_value_heads\" must be a positive integer, found 0", "generate", "--model", "{model-with:num_key_value_heads=0}", "--prompt", "hi"),
        Cli("num_hidden_layers 1000000000", "generate", "--model", "{model-with:num_hidden_layers=1000000000}", "--prompt", "hi"),
        Cli("config.json: \"hidden_size\" must be a positive integer, found -64", "generate", "--model", "{model-with:hidden_size=-64}", "--prompt", "hi"),
        Cli("config.json: \"vocab_size\" must be a positive integer, found -1", "generate", "--model", "{model-with:vocab_size=-1}", "--prompt", "hi"),
        Cli("config.json: \"rope_theta\" must be a number greater than 1", "generate", "--model", "{model-with:rope_theta=0}", "--prompt", "hi"),
        Cli("config.json: \"hidden_size\" expects an integer in range, found 64.5", "generate", "--model", "{model-with:hidden_size=64.5}", "--prompt", "hi"),
        Cli("config.json: \"hidden_size\" expects an integer in range, found 4294967360", "generate", "--model", "{model-with:hidden_size=4294967360}", "--prompt", "hi"),
        Cli("config.json: \"eos_token_id\" expects an integer or a list of integers, found \"x\"", "generate", "--model", "{model-with:eos_token_id=\"x\"}", "--prompt", "hi"),
        // … and through every other command that loads a model folder
        Cli("config.json: \"rms_norm_eps\"", "chat", "--model", "{model-with:rms_norm_eps=-1}"),
        Cli("config.json: \"num_key_value_heads\" 3 does not divide", "eval", "--bench", "{data}", "--model", "{model-with:num_key_value_heads=3}", "--k", "1", "--out", "{dir}/e11"),
        Cli("a KV cache for 1 sequence of up to", "eval", "--bench", "{data}", "--model", "{model-with:max_position_embeddings=1000000000}", "--k", "1", "--out", "{dir}/e12"),
        Cli("config.json: \"vocab_size\" must be a positive integer", "train", "grpo", "--config", "{recipe:model_name_or_path: {model-with:vocab_size=0}}"),
        Cli("config.json: \"torch_dtype\" \"int8\" is not supported", "train", "sft", "--config", "{sft-recipe:model_name_or_path: {model-with:torch_dtype=\"int8\"}}"),
        Cli("intermediate_size 1000000000", "sample", "--prompts", "{data}", "--model", "{model-with:intermediate_size=1000000000}", "--k", "1", "--out", "{dir}/s1"),
        Cli("config.json: \"head_dim\" 7 must be even for RoPE", "serve", "--model", "{model-with:head_dim=7}", "--port", "0"),
        Cli("config.json: \"rope_scaling\" expects an object or null", "export", "gguf", "--model", "{model-with:rope_scaling=\"x\"}", "--out", "{dir}/y.gguf"),
        // the same values as GGUF metadata, named as the file names them
        Cli("qwen2.block_count 1000000000", "import", "gguf", "--gguf", "{gguf-with:qwen2.block_count=u32:1000000000}", "--out", "{dir}/imported3"),
        Cli("metadata key \"qwen2.rope.freq_base\" should be a finite number, found NaN", "import", "gguf", "--gguf", "{gguf-with:qwen2.rope.freq_base=f32:NaN}", "--out", "{dir}/imported4"),
        Cli("qwen2.attention.head_count_kv 3 does not divide", "import", "gguf", "--gguf", "{gguf-with:qwen2.attention.head_count_kv=u32:3}", "--out", "{dir}/imported5"),
        Cli("tokenizer.ggml.eos_token_id 999999 is not a token id", "import", "gguf", "--gguf", "{gguf-with:tokenizer.ggml.eos_token_id=u32:999999}", "--out", "{dir}/imported6"),
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
        Http(400, "num_attention_heads", "/update_weights_from_disk", """{"model_path": "{model-with:num_attention_heads=0}"}"""),
    ];

    public static IEnumerable<object[]> CliRows() => All.Select((r, i) => (r, i)).Where(x => !x.r.IsHttp).Select(x => new object[] { x.i, x.r.ToString() });
    public static IEnumerable<object[]> HttpRows() => All.Select((r, i) => (r, i)).Where(x => x.r.IsHttp).Select(x => new object[] { x.i, x.r.ToString() });
}
