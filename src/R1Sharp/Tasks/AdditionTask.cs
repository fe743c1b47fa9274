using System.Text;

namespace R1Sharp.Tasks;

/// <summary>One problem with its exact answer.</summary>
public sealed record Problem(string Prompt, string Answer, long A, long B);

/// <summary>
/// Multi-digit addition, the synthetic task of the CPU demo. Written answer-first (most significant digit first), the
/// sum needs every carry at once, which a tiny transformer gets wrong often; written as column steps from the right
/// ("7+8+0=15 5+6+1=12 …") each step is a local lookup and the answer is the steps' last digits read backwards.
/// So writing the steps inside &lt;think&gt; helps — what R1-Zero's reinforcement learning can discover and amplify.
/// </summary>
public sealed class AdditionTask : IZeroTask
{
    public int Digits { get; }

    public AdditionTask(int digits)
    {
        if (digits is < 1 or > 9) throw new R1SharpException($"addition digits must be 1..9, got {digits}");
        Digits = digits;
    }

    /// <summary>Problems are split by a hash of the operands, so the held-out set never appears in training.</summary>
    public static bool IsHeldOut(long a, long b) => Mix(a, b) % 10 == 0;

    static ulong Mix(long a, long b)
    {
        ulong x = (ulong)(a * 1_000_003 + b) * 0x9E3779B97F4A7C15UL;
        return (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9UL >> 32;
    }

    /// <summary>Draws problems deterministically from a seed, from the training or the held-out side of the split.</summary>
    public List<Problem> Sample(int count, int seed, bool heldOut)
    {
        var rng = new Random(seed);
        long lo = Digits == 1 ? 0 : Pow10(Digits - 1), hi = Pow10(Digits);
        var list = new List<Problem>(count);
        var seen = new HashSet<(long, long)>();
        while (list.Count < count)
        {
            long a = rng.NextInt64(lo, hi), b = rng.NextInt64(lo, hi);
            if (IsHeldOut(a, b) != heldOut) continue;
            if (heldOut && !seen.Add((a, b))) continue; // a held-out set of distinct problems
            list.Add(new Problem($"{a}+{b}", (a + b).ToString(), a, b));
        }
        return list;
    }

    /// <summary>The column steps, least significant first: "a+b+carry=two-digit sum" separated by spaces.</summary>
    public string Steps(Problem p)
    {
        var sb = new StringBuilder();
        long a = p.A, b = p.B;
        int carry = 0;
        for (int i = 0; i < Digits; i++)
        {
            int da = (int)(a % 10), db = (int)(b % 10);
            int s = da + db + carry;
            if (i > 0) sb.Append(' ');
            sb.Append(da).Append('+').Append(db).Append('+').Append(carry).Append('=').Append(s / 10).Append(s % 10);
            carry = s / 10;
            a /= 10; b /= 10;
        }
        return sb.ToString();
    }

    /// <summary>A completion in the R1-Zero format; the reasoning is the column steps or nothing. An answer given
    /// without steps is the exact sum, or with <paramref name="estimate"/> the sum rounded to the nearest ten (half up):
    /// what someone who does not work it out writes.</summary>
    public string Completion(Problem p, bool showSteps, bool estimate) =>
        $" <think>{(showSteps ? Steps(p) : "")}</think> <answer>{(showSteps || !estimate ? p.Answer : Estimate(p).ToString())}</answer>";

    /// <summary>A completion whose answer without steps is the exact sum.</summary>
    public string Completion(Problem p, bool showSteps) => Completion(p, showSteps, estimate: false);

    /// <summary>The sum rounded to the nearest ten, halves up (57+68 = 125 → 130): right only when the sum ends in 0.</summary>
    public static long Estimate(Problem p) => (p.A + p.B + 5) / 10 * 10;

    public Func<string, string, bool>? Equal => null;

    public bool ShowsSteps(string completion) => completion.Contains('=');

    public (List<string> Funcs, List<double> Weights) Rewards => (["accuracy", "format"], [1.0, 0.5]);

    public string Describe(double stepsFraction) => $"{Digits}-digit addition; base corpus shows column steps in {stepsFraction:P0} of solutions.";

    static long Pow10(int n) { long r = 1; for (int i = 0; i < n; i++) r *= 10; return r; }
}
