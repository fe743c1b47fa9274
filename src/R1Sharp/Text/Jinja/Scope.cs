namespace R1Sharp.Text.Jinja;

/// <summary>
/// Variable scopes as jinja2 resolves them: a for-loop iteration and a macro call each get a fresh scope
/// whose assignments vanish when it ends (which is why templates carry state in namespace() objects);
/// {% if %} opens none.
/// </summary>
internal sealed class Scope
{
    readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);
    readonly Scope? _parent;

    public Scope(Scope? parent) => _parent = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var s = this; s != null; s = s._parent)
            if (s._vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    public void Set(string name, object? value) => _vars[name] = value;
}
