using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

public class AdvantageTests
{
    // Hand-computed: rewards 1,0,0,0 have mean 0.25 and unbiased std sqrt((0.75² + 3·0.25²)/3) = 0.5.
    [Fact]
    public void GroupScaling_DividesByUnbiasedGroupStd()
    {
        var a = Advantages.Compute([1, 0, 0, 0, 2, 2, 2, 2], 4, ScaleRewards.Group);
        Assert.Equal(0.75 / 0.5001, a[0], 9);
        Assert.Equal(-0.25 / 0.5001, a[1], 9);
        Assert.All(a[4..], x => Assert.Equal(0, x)); // a zero-variance group teaches nothing
    }

    [Fact]
    public void BatchScaling_UsesTheWholeBatchStd_NoneOnlyCentres()
    {
        double[] r = [1, 0, 3, 1];
        // batch: mean 1.25, unbiased std sqrt((0.0625+1.5625+3.0625+0.0625)/3) = sqrt(1.583333…)
        double std = Math.Sqrt(4.75 / 3);
        var b = Advantages.Compute(r, 2, ScaleRewards.Batch);
        Assert.Equal(0.5 / (std + 1e-4), b[0], 9);
        Assert.Equal(1.0 / (std + 1e-4), b[2], 9);
        var n = Advantages.Compute(r, 2, ScaleRewards.None);
        Assert.Equal([0.5, -0.5, 1, -1], n);
    }

    [Fact]
    public void RewardsThatDoNotFormGroups_AreRejected()
    {
        var e = Assert.Throws<R1SharpException>(() => Advantages.Compute([1, 2, 3], 2, ScaleRewards.Group));
        Assert.Contains("num_generations=2", e.Message);
        Assert.Throws<R1SharpException>(() => Advantages.Compute([1, 2], 2, LossOptions.ParseScaleRewards("batchy")));
    }

    [Fact]
    public void Schedule_WarmsUpThenDecays()
    {
        var s = new LrSchedule(1.0, 2, 12, "cosine");
        Assert.Equal(0.5, s.At(0), 12);
        Assert.Equal(1.0, s.At(1), 12);
        Assert.Equal(1.0, s.At(2), 12);
        Assert.Equal(0.5, s.At(7), 12); // half-way through the decay: cos(π/2)
        Assert.Equal(0.0, s.At(12), 12);
    }
}
