using R1Sharp.Models;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training;

/// <summary>Training the DeepSeek family: gradients through MLA and MoE (GRPO's reward rises, SFT moves every kind
/// of weight), DeepSeek-V3's three training terms (the sequence-wise balance loss against eqs. 17–20 by hand,
/// auxiliary-loss-free balancing evening out a skewed router, the MTP loss reaching its module), expert loads in
/// metrics.jsonl, and a kill/resume that ends bit-identical with the balancing bias moving.</summary>
public class DeepSeekTrainingTests
{
    static DeepseekV3ForCausalLM TinyV3(HfTokenizer tok, int seed = 1)
    {
        var cfg = DeepseekV3Config.Preset("tiny", tok.VocabSize) with
        {
            HiddenSize = 32, NumHiddenLayers = 2, IntermediateSize = 64, MoeIntermediateSize = 16, NumAttentionHeads = 2, NumKeyValueHeads = 2,
            QLoraRank = 16, KvLoraRank = 16, QkNopeHeadDim = 8, QkRopeHeadDim = 8, VHeadDim = 8,
            NRoutedExperts = 8, NumExpertsPerTok = 2, NGroup = 4, TopkGroup = 2, EosTokenIds = [tok.EosTokenId!.Value],
        };
        var m = (DeepseekV3ForCausalLM)CausalLM.Create(cfg);
        m.InitializeRandom(seed);
        return m;
    }

    [Fact]
    public void GrpoRewardRisesOnATinyV3AndTheExpertLoadsAreLogged()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyV3(tok);
        var cfg = TinyGrpo.Config(dir.Path);
        cfg.MaxSteps = 30; cfg.LearningRate = 2e-2; cfg.LossType = "dr_grpo"; cfg.ScaleRewards = "none";
        cfg.AuxLossAlpha = 1e-3; cfg.BiasUpdateSpeed = 1e-3; cfg.MtpLossWeight = 0.1;
        var before = TinyGrpo.Weights(model);
        using var trainer = new GrpoTrainer(cfg, model, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format);
        var rows = new List<Dictionary<string, double>>();
        while (!trainer.Done) rows.Add(trainer.Step());
        double first = rows.Take(5).Average(r => r["reward"]), last = rows.TakeLast(5).Average(r => r["reward"]);
        Assert.True(last > first + 0.2, $"reward went from {first:F3} to {last:F3}");
        var logged = MetricsLog.Read(Path.Combine(dir.Path, "metrics.jsonl"));
        Assert.Equal(30, logged.Count);
        foreach (var key in new[] { "moe/layer_1/load_min", "moe/layer_1/load_max", "moe/layer_1/load_entropy", "moe/layer_2/load_max", "aux/balance_loss", "aux/mtp_loss" })
            Assert.True(logged[^1].ContainsKey(key), key);
        Assert.InRange(logged[^1]["moe/layer_1/load_entropy"], 0, 1);
        // Gradients reached every kind of weight: MLA's projections and norms, the experts, the router, the MTP module.
        var after = TinyGrpo.Weights(model);
        foreach (var name in new[] { "model.layers.0.self_attn.kv_b_proj.weight", "model.layers.0.self_attn.q_a_layernorm.weight",
                     "model.layers.1.mlp.gate.weight", "model.layers.1.mlp.shared_experts.up_proj.weight", "model.layers.2.eh_proj.weight" })
            Assert.False(before[name].SequenceEqual(after[name]), $"{name} did not move");
        Assert.True(Enumerable.Range(0, 8).Count(e => !before[$"model.layers.1.mlp.experts.{e}.down_proj.weight"].SequenceEqual(after[$"model.layers.1.mlp.experts.{e}.down_proj.weight"])) >= 5);
        Assert.False(before["model.layers.1.mlp.gate.e_score_correction_bias"].SequenceEqual(after["model.layers.1.mlp.gate.e_score_correction_bias"]));
    }

    /// <summary>Eqs. 17–20 with two rows of three tokens over four experts, k = 2, by hand.</summary>
    [Fact]
    public void TheSequenceWiseBalanceLossIsTheFormulaByHand()
    {
        float[] s = [0.9f, 0.5f, 0.3f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f, 0.7f, 0.1f, 0.3f, 0.5f,
                     0.5f, 0.5f, 0.5f, 0.5f, 0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 0.8f, 0.1f, 0.1f];
        long[] idx = [0, 1, 1, 2, 0, 3, 0, 1, 3, 2, 0, 1];
        var record = new MoeRoutingRecord(1, tensor(idx, [6, 2]), tensor(s, [6, 4]), 2, 3);
        double expected = 0;
        for (int b = 0; b < 2; b++)
        {
            var f = new double[4]; var p = new double[4];
            for (int t = 0; t < 3; t++)
            {
                int token = b * 3 + t;
                double sum = Enumerable.Range(0, 4).Sum(e => s[token * 4 + e]);
                for (int e = 0; e < 4; e++) p[e] += s[token * 4 + e] / sum / 3;
                for (int j = 0; j < 2; j++) f[idx[token * 2 + j]] += 4.0 / (2 * 3);
            }
            expected += Enumerable.Range(0, 4).Sum(e => f[e] * p[e]) / 2;
        }
        Assert.Equal(expected, DeepseekTrainingTerms.SequenceBalanceLoss(record, 4, 2).item<float>(), 5);
    }

    /// <summary>Auxiliary-loss-free balancing alone (γ, no optimizer): a router skewed so that experts 0 and 1 take
    /// every token (a bias of +0.8 over sigmoid scores spread around 0.5) is evened out by the bias updates.</summary>
    [Fact]
    public void BiasUpdatesMoveASkewedRouterTowardsUniform()
    {
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyV3(tok);
        model.AuxiliaryTraining = new AuxiliaryTrainingOptions(BiasUpdateSpeed: 0.02);
        var moe = model.MoeLayers.First();
        using (no_grad())
        {
            moe.gate.weight.copy_(randn(moe.gate.weight.shape, generator: new Generator(3)) * 0.2);
            moe.gate.e_score_correction_bias!.copy_(tensor(new float[] { 0.8f, 0.8f, 0, 0, 0, 0, 0, 0 }));
        }
        var ids = randint(0, tok.VocabSize, [8, 16], dtype: ScalarType.Int64, generator: new Generator(4));
        int[] pad = new int[8];
        var positions = AttentionMask.Positions(pad, 0, 16, CPU);
        var mask = AttentionMask.Build(pad, 0, 16, 16, CPU);
        double MaxLoad()
        {
            using var scope = NewDisposeScope();
            model.Hidden(ids, positions, mask, null);          // grad enabled: a training forward
            model.Training.AfterOptimizerStep();
            return model.Training.TakeMetrics()["moe/layer_1/load_max"];
        }
        double initial = MaxLoad();
        Assert.True(initial > 3.5, $"the router was not skewed: max load {initial:F2} of the mean");
        double last = initial;
        for (int step = 0; step < 60; step++) last = MaxLoad();
        Assert.True(last < 1.6, $"max load went from {initial:F2} to {last:F2} of the mean");
        var bias = moe.gate.e_score_correction_bias!.data<float>().ToArray();
        Assert.True(bias[0] < 0.5 && bias[1] < 0.5 && bias.Skip(2).All(v => v > 0), string.Join(", ", bias));
    }

    /// <summary>The MTP loss reaches the MTP module (and nothing trains it without λ), counting only targets in the
    /// same packed sample.</summary>
    [Fact]
    public void TheMtpLossTrainsTheMtpModuleOnlyWhenWeighted()
    {
        var tok = TinyGrpo.Tokenizer();
        var samples = Enumerable.Range(0, 4).Select(i => new R1Sharp.Training.Sft.TokenizedSample(
            Enumerable.Range(0, 12).Select(j => (i * 5 + j * 3) % (tok.VocabSize - 1)).ToArray(), Enumerable.Repeat(true, 12).ToArray())).ToList();
        Dictionary<string, double> Train(double lambda, out Dictionary<string, float[]> before, out Dictionary<string, float[]> after)
        {
            using var dir = new TempDir();
            using var model = TinyV3(tok);
            before = TinyGrpo.Weights(model);
            var trainer = new R1Sharp.Training.Sft.SftTrainer(new R1Sharp.Training.Sft.SftConfig
            {
                OutputDir = dir.Path, MaxSteps = 2, PerDeviceTrainBatchSize = 2, SaveSteps = 0, NumThreads = 1, Packing = true, MaxLength = 40,
                LearningRate = 1e-2, MtpLossWeight = lambda,
            }, model, samples);
            Dictionary<string, double> row = [];
            while (!trainer.Done) row = trainer.Step();
            after = TinyGrpo.Weights(model);
            return row;
        }
        var with = Train(0.5, out var b1, out var a1);
        Assert.True(with["aux/mtp_loss"] > 0);
        Assert.False(b1["model.layers.2.eh_proj.weight"].SequenceEqual(a1["model.layers.2.eh_proj.weight"]));
        var without = Train(0, out var b0, out var a0);
        Assert.False(without.ContainsKey("aux/mtp_loss"));
        Assert.True(b0["model.layers.2.eh_proj.weight"].SequenceEqual(a0["model.layers.2.eh_proj.weight"]));
        Assert.False(b0["model.layers.1.self_attn.q_b_proj.weight"].SequenceEqual(a0["model.layers.1.self_attn.q_b_proj.weight"]));
    }

    [Fact]
    public void GrpoKillAndResumeEndBitIdenticalWithTheBalancingBiasMoving()
    {
        var tok = TinyGrpo.Tokenizer();
        Dictionary<string, float[]> Run(string outDir, bool interrupt)
        {
            var cfg = TinyGrpo.Config(outDir);
            cfg.MaxSteps = 4; cfg.SaveSteps = 2; cfg.BiasUpdateSpeed = 0.01; cfg.AuxLossAlpha = 1e-3;
            if (interrupt)
            {
                using var m1 = TinyV3(tok);
                using var t1 = new GrpoTrainer(cfg, m1, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
                t1.Train(shouldStop: step => step == 3);
            }
            using var m2 = TinyV3(tok, seed: interrupt ? 99 : 1);
            using var t2 = new GrpoTrainer(cfg, m2, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
            Assert.Equal(interrupt, t2.Resume());
            t2.Train();
            return TinyGrpo.Weights(m2);
        }
        using var a = new TempDir();
        using var b = new TempDir();
        var straight = Run(a.Path, interrupt: false);
        var resumed = Run(b.Path, interrupt: true);
        foreach (var (name, w) in straight) Assert.True(w.SequenceEqual(resumed[name]), $"{name} differs after resume");
        Assert.Contains(straight["model.layers.1.mlp.gate.e_score_correction_bias"], v => v != 0);
    }
}
