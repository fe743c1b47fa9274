using R1Sharp.Text.Jinja;

namespace R1Sharp.Tests.Text;

/// <summary>What the interpreter does not run must fail loudly, naming the construct and its template line,
/// never render something subtly different from jinja2.</summary>
public class JinjaErrorTests
{
    static R1SharpException Fails(string source, IReadOnlyDictionary<string, object?>? vars = null) =>
        Assert.Throws<R1SharpException>(() => new JinjaTemplate(source).Render(vars ?? new Dictionary<string, object?>()));

    [Theory]
    [InlineData("a\n{% call foo() %}x{% endcall %}", "call", 2)]
    [InlineData("{% include 'other.jinja' %}", "include", 1)]
    [InlineData("\n\n{% import 'm.jinja' as m %}", "import", 3)]
    [InlineData("{% extends 'base' %}", "extends", 1)]
    [InlineData("{% block body %}{% endblock %}", "block", 1)]
    [InlineData("{% with a = 1 %}{{ a }}{% endwith %}", "with", 1)]
    [InlineData("{% filter upper %}x{% endfilter %}", "filter", 1)]
    [InlineData("{% do x.append(1) %}", "do", 1)]
    [InlineData("x\n{% for a in b recursive %}{% endfor %}", "recursive", 2)]
    [InlineData("{% frobnicate %}", "frobnicate", 1)]
    public void UnsupportedTagsNameTheTagAndLine(string source, string construct, int line)
    {
        var ex = Fails(source);
        Assert.Contains(construct, ex.Message);
        Assert.StartsWith($"chat template line {line}:", ex.Message);
    }

    [Theory]
    [InlineData("{{ 'x' | wordwrap(3) }}", "wordwrap")]
    [InlineData("{{ 'x' | no_such_filter }}", "no_such_filter")]
    [InlineData("\n{{ 3 is prime }}", "prime")]
    [InlineData("{{ f(*args) }}", "*args")]
    [InlineData("{{ strftime_now('%Z') }}", "%Z")]
    [InlineData("{{ 'abc'.format_map({}) }}", "format_map")]
    [InlineData("{{ '%s' % 'x' }}", "%")]
    public void UnsupportedFiltersTestsAndCallsNameThemselves(string source, string construct)
    {
        Assert.Contains(construct, Fails(source).Message);
    }

    [Theory]
    [InlineData("{% if x %}never closed", "if", 1)]
    [InlineData("{% for x in y %}\n{% endif %}", "innermost open block is '{% for %}' from line 1", 2)]
    [InlineData("a\n\n{{ 'unterminated }}", "string", 3)]
    [InlineData("{{ 1 + }}", "unexpected", 1)]
    [InlineData("{% endfor %}", "endfor", 1)]
    [InlineData("a\n{% break %}", "outside a for loop", 2)]
    [InlineData("{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}", "outside a for loop", 1)]
    public void SyntaxErrorsNameTheLine(string source, string word, int line)
    {
        var ex = Fails(source);
        Assert.Contains(word, ex.Message);
        Assert.StartsWith($"chat template line {line}:", ex.Message);
    }

    [Fact]
    public void RaiseExceptionCarriesTheTemplatesMessage()
    {
        var ex = Fails("x\n{{ raise_exception('Conversation roles must alternate user/assistant') }}");
        Assert.Equal("chat template line 2: raise_exception: Conversation roles must alternate user/assistant", ex.Message);
    }

    [Fact]
    public void UndefinedIsEmptyButUsingItIsAnError()
    {
        Assert.Equal("[]", new JinjaTemplate("[{{ missing }}]").Render(new Dictionary<string, object?>()));
        var ex = Fails("{{ message.content }}");
        Assert.Contains("'message' is undefined", ex.Message);
    }

    [Fact]
    public void RunawayMacroRecursionIsAnErrorNotAStackOverflow()
    {
        // Python raises RecursionError here (Hermes-3's type macro does this on {"type": "null"}); .NET would crash.
        var ex = Fails("{% macro f(n) %}{{ f(n) }}{% endmacro %}\n{{ f(1) }}");
        Assert.Contains("maximum recursion depth", ex.Message);
        Assert.Contains("'f'", ex.Message);
    }

    [Fact]
    public void TemplatesCannotMutateLists()
    {
        var ex = Fails("{% set l = [] %}{{ l.append(1) }}");
        Assert.Contains("append", ex.Message);
    }
}
