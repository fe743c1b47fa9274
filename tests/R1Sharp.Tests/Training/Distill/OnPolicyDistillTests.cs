using R1Sharp.Models;
using R1Sharp.Tasks;
using R1Sharp.Training;
using R1Sharp.Training.Distill;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training.Distill;

/// <summary>On-policy distillation: the per-token divergence against values computed by hand, a teacher identical to
/// the student giving zero loss and no gradient, the loss falling on a tiny run, and a resumed run bit-identical.</summary>
public class OnPolicyDistillTests
{
    // Vocabulary of three: student logits (1, 2, 0), teacher logits (0, 1, 3).
    static readonly float[] S = [1, 2, 0], T = [0, 1, 3];

    static double[] Softmax(float[] x, double temperature = 1)
    {
        var e = x.Select(v => Math.Exp(v / temperature)).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    static double Kl(double[] p, double[] q) => p.Zip(q, (a, b) => a * Math.Log(a / b)).Sum();

    [Fact]
    public void ReverseKl_EqualsTheSumWrittenOut()
    {
        double PerToken(double beta, double temperature) =>
            DistillLoss.PerToken(tensor(S).reshape(1, 1, 3), tensor(T).reshape(1, 1, 3), beta, temperature).item<float>();
        // p_s = softmax(1, 2, 0) = (0.2447, 0.6652, 0.0900), p_t = softmax(0, 1, 3) = (0.0420, 0.1142, 0.8438);
        // KL(p_s ‖ p_t) = Σ p_s ln(p_s / p_t) = 1.402118 (python's math module gives 1.4021177624).
        Assert.Equal(1.4021177624, PerToken(1, 1), 5);
        Assert.Equal(Kl(Softmax(S), Softmax(T)), PerToken(1, 1), 5);
        Assert.Equal(Kl(Softmax(T), Softmax(S)), PerToken(0, 1), 5);                 // forward KL: 1.612939
        Assert.Equal(0.4114516670, PerToken(1, 2), 5);                                // both at temperature 2
        var (ps, pt) = (Softmax(S), Softmax(T));
        var m = ps.Zip(pt, (a, b) => 0.5 * a + 0.5 * b).ToArray();
        Assert.Equal(0.5 * Kl(pt, m) + 0.5 * Kl(ps, m), PerToken(0.5, 1), 5);        // generalised JSD: 0.322990
        // A teacher with a larger (padded) vocabulary: the extra logits are cut, not compared.
        var padded = DistillLoss.PerToken(tensor(S).reshape(1, 3), tensor(new float[] { 0, 1, 3, 50 }).reshape(1, 4)).item<float>();
        Assert.Equal(1.4021177624, padded, 5);
    }

    [Fact]
    public void TeacherEqualToTheStudent_GivesZeroLossAndNoGradient()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var student = TinyGrpo.Model(tok, seed: 3);
        using var teacher = student.FrozenCopy();
        var trainer = new OnPolicyDistillTrainer(Config(dir.File("out"), steps: 2), student, teacher, tok, TinyGrpo.Data(8), R1ZeroTemplate.Format);
        var row = trainer.Step();
        // Identical distributions: every log-ratio is 0 (to rounding: the training forward and the no-grad one may take
        // different kernels). (AdamW would still move the weights by about the learning
        // rate on the rounding-level gradient that is left, so the weights are not the thing to check.)
        Assert.True(Math.Abs(row["loss"]) < 1e-6, $"loss {row["loss"]}");
        Assert.True(row["grad_norm"] < 1e-6, $"grad norm {row["grad_norm"]}");
        Assert.True(row["completions/mean_length"] > 0);
    }

    [Fact]
    public void LossFalls_AsTheStudentLearnsTheTeachersDistribution()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var student = TinyGrpo.Model(tok, seed: 1);
        using var teacher = Sharpened(student);
        var cfg = Config(dir.File("out"), steps: 40);
        cfg.LearningRate = 3e-2;
        var trainer = new OnPolicyDistillTrainer(cfg, student, teacher, tok, TinyGrpo.Data(16), R1ZeroTemplate.Format);
        TrainingLoop.Run(trainer);
        var losses = trainer.Metrics.Rows.Select(r => r["loss"]).ToList();
        double first = losses.Take(5).Average(), last = losses.TakeLast(5).Average();
        Assert.True(last < 0.6 * first, $"reverse KL {first:F3} → {last:F3}: did not fall");
        // The student's own tokens become likelier under the teacher as it imitates it.
        var rows = trainer.Metrics.Rows;
        Assert.True(rows.TakeLast(5).Average(r => r["teacher_logp"]) > rows.Take(5).Average(r => r["teacher_logp"]), "teacher log-prob of the student's samples did not rise");
    }

    [Fact]
    public void ResumedRun_IsBitIdenticalToAnUninterruptedOne()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var teacher = Sharpened(TinyGrpo.Model(tok, seed: 1));
        Dictionary<string, float[]> Straight()
        {
            using var student = TinyGrpo.Model(tok, seed: 1);
            TrainingLoop.Run(new OnPolicyDistillTrainer(Config(dir.File("straight"), steps: 4), student, teacher, tok, TinyGrpo.Data(16), R1ZeroTemplate.Format));
            return TinyGrpo.Weights(student);
        }
        var straight = Straight();
        using (var student = TinyGrpo.Model(tok, seed: 1))
        {
            var first = new OnPolicyDistillTrainer(Config(dir.File("resumed"), steps: 4), student, teacher, tok, TinyGrpo.Data(16), R1ZeroTemplate.Format);
            TrainingLoop.Run(first, shouldStop: step => step == 2); // stops after the checkpoint of step 2
        }
        using var fresh = TinyGrpo.Model(tok, seed: 9); // other weights: the checkpoint must replace them all
        var second = new OnPolicyDistillTrainer(Config(dir.File("resumed"), steps: 4), fresh, teacher, tok, TinyGrpo.Data(16), R1ZeroTemplate.Format);
        Assert.True(second.Resume());
        Assert.Equal(2, second.State.Step);
        TrainingLoop.Run(second);
        var resumed = TinyGrpo.Weights(fresh);
        foreach (var (name, w) in straight) Assert.True(w.SequenceEqual(resumed[name]), $"{name} differs after resume");
        var a = MetricsLog.Read(Path.Combine(dir.File("straight"), "metrics.jsonl"));
        var b = MetricsLog.Read(Path.Combine(dir.File("resumed"), "metrics.jsonl"));
        Assert.Equal(a.Select(r => r["loss"]), b.Select(r => r["loss"]));
    }

    /// <summary>A teacher the student can become: its own initial weights with the final norm scaled up tenfold, so
    /// its next-token distributions are much sharper versions of the random student's (logits × 10).</summary>
    static CausalLM Sharpened(CausalLM student)
    {
        var teacher = student.FrozenCopy();
        using (no_grad()) teacher.StateDict()["model.norm.weight"].mul_(10);
        return teacher;
    }

    static DistillConfig Config(string outputDir, int steps) => new()
    {
        OutputDir = outputDir, MaxNewTokens = 6, Temperature = 1.0, PerDeviceTrainBatchSize = 4, GradientAccumulationSteps = 2,
        LearningRate = 1e-2, MaxSteps = steps, SaveSteps = 2, LrSchedulerType = "constant", Seed = 5, NumThreads = 1,
    };
}
