using System.Diagnostics;

namespace R1Sharp.Verifier;

/// <summary>Thrown inside the verifier when an input is too deep, too long or too slow; caught at the
/// public entry point and turned into a "false, gave up" verdict. Never escapes the library.</summary>
internal sealed class GiveUpException(string reason) : Exception(reason);

/// <summary>Bounds the work of one verdict: wall-clock time (checked every few hundred steps, so the
/// check itself is cheap) and recursion depth (so deep nesting cannot overflow the stack).</summary>
internal sealed class Budget
{
    public const int MaxDepth = 300;
    readonly long _deadline;
    int _steps;

    public Budget(TimeSpan limit) => _deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);

    public void Tick()
    {
        if ((++_steps & 255) == 0 && Stopwatch.GetTimestamp() > _deadline)
            throw new GiveUpException("time budget exceeded");
    }

    public static void CheckDepth(int depth)
    {
        if (depth > MaxDepth) throw new GiveUpException("expression nested too deeply");
    }
}
