using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

public class RecipeAndDataTests
{
    [Fact]
    public void Recipe_ReadsTrlNames()
    {
        var c = RecipeLoader.Parse("""
            # DAPO-style
            loss_type: dapo
            num_generations: 4
            per_device_train_batch_size: 8
            beta: 0.0
            epsilon: 0.2
            epsilon_high: 0.28
            scale_rewards: batch
            importance_sampling_level: sequence
            max_completion_length: 128
            num_iterations: 2
            learning_rate: 1e-6
            dynamic_sampling: true
            reward_funcs: [accuracy, format]
            reward_weights: [1.0, 0.2]
            """, "r.yaml");
        Assert.Equal("dapo", c.LossType);
        Assert.Equal(4, c.NumGenerations);
        Assert.Equal(0.28, c.EffectiveEpsilonHigh);
        Assert.Equal("sequence", c.ImportanceSamplingLevel);
        Assert.Equal(1e-6, c.LearningRate);
        Assert.True(c.DynamicSampling);
        Assert.Equal(["accuracy", "format"], c.RewardFuncs);
        Assert.Equal([1.0, 0.2], c.RewardWeights!);
        Assert.Equal(2, c.PromptsPerStep);
    }

    [Fact]
    public void Recipe_UnknownKey_NamesFileLineAndSuggestion()
    {
        var e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse("beta: 0.1\nnum_generation: 8\n", "recipe.yaml"));
        Assert.Equal("recipe.yaml:2: unknown key \"num_generation\" (did you mean \"num_generations\"?)", e.Message);
    }

    [Fact]
    public void Recipe_BadValues_AreNamed()
    {
        var e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse("num_generations: many\n", "r.yaml"));
        Assert.Equal("r.yaml:1: \"num_generations\" expects an integer, found \"many\"", e.Message);
        e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse("loss_type: ppo\n", "r.yaml"));
        Assert.Contains("loss_type \"ppo\" is unknown", e.Message);
        e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse("num_generations: 3\nper_device_train_batch_size: 8\n", "r.yaml"));
        Assert.Contains("multiple of num_generations", e.Message);
    }

    [Fact]
    public void Dataset_MalformedLine_NamesFileAndLine()
    {
        using var dir = new TempDir();
        string path = dir.File("train.jsonl");
        File.WriteAllText(path, "{\"question\": \"1+1\", \"solution\": 2}\n\n{\"question\": \"2+2\", \"solution\": \"4\"\n");
        var e = Assert.Throws<R1SharpException>(() => PromptDataset.Load(path, "question", "solution"));
        Assert.StartsWith($"{path}:3: malformed JSON", e.Message);
    }

    [Fact]
    public void Dataset_ReadsFieldsAndReportsMissingOnes()
    {
        using var dir = new TempDir();
        string path = dir.File("train.jsonl");
        File.WriteAllText(path, "{\"question\": \"1+1\", \"solution\": 2}\n{\"question\": \"2+2\"}\n");
        var e = Assert.Throws<R1SharpException>(() => PromptDataset.Load(path, "question", "solution"));
        Assert.Equal($"{path}:2: no \"solution\" field", e.Message);
        File.WriteAllText(path, "{\"question\": \"1+1\", \"solution\": 2}\n");
        var data = PromptDataset.Load(path, "question", "solution");
        Assert.Equal(new PromptExample("1+1", "2"), data[0]);
    }
}
