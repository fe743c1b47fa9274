using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>A decode step's few RoPE rows copied in C# (<see cref="Rope.Gather"/> up to 64 positions) against the
/// tensor path it skips (index_select of the float32 tables, cast), taken for a long row of positions.</summary>
public class RopeGatherTests
{
    [Theory]
    [InlineData("f32")]
    [InlineData("bf16")]
    public void FewPositionsGiveTheRowsOfTheTensorPath(string dtypeName)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        using var scope = NewDisposeScope();
        using var rope = new Rope(64, 10000, RopeScaling.Yarn(40, 4096, 32, 1, 0.707, 0.707), 163840);
        var many = randint(0, 9000, [1, 200], dtype: ScalarType.Int64, generator: new Generator(2));
        var (cosAll, sinAll) = rope.Gather(many, dtype, CPU);      // the tensor path (200 positions)
        Assert.Equal(new long[] { 1, 1, 200, 64 }, cosAll.shape);
        var values = many.data<long>().ToArray();
        // Three rows of two positions each, taken from the same list, one at a time through the short path.
        var few = tensor(new[] { values[0], values[1], values[50], values[51], values[199], values[198] }, [3, 2]);
        var (cos, sin) = rope.Gather(few, dtype, CPU);
        Assert.Equal(new long[] { 3, 1, 2, 64 }, cos.shape);
        Assert.Equal(dtype, cos.dtype);
        int[][] columns = [[0, 1], [50, 51], [199, 198]];
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 2; j++)
            {
                Assert.True(cos[r, 0, j].equal(cosAll[0, 0, columns[r][j]]).all().item<bool>(), $"cos row {r}, {j}");
                Assert.True(sin[r, 0, j].equal(sinAll[0, 0, columns[r][j]]).all().item<bool>(), $"sin row {r}, {j}");
            }
        // Past the tables' current capacity: they grow as on the tensor path.
        var (farCos, _) = rope.Gather(tensor(new long[] { 20000 }, [1, 1]), dtype, CPU);
        var (farAll, _) = rope.Gather(tensor(Enumerable.Repeat(20000L, 100).ToArray(), [1, 100]), dtype, CPU);
        Assert.True(farCos[0, 0, 0].equal(farAll[0, 0, 0]).all().item<bool>());
    }
}
