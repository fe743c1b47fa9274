using R1Sharp.Bench;

// Side-by-side benchmarks: each prints its figure next to a reference measured in the same run, with the ratio.
// Usage: dotnet run -c Release --project bench/R1Sharp.Bench -- generate [--dtype f32|bf16] [--size 0.5b]
return args.FirstOrDefault() switch
{
    "generate" => GenerationBench.Run(args[1..]),
    "llamacpp" => LlamaCppBench.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: R1Sharp.Bench generate [--dtype f32|bf16] [--size 0.5b|tiny|small] [--prefill N] [--decode N]");
    Console.Error.WriteLine("       R1Sharp.Bench llamacpp [--dtype f32|bf16] [--size 0.5b|tiny|small] [--prefill N] [--decode N] [--threads N]");
    return 2;
}
