using R1Sharp.Bench;

R1Sharp.NativeRuntime.Configure(); // before TorchSharp loads libtorch (OpenMP reads its settings once)

// Side-by-side benchmarks: each prints its figure next to a reference measured in the same run, with the ratio.
// Usage: dotnet run -c Release --project bench/R1Sharp.Bench -- generate [--dtype f32|bf16] [--size 0.5b]
return args.FirstOrDefault() switch
{
    "generate" => GenerationBench.Run(args[1..]),
    "verifier" => VerifierBench.Run(args.Length > 1 ? args[1] : FindShared()),
    "serve" => ServeBench.Run(args[1..]),
    "grpo" => GrpoBench.Run(args[1..]),
    "sft" => SftBench.Run(args[1..]),
    "sample" => SftBench.RunSample(args[1..]),
    "llamacpp" => LlamaCppBench.Run(args[1..]),
    "profile" => DecodeProfile.Run(args[1..]),
    "tokenizer" => TokenizerBench.Run(args[1..]),
    "quant" => QuantKernelBench.Run(args[1..]),
    "code" => CodeBench.Run(FindShared(), args[1..]),
    "quant-model" => QuantModelBench.Run(args[1..]),
    "quant-zero" => QuantZeroBench.Run(args[1..]),
    "deepseek" => DeepSeekBench.Run(args[1..]),
    "deepseek-profile" => DeepSeekProfile.Run(args[1..]),
    "lora" => LoraBench.Run(args[1..]),
    "lora-rollout" => LoraRolloutBench.Run(args[1..]),
    "prefill-chunk" => PrefillChunkBench.Run(args[1..]),
    "bandwidth" => BandwidthBench.Run(args[1..]),
    _ => Usage(),
};

static string FindShared()
{
    for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "shared", "GUIDE.md"))) return Path.Combine(d.FullName, "shared");
    throw new DirectoryNotFoundException("could not find ../shared; pass its path");
}

static int Usage()
{
    Console.Error.WriteLine("usage: R1Sharp.Bench generate [--dtype f32|bf16] [--size 0.5b|tiny|small] [--prefill N] [--decode N] [--rounds N]");
    Console.Error.WriteLine("       R1Sharp.Bench verifier [SHARED_DIR]");
    Console.Error.WriteLine("       R1Sharp.Bench prefill-chunk [--dtype bf16|f32] [--size 1.5b] [--prompt 512] [--chunks 512,256] [--rounds 3]   (prefill time per chunk size)");
    Console.Error.WriteLine("       R1Sharp.Bench bandwidth [--file FILE] [--rounds 5]   (the read-bandwidth probe beside plain streaming reads of anonymous memory and of a mapped file)");
    Console.Error.WriteLine("       R1Sharp.Bench serve [--clients 32] [--requests 256] [--max-tokens 32] [--tokenizer DIR]");
    Console.Error.WriteLine("       R1Sharp.Bench grpo [--size demo|50m] [--steps N] [--threads N[,N]] [--micro-batch ROWS] [--unfused]");
    Console.Error.WriteLine("       R1Sharp.Bench sft [--size demo|50m] [--steps N] [--max-length T] [--threads N]");
    Console.Error.WriteLine("       R1Sharp.Bench sample [--prompts N] [--k K] [--max-tokens N] [--rounds N]   (r1 sample vs raw generation)");
    Console.Error.WriteLine("       R1Sharp.Bench profile [--dtype f32|bf16] [--size 0.5b] [--gguf FILE] [--prefetch BYTES] [--steps N]   (decode step: projections vs the rest)");
    Console.Error.WriteLine("       R1Sharp.Bench tokenizer [--tokenizer DIR] [--lengths 10000,100000,...]   (ns/char vs run length)");
    Console.Error.WriteLine("       R1Sharp.Bench quant [--formats q4_k,q6_k,q8_0] [--rows 1,4,16] [--layers 28] [--passes 5]   (quantized decode kernels vs bandwidth)");
    Console.Error.WriteLine("       R1Sharp.Bench code [--rounds N] [--python python3]   (sandboxed HumanEval runs vs plain python3; C# compile+run with the harness cache on/off)");
    Console.Error.WriteLine("       R1Sharp.Bench quant-model [--types q4_k_m,q8_0] [--prefill 512] [--decode 32] [--threads N] [--dir DIR]   (1.5B shape GGUF files: R1Sharp vs llama.cpp)");
    Console.Error.WriteLine("       R1Sharp.Bench quant-zero [--model runs/zero/model] [--types q4_k_m,q8_0,q4_0] [--seed 1]   (held-out pass@1 of the quantized demo model)");
    Console.Error.WriteLine("       R1Sharp.Bench deepseek [--dtype bf16|f32] [--context 512] [--steps 16] [--layers 6] [--llamacpp [--rounds 3]]   (MLA cache, absorbed vs expanded decode, MoE grouping, vs llama.cpp)");
    Console.Error.WriteLine("       R1Sharp.Bench deepseek-profile [--steps 64] [--context 32]   (a batch-1 decode step of the deepseek model, piece by piece)");
    Console.Error.WriteLine("       R1Sharp.Bench lora [--tokens 1024] [--completions 8] [--micro-batch 1] [--rank 16] [--layers 28] [--configs qlora,lora-mem,lora,full] [--full]   (GRPO step memory and time: full FT, LoRA, LoRA + memory work, QLoRA)");
    Console.Error.WriteLine("       R1Sharp.Bench lora-rollout [--layers 28] [--completions 8] [--prompt 64] [--tokens 64] [--rank 16] [--reps 2]   (GRPO rollouts with adapters: unmerged vs a merged copy)");
    Console.Error.WriteLine("       R1Sharp.Bench llamacpp [--dtype f32|bf16] [--size 0.5b|tiny|small] [--prefill N] [--decode N] [--threads N]");
    return 2;
}
