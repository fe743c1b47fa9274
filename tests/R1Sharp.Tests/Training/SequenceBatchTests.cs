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
