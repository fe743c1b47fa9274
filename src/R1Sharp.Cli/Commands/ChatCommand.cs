using System.CommandLine;
using R1Sharp.Generation;
using R1Sharp.Text;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 chat`: an interactive conversation; reasoning is shown dimmed, apart from the answer, and is dropped
/// from the history as DeepSeek's template does.</summary>
public static class ChatCommand
{
    public static Command Create()
    {
        var model = CliCommon.Model();
        var system = new Option<string?>("--system") { Description = "a system message" };
        var adapter = CliCommon.Adapter();
        var device = CliCommon.Device();
        var dtype = CliCommon.DType();
        var sampling = new SamplingArgs();
        var cmd = new Command("chat", "Chat with a model folder or GGUF file (type /reset to start over, /exit or Ctrl-D to leave)") { model, adapter, system, device, dtype };
        sampling.AddTo(cmd);
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            sampling.Check(p); // before the model loads
            using var lm = LocalModel.Load(p.GetValue(model)!, p.GetValue(device), p.GetValue(dtype), p.GetValue(adapter));
            var options = sampling.Resolve(p, lm.DefaultSampling());
            var history = new List<ChatMessage>();
            if (p.GetValue(system) is { } s) history.Add(new ChatMessage("system", s));
            int systemCount = history.Count;
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(lm.Folder)} · {lm.Model.Config.ModelType} · /reset, /exit[/]");
            while (true)
            {
                AnsiConsole.Markup("[bold green]> [/]");
                string? line = Console.ReadLine();
                if (line is null || line.Trim() == "/exit") break;
                if (line.Trim() == "/reset") { history.RemoveRange(systemCount, history.Count - systemCount); continue; }
                if (line.Trim().Length == 0) continue;
                history.Add(new ChatMessage("user", line));
                var (prompt, opensThink) = lm.RenderChat(history);
                var stream = new ReasoningStream(opensThink);
                bool? lastWasReasoning = null;
                void Show(IReadOnlyList<(bool IsReasoning, string Text)> pieces)
                {
                    foreach (var (isReasoning, text) in pieces)
                    {
                        if (isReasoning != lastWasReasoning && lastWasReasoning != null) AnsiConsole.WriteLine();
                        lastWasReasoning = isReasoning;
                        AnsiConsole.Write(new Spectre.Console.Text(text, isReasoning ? new Style(Color.Grey, decoration: Decoration.Italic) : Style.Plain));
                    }
                }
                var result = lm.Generator.Generate([prompt], options, opensThink, (_, delta) => Show(stream.Push(delta)))[0];
                Show(stream.Flush());
                AnsiConsole.WriteLine();
                history.Add(new ChatMessage("assistant", result.Answer) { ReasoningContent = result.Reasoning });
            }
            return 0;
        }));
        return cmd;
    }
}
