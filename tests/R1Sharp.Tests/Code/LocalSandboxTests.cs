using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>The local sandbox's ordinary paths: a program's verdicts, stdin and stdout, C# compiled by Roslyn with
/// DEBUG defined, command-line languages, the errors a user must fix.</summary>
[Collection(SandboxCollection.Name)]
public sealed class LocalSandboxTests(SandboxFixture fx) : IClassFixture<SandboxFixture>
{
    [Fact]
    public void PythonVerdicts()
    {
        Assert.Equal(CodeVerdict.Passed, fx.Run("python", "def f(x):\n    return x + 1\n", "assert f(1) == 2\n").Verdict);
        var failed = fx.Run("python", "def f(x):\n    return x\n", "assert f(1) == 2\n");
        Assert.Equal(CodeVerdict.Failed, failed.Verdict);
        Assert.Contains("AssertionError", failed.Detail);
        var error = fx.Run("python", "def f(x):\n    return x / 0\n", "assert f(1) == 2\n");
        Assert.Equal(CodeVerdict.RuntimeError, error.Verdict);
        Assert.Contains("ZeroDivisionError", error.Detail);
        Assert.Contains("Traceback", error.Stderr);
        Assert.Equal(CodeVerdict.RuntimeError, fx.Run("python", "def f(:\n").Verdict); // a syntax error is Python's runtime error
    }

    [Fact]
    public void StdinAndStdout()
    {
        var r = fx.Run("python", "import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(nums))\n", stdin: "1 2 3\n4\n");
        Assert.Equal(CodeVerdict.Passed, r.Verdict);
        Assert.Equal("10\n", r.Stdout);
        var cs = fx.Run("csharp", "using System; class P { static void Main() { var a = Console.ReadLine()!.Split(' '); Console.WriteLine(int.Parse(a[0]) * int.Parse(a[1])); } }", stdin: "6 7\n");
        Assert.Equal(CodeVerdict.Passed, cs.Verdict);
        Assert.Equal("42\n", cs.Stdout);
    }

    [Fact]
    public void CSharpDebugAssertFailsTheRun()
    {
        const string harness = "using System.Diagnostics; partial class Problem { public static void Main(string[] args) { Debug.Assert(Twice(2) == 4); } }";
        Assert.Equal(CodeVerdict.Passed, fx.Run("csharp", "partial class Problem { public static int Twice(int x) { return 2 * x; } }", harness).Verdict);
        var wrong = fx.Run("csharp", "partial class Problem { public static int Twice(int x) { return x; } }", harness);
        Assert.Equal(CodeVerdict.Failed, wrong.Verdict);
        var broken = fx.Run("csharp", "partial class Problem { public static int Twice(int x) { return x } }", harness);
        Assert.Equal(CodeVerdict.CompileError, broken.Verdict);
        Assert.Contains("CS1002", broken.Detail);
        var thrown = fx.Run("csharp", "partial class Problem { public static int Twice(int x) { throw new System.InvalidOperationException(\"no\"); } }", harness);
        Assert.Equal(CodeVerdict.RuntimeError, thrown.Verdict);
        Assert.Contains("InvalidOperationException", thrown.Detail);
    }

    [Fact]
    public async Task CommandLineLanguage()
    {
        // A language given as a command line: here a shell, which every Linux has.
        using var sandbox = new LocalSandbox(new LocalSandboxOptions { Isolation = SandboxFixture.Isolation, Concurrency = 1, Limits = SandboxFixture.Tight, Commands = new Dictionary<string, string> { ["sh"] = "sh {file}" } });
        var r = await sandbox.RunAsync(new CodeRun("sh", "read x; echo $((x * 3))", Stdin: "14\n"));
        Assert.Equal(CodeVerdict.Passed, r.Verdict);
        Assert.Equal("42\n", r.Stdout);
        Assert.Equal(CodeVerdict.RuntimeError, (await sandbox.RunAsync(new CodeRun("sh", "exit 3"))).Verdict);
    }

    [Fact]
    public void UnsupportedLanguageIsOneClearError()
    {
        var e = Assert.Throws<R1SharpException>(() => fx.Run("cobol", "DISPLAY 'HI'."));
        Assert.Contains("language \"cobol\" is not supported", e.Message);
        Assert.Contains("python", e.Message);
        Assert.Throws<R1SharpException>(() => CodeLanguage.FromCommand("ruby", "ruby main.rb"));
    }
}
