namespace R1Sharp.Text.Jinja;

/// <summary>
/// A parsed Jinja template, rendered with the semantics of Python jinja2 as Hugging Face transformers configures it
/// (trim_blocks, lstrip_blocks, loopcontrols, a sandbox that forbids mutating lists and dicts, tojson, raise_exception,
/// strftime_now). Parsing happens once; rendering is a pure function of the variables.
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<Node> _nodes;

    public JinjaTemplate(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        _nodes = Parser.Parse(source);
    }

    /// <summary>Renders with the given variables. Values may be null, bool, integers, floating point numbers, strings,
    /// dictionaries (keys become Python dict keys), other enumerables (lists) or System.Text.Json elements.</summary>
    public string Render(IReadOnlyDictionary<string, object?> variables) => Interpreter.Render(_nodes, variables);
}
