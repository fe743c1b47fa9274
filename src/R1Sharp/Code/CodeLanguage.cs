namespace R1Sharp.Code;

/// <summary>
/// A language the sandbox runs: its name and the other names a fenced block or a benchmark row may use for it, the
/// file the source is written to, and how it runs. Python runs as `python3 -E -s main.py` (no PYTHON* variables, no
/// user site-packages); C# is compiled in process by Roslyn and the assembly run with `dotnet`; any other language is a
/// command line from the recipe (code_languages: {ruby: "ruby {file}"}), with {file} the source file's name.
/// </summary>
public sealed record CodeLanguage(string Name, IReadOnlyList<string> Aliases, string FileName, IReadOnlyList<string>? Command)
{
    public const string Python = "python", CSharp = "csharp";

    public static readonly CodeLanguage PythonLanguage = new(Python, ["python", "py", "python3"], "main.py", null);
    public static readonly CodeLanguage CSharpLanguage = new(CSharp, ["csharp", "cs", "c#"], "Program.cs", null);

    /// <summary>Whether a name or alias (case-insensitive) names this language.</summary>
    public bool Is(string name) => Aliases.Contains(name.Trim().ToLowerInvariant()) || string.Equals(Name, name.Trim(), StringComparison.OrdinalIgnoreCase);

    /// <summary>A language given as a command line: "ruby {file}" runs `ruby main.ruby` (the file is main.NAME unless the
    /// command names it, as in "node {file:main.js}").</summary>
    public static CodeLanguage FromCommand(string name, string commandLine)
    {
        string key = name.Trim().ToLowerInvariant();
        if (key.Length == 0 || key.Any(c => !(char.IsLetterOrDigit(c) || c is '+' or '#' or '_' or '-')))
            throw new R1SharpException($"code_languages: \"{name}\" is not a usable language name (letters, digits, + # _ -)");
        var words = SplitWords(commandLine);
        if (words.Count == 0) throw new R1SharpException($"code_languages.{name}: empty command line");
        string file = "main." + key.Replace("#", "sharp").Replace("+", "p");
        int slots = 0;
        for (int i = 0; i < words.Count; i++)
        {
            if (words[i] == "{file}") { words[i] = file; slots++; }
            else if (words[i].StartsWith("{file:", StringComparison.Ordinal) && words[i].EndsWith('}'))
            {
                string named = words[i][6..^1];
                if (named.Length == 0 || named.Contains('/') || named.Contains("..")) throw new R1SharpException($"code_languages.{name}: {{file:NAME}} needs a plain file name, got \"{named}\"");
                file = named; words[i] = named; slots++;
            }
        }
        if (slots != 1) throw new R1SharpException($"code_languages.{name}: the command line must name the source file once as {{file}}, got \"{commandLine}\"");
        return new CodeLanguage(key, [key], file, words);
    }

    /// <summary>Whitespace-separated words; double or single quotes keep spaces inside a word (no other shell syntax).</summary>
    static List<string> SplitWords(string line)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        char quote = '\0';
        bool any = false;
        foreach (char c in line)
        {
            if (quote != '\0') { if (c == quote) quote = '\0'; else current.Append(c); }
            else if (c is '"' or '\'') { quote = c; any = true; }
            else if (char.IsWhiteSpace(c)) { if (any || current.Length > 0) words.Add(current.ToString()); current.Clear(); any = false; }
            else current.Append(c);
        }
        if (quote != '\0') throw new R1SharpException($"code_languages: unbalanced quote in \"{line}\"");
        if (any || current.Length > 0) words.Add(current.ToString());
        return words;
    }
}

/// <summary>The languages one executor knows: the built-in ones plus those given as command lines.</summary>
public sealed class CodeLanguages
{
    readonly List<CodeLanguage> all;

    public CodeLanguages(IReadOnlyDictionary<string, string>? commands = null)
    {
        all = [CodeLanguage.PythonLanguage, CodeLanguage.CSharpLanguage];
        foreach (var (name, command) in commands ?? new Dictionary<string, string>())
        {
            var lang = CodeLanguage.FromCommand(name, command);
            all.RemoveAll(l => l.Is(lang.Name)); // a recipe may replace a built-in one (python: "pypy3 {file}")
            all.Add(lang);
        }
    }

    public IReadOnlyList<CodeLanguage> All => all;

    public CodeLanguage? Find(string name) => all.FirstOrDefault(l => l.Is(name));

    public CodeLanguage Resolve(string name) => Find(name)
        ?? throw new R1SharpException($"language \"{name}\" is not supported (supported: {string.Join(", ", all.Select(l => l.Name))}; others can be added as code_languages command lines)");
}
