using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace R1Sharp.Tests.Serving;

/// <summary>A real `r1 serve` child process on a free port; killed (with its tree) on dispose.</summary>
public sealed class ServeProcess : IDisposable
{
    readonly Process process;
    public Uri BaseAddress { get; }

    ServeProcess(Process p, Uri uri) { process = p; BaseAddress = uri; }

    public static async Task<ServeProcess> StartAsync(string modelFolder, IReadOnlyList<string>? extraArgs = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "r1.dll"), "serve", "--model", modelFolder, "--port", "0" }.Concat(extraArgs ?? []))
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var p = Process.Start(psi)!;
        var log = new StringBuilder();
        var started = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        // The command prints where it listens on stderr once the port is bound.
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) return;
            lock (log) log.AppendLine(line);
            if (Regex.Match(line, @"at (http://\S+)") is { Success: true } m) started.TrySetResult(new Uri(m.Groups[1].Value));
        };
        p.OutputDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            var uri = await started.Task.WaitAsync(TimeSpan.FromSeconds(120));
            return new ServeProcess(p, uri);
        }
        catch (TimeoutException)
        {
            p.Kill(entireProcessTree: true);
            string text; lock (log) text = log.ToString();
            throw new TimeoutException($"r1 serve did not report its address within 120 s; stderr:\n{text}");
        }
    }

    public void Dispose()
    {
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        process.WaitForExit(10_000);
        process.Dispose();
    }
}
