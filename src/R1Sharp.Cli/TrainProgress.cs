using R1Sharp.Training;
using Spectre.Console;

namespace R1Sharp.Cli;

/// <summary>A training run under a Spectre progress bar on stderr (steps, ETA, the caller's one-line step summary),
/// its log lines in grey above it.</summary>
public static class TrainProgress
{
    public static T Run<T>(string name, Func<TrainingHooks, T> run, Func<Dictionary<string, double>, string> describe)
    {
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        err.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask? task = null;
                result = run(new TrainingHooks
                {
                    Log = m => err.MarkupLineInterpolated($"[grey]{m}[/]"),
                    Started = t => { task = ctx.AddTask(name, maxValue: t.MaxSteps); task.Value = t.State.Step; },
                    Step = (t, row) => { if (task is null) return; task.Value = t.State.Step; task.Description = describe(row); },
                });
            });
        return result;
    }
}
