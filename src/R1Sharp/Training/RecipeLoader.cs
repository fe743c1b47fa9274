using System.Globalization;
using System.Reflection;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace R1Sharp.Training;

/// <summary>The options of a trainer that a recipe YAML fills: GRPO's, SFT's.</summary>
public interface IRecipe
{
    string DatasetPath { get; set; }
    void Validate(string source);
}

/// <summary>
/// Reads a recipe YAML into a trainer's options (<see cref="GrpoConfig"/>, <see cref="Sft.SftConfig"/>). Keys are the
/// snake_case property names (TRL's option names); an unknown key, a wrong type or malformed YAML is an error naming
/// the file, the line and the key.
/// </summary>
public static class RecipeLoader
{
    public static GrpoConfig Load(string path) => Load<GrpoConfig>(path);

    public static T Load<T>(string path) where T : IRecipe, new()
    {
        if (!File.Exists(path)) throw new R1SharpException($"{path}: recipe not found");
        var config = Parse<T>(File.ReadAllText(path), path);
        // Relative paths in a recipe are relative to the recipe.
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (config.DatasetPath.Length > 0 && !Path.IsPathRooted(config.DatasetPath)) config.DatasetPath = Path.Combine(dir, config.DatasetPath);
        if (config is Sft.SftConfig sft && sft.EvalDatasetPath.Length > 0 && !Path.IsPathRooted(sft.EvalDatasetPath))
            sft.EvalDatasetPath = Path.Combine(dir, sft.EvalDatasetPath);
        return config;
    }

    public static GrpoConfig Parse(string yaml, string source) => Parse<GrpoConfig>(yaml, source);

    public static T Parse<T>(string yaml, string source) where T : IRecipe, new()
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e) { throw new R1SharpException($"{source}:{e.Start.Line}: malformed YAML: {e.Message}"); }
        // YamlDotNet reports a few malformed documents (an unclosed flow sequence) without a position.
        catch (InvalidOperationException e) { throw new R1SharpException($"{source}: malformed YAML: {e.Message}"); }
        var config = new T();
        if (stream.Documents.Count == 0) return config;
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new R1SharpException($"{source}: expected a mapping of option names to values at the top level");
        Apply(root, config, source);
        config.Validate(source);
        return config;
    }

    /// <summary>Sets the options a mapping names on <paramref name="config"/>: each key is a property's snake_case name;
    /// an unknown key (not in <paramref name="skip"/> either) or a value of the wrong type is an error naming the
    /// source, the key's line and the key.</summary>
    public static void Apply<T>(YamlMappingNode root, T config, string source, IReadOnlySet<string>? skip = null) where T : notnull
    {
        var props = config.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite).ToDictionary(p => SnakeCase(p.Name));
        foreach (var (keyNode, valueNode) in root.Children)
        {
            string key = (keyNode as YamlScalarNode)?.Value ?? "";
            int line = (int)keyNode.Start.Line;
            if (skip?.Contains(key) == true) continue;
            if (!props.TryGetValue(key, out var prop))
            {
                var known = props.Keys.Concat(skip ?? new HashSet<string>()).ToList();
                string? near = known.OrderBy(k => Distance(k, key)).FirstOrDefault();
                throw new R1SharpException($"{source}:{line}: unknown key \"{key}\"" + (near != null && Distance(near, key) <= 3 ? $" (did you mean \"{near}\"?)" : ""));
            }
            try { prop.SetValue(config, Convert(valueNode, prop.PropertyType)); }
            catch (Exception e) when (e is FormatException or OverflowException or InvalidCastException)
            {
                throw new R1SharpException($"{source}:{line}: \"{key}\" expects {TypeName(prop.PropertyType)}, found \"{valueNode}\"");
            }
        }
    }

    static object? Convert(YamlNode node, Type type)
    {
        var inner = Nullable.GetUnderlyingType(type) ?? type;
        if (inner == typeof(List<string>) || inner == typeof(List<double>))
        {
            var items = node is YamlSequenceNode seq ? seq.Children : [node];
            var elem = inner.GetGenericArguments()[0];
            var list = (System.Collections.IList)Activator.CreateInstance(inner)!;
            foreach (var item in items) list.Add(Convert(item, elem));
            return list;
        }
        if (inner == typeof(Dictionary<string, string>))
        {
            if (node is not YamlMappingNode map) throw new InvalidCastException();
            return map.Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value ?? "", kv => kv.Value is YamlScalarNode v ? v.Value ?? "" : throw new InvalidCastException());
        }
        if (node is not YamlScalarNode scalar) throw new InvalidCastException();
        string s = scalar.Value ?? "";
        if (type != inner && (s is "" or "null" or "~")) return null;
        if (inner == typeof(string)) return s;
        if (inner == typeof(bool)) return s.ToLowerInvariant() switch { "true" or "yes" => true, "false" or "no" => false, _ => throw new FormatException() };
        if (inner == typeof(int)) return int.Parse(s, CultureInfo.InvariantCulture);
        if (inner == typeof(long)) return long.Parse(s, CultureInfo.InvariantCulture);
        // Infinity, NaN and 1e999 parse as doubles, but no recipe number means them (temperature: Infinity would sample noise).
        if (inner == typeof(double)) return double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture) is var d && double.IsFinite(d) ? d : throw new FormatException();
        throw new InvalidCastException();
    }

    static string TypeName(Type t) => (Nullable.GetUnderlyingType(t) ?? t) switch
    {
        var x when x == typeof(int) || x == typeof(long) => "an integer",
        var x when x == typeof(double) => "a finite number",
        var x when x == typeof(bool) => "true or false",
        var x when x == typeof(string) => "a string",
        var x when x == typeof(Dictionary<string, string>) => "a mapping of names to strings",
        _ => "a list",
    };

    public static string SnakeCase(string pascal)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            if (char.IsUpper(pascal[i]) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(pascal[i]));
        }
        return sb.ToString();
    }

    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}
