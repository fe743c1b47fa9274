using R1Sharp.Models;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training;

public class SequenceBatchTests
{
    [Fact]
    public void LogProbs_OfEachCompletionToken_EqualThoseOfTheRowRunAlone()
    {
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok, seed: 4);
        using var _ = no_grad();
        int[][] prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]];
        int[][] completions = [[20, 21], [22, 23, 24, 25, 26], []];
        using var batch = new SequenceBatch(prompts, completions, model.Device);
        // Length 9; row 1 (2 + 5 tokens, 2 columns of padding) has the earliest completion token, at column 4, which
        // column 3 predicts: columns 0-2 never reach the vocabulary projection.
        Assert.Equal(3, batch.Start);
        var (logp, _) = batch.TokenLogProbs(model);
        Assert.Equal(new long[] { 3, batch.Length - 1 - batch.Start }, logp.shape);
        Assert.Equal(7, batch.CompletionTokens);
        Assert.Equal(7f, batch.CompletionMask.sum().item<float>());
        for (int r = 0; r < prompts.Length; r++)
        {
            int[] ids = [.. prompts[r], .. completions[r]];
            using var x = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
            using var pos = AttentionMask.Positions([0], 0, ids.Length, model.Device);
            using var mask = AttentionMask.Build([0], 0, ids.Length, ids.Length, model.Device);
            using var alone = model.Forward(x, pos, mask).log_softmax(-1);
            var row = logp[r].data<float>().ToArray();
            var m = batch.CompletionMask[r].data<float>().ToArray();
            var kept = row.Where((_, j) => m[j] == 1f).ToArray();
            Assert.Equal(completions[r].Length, kept.Length);
            for (int j = 0; j < completions[r].Length; j++)
            {
                float expected = alone[0, prompts[r].Length + j - 1, completions[r][j]].item<float>();
                Assert.Equal(expected, kept[j], 4);
            }
        }
    }
}

public class ModelFlopsTests
{
    [Fact]
    public void Forward_CountsEveryMatmulOfTheComputedShapes()
    {
        var c = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", 10, null, [0]) with
        {
            HiddenSize = 4, NumAttentionHeads = 2, NumKeyValueHeads = 1, HeadDim = 2, IntermediateSize = 8, NumHiddenLayers = 1,
        };
        // Per token of one layer, multiply-adds: q 4×4, k and v 4×2 each, o 4×4, gate/up/down 4×8 each = 16+8+8+16+96 = 144;
        // attention over 3 keys: scores 4×3 and weighted values 4×3 = 24. Three tokens: 3 × 168 = 504.
        // Vocabulary projection of the 2 kept columns: 2 × 4 × 10 = 80. Two FLOPs per multiply-add.
        Assert.Equal(2 * (504 + 80), ModelFlops.Forward(c, rows: 1, length: 3, logitColumns: 2));
        Assert.Equal(5 * ModelFlops.Forward(c, 1, 3, 2), ModelFlops.Forward(c, 5, 3, 2), 6);
    }
}
