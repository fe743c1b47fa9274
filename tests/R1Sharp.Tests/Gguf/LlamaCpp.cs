using LLama;
using LLama.Common;
using LLama.Native;

namespace R1Sharp.Tests.Gguf;

/// <summary>
/// llama.cpp through LLamaSharp, the independent reference for exported GGUF files: CPU only, flash attention off,
/// its log silenced. One instance holds a model and a context sized for the tests.
/// </summary>
public sealed class LlamaCpp : IDisposable
{
    static readonly object InitLock = new();
    static bool s_initialised;

    public LLamaWeights Weights { get; }
    public LLamaContext Context => _context ?? throw new InvalidOperationException("loaded vocabulary only");
    readonly LLamaContext? _context;
    public int VocabSize { get; }

    public LlamaCpp(string ggufPath, int contextSize = 512, int threads = 2, int sequences = 1, GGMLType kvType = GGMLType.GGML_TYPE_F32, bool vocabOnly = false)
    {
        Initialise();
        var p = new ModelParams(ggufPath)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            SeqMax = (uint)sequences,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            FlashAttention = false,
            // llama.cpp's KV cache defaults to f16, which alone moves logits by ~1e-3 relative; f32 keeps the
            // comparison about the model, not the cache format.
            TypeK = kvType, TypeV = kvType,
            VocabOnly = vocabOnly,
        };
        Weights = LLamaWeights.LoadFromFile(p);
        if (!vocabOnly) _context = Weights.CreateContext(p);
        VocabSize = Weights.Vocab.Count;
    }

    /// <summary>Sets up the native library once per process: silent unless R1SHARP_LLAMA_LOG is set.</summary>
    public static void Initialise()
    {
        lock (InitLock)
        {
            if (s_initialised) return;
            if (Environment.GetEnvironmentVariable("R1SHARP_LLAMA_LOG") == null)
                NativeLibraryConfig.All.WithLogCallback((level, message) => { });
            NativeApi.llama_empty_call(); // loads the native library now, before any direct P/Invoke needs it
            s_initialised = true;
        }
    }

    /// <summary>Logits [tokens][vocab] of every position of one sequence, decoded from an empty cache in one batch.</summary>
    public float[][] AllLogits(IReadOnlyList<int> tokens)
    {
        Context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Count; i++) batch.Add(tokens[i], i, (LLamaSeqId)0, logits: true);
        var rc = Context.NativeHandle.Decode(batch);
        if (rc != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {rc}");
        var result = new float[tokens.Count][];
        for (int i = 0; i < tokens.Count; i++) result[i] = Context.NativeHandle.GetLogitsIth(i).ToArray();
        return result;
    }

    /// <summary>Greedy continuation: prefill the prompt, then argmax one token at a time.</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int count)
    {
        Context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, (LLamaSeqId)0, logits: i == prompt.Count - 1);
        var output = new List<int>();
        int pos = prompt.Count;
        for (int step = 0; step < count; step++)
        {
            if (Context.NativeHandle.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama_decode failed");
            var logits = Context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            int next = ArgMax(logits);
            output.Add(next);
            batch.Clear();
            batch.Add(next, pos++, (LLamaSeqId)0, logits: true);
        }
        return output.ToArray();
    }

    /// <summary>llama.cpp's ids for text; special: true matches control tokens written in the text, as HF does.</summary>
    public int[] Tokenize(string text, bool special = true) =>
        Weights.Tokenize(text, false, special, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();

    public static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        _context?.Dispose();
        Weights.Dispose();
    }
}
