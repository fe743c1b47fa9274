
namespace R1Sharp.Training.Pipeline;

/// <summary>
/// recipes/zero-distill.yaml, built into the library: the embedded proof that `r1 distill` and `r1 pipeline` run with
/// no arguments (the r1 zero model as the teacher, three students compared; no download). Read as if it sat in
/// ./recipes, so its output_dir (../runs/zero-distill) is runs/zero-distill under the working directory.
/// </summary>
public static class EmbeddedRecipe
{
    public const string Source = "recipes/zero-distill.yaml";

    public static string Text
    {
        get
        {
            using var stream = typeof(EmbeddedRecipe).Assembly.GetManifestResourceStream("zero-distill.yaml")
                ?? throw new InvalidOperationException("the embedded recipe zero-distill.yaml is missing from the assembly");
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }

    /// <param name="outputDir">another run folder than runs/zero-distill</param>
    public static PipelineRecipe Load(string? outputDir = null)
    {
        var recipe = PipelineRecipe.Parse(Text, $"{Source} (built in)", Path.Combine(Directory.GetCurrentDirectory(), "recipes"));
        return outputDir is null ? recipe : recipe with { OutputDir = Path.GetFullPath(outputDir) };
    }
}
