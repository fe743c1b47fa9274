using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Tests.Serving;
using R1Sharp.Text;

namespace R1Sharp.Tests.Generation;

/// <summary>Sampling options are refused at the library level, whatever front end built them (CLI, server, eval,
/// trainer), and generation_config.json's values are checked as config.json's are: a value present must be usable.</summary>
public class SamplingOptionsTests
{
    [Theory]
    [InlineData(float.PositiveInfinity, 1f, "temperature")]
    [InlineData(float.NegativeInfinity, 1f, "temperature")]
    [InlineData(float.NaN, 1f, "temperature")]
    [InlineData(-0.5f, 1f, "temperature")]
    [InlineData(1f, float.NaN, "top_p")]
    [InlineData(1f, float.PositiveInfinity, "top_p")]
    [InlineData(1f, 0f, "top_p")]
    [InlineData(1f, 1.5f, "top_p")]
    public void NonFiniteOrOutOfRangeValuesAreRefused(float temperature, float topP, string named)
    {
        var e = Assert.Throws<R1SharpException>(() => new SamplingOptions { Temperature = temperature, TopP = topP }.Validate());
        Assert.StartsWith(named + " must be", e.Message);
    }

    [Theory]
    [InlineData(0f, 1f)]          // greedy
    [InlineData(0.6f, 0.95f)]     // DeepSeek's recommendation
    [InlineData(1e30f, 1e-30f)]   // extreme but finite
    public void FiniteValuesInRangeAreAccepted(float temperature, float topP) =>
        new SamplingOptions { Temperature = temperature, TopP = topP }.Validate();

    [Theory]
    [InlineData("""{"temperature": "hot"}""", "temperature")]
    [InlineData("""{"temperature": 1e300}""", "temperature")]       // finite as a double, infinite as the float it samples with
    [InlineData("""{"temperature": -1}""", "temperature")]
    [InlineData("""{"temperature": true}""", "temperature")]
    [InlineData("""{"top_p": 2}""", "top_p")]
    [InlineData("""{"top_p": 0}""", "top_p")]
    [InlineData("""{"top_p": [0.9]}""", "top_p")]
    [InlineData("""{"top_k": -1}""", "top_k")]
    [InlineData("""{"top_k": 1.5}""", "top_k")]
    [InlineData("""{"top_k": 1e12}""", "top_k")]
    [InlineData("""{"do_sample": "yes"}""", "do_sample")]
    [InlineData("""{"do_sample": 1}""", "do_sample")]
    public void AGenerationConfigValueOfTheWrongTypeOrRangeNamesTheFileAndKey(string json, string key)
    {
        var e = Assert.Throws<R1SharpException>(() => SamplingOptions.FromGenerationConfig((JsonObject)JsonNode.Parse(json)!, "m/generation_config.json"));
        Assert.StartsWith($"m/generation_config.json: \"{key}\" expects", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AGenerationConfigReadsAsTransformersReadsIt()
    {
        SamplingOptions Read(string json) => SamplingOptions.FromGenerationConfig((JsonObject)JsonNode.Parse(json)!, "g.json");
        var deepseek = Read("""{"do_sample": true, "temperature": 0.6, "top_p": 0.95, "eos_token_id": 1}""");
        Assert.Equal((0.6f, 0.95f, 0), (deepseek.Temperature, deepseek.TopP, deepseek.TopK));
        Assert.Equal(0f, Read("""{"do_sample": false, "temperature": 0.6}""").Temperature);       // greedy
        Assert.Equal((1f, 1f, 0), (Read("""{"temperature": null, "top_p": null}""").Temperature, Read("{}").TopP, Read("{}").TopK)); // None: absent
        Assert.Equal(40, Read("""{"top_k": 40}""").TopK);
        Assert.Equal(1f, SamplingOptions.FromGenerationConfig(null, "g.json").Temperature);
    }

    [Theory]
    [InlineData("[null]")]
    [InlineData("[1, \"x\"]")]
    [InlineData("\"x\"")]
    [InlineData("-1")]
    [InlineData("1000000")]   // past vocab_size
    [InlineData("1.5")]
    public void AGenerationConfigEosIdThatIsNoTokenIdNamesTheFile(string eos)
    {
        var cfg = ModelPresets.Create("qwen2", "tiny", 256, eosTokenIds: [2]);
        var tok = HfTokenizer.FromFolder(ServingTestKit.Qwen3Tokenizer);
        var gen = (JsonObject)JsonNode.Parse($$"""{"eos_token_id": {{eos}}}""")!;
        var e = Assert.Throws<R1SharpException>(() => TextGenerator.CollectEosIds(cfg, tok, gen, "m/generation_config.json"));
        Assert.StartsWith("m/generation_config.json: \"eos_token_id\" expects token ids", e.Message);
    }

    [Fact]
    public void GenerationConfigEosIdsJoinConfigsAndTheTokenizers()
    {
        var cfg = ModelPresets.Create("qwen2", "tiny", 256, eosTokenIds: [2]);
        var tok = HfTokenizer.FromFolder(ServingTestKit.Qwen3Tokenizer);
        var ids = TextGenerator.CollectEosIds(cfg, tok, (JsonObject)JsonNode.Parse("""{"eos_token_id": [3, 4]}""")!);
        Assert.Equal(new[] { 2, 3, 4, tok.EosTokenId!.Value }.Order(), ids.Order());
    }
}
