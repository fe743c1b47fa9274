namespace R1Sharp.Eval;

/// <summary>Where completions come from: a model in this process or an OpenAI-compatible endpoint. A backend runs the
/// jobs in whatever order and grouping suits it and reports each completion as soon as it is done; the callback may
/// be called from several threads at once.</summary>
public interface IEvalBackend : IDisposable
{
    /// <summary>Model name as it enters the settings key.</summary>
    string ModelName { get; }

    Task RunAsync(IReadOnlyList<SampleJob> jobs, EvalSettings settings, Action<SampleJob, BackendCompletion> onCompletion, CancellationToken cancel);
}
