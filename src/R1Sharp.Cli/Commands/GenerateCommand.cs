using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Text;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 generate`: one completion for one prompt, streamed to stdout (or a JSON summary).</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = CliCommon.Model();
        var prompt = new Option<string>("--prompt") { Description = "the user message (or the raw prompt with --raw)", Required = true };
        var system = new Option<string?>("--system") { Description = "a system message" };
        var raw = new Option<bool>("--raw") { Description = "feed the prompt as it is, without the chat template" };
        var json = new Option<bool>("--json") { Description = "print a JSON object with text, reasoning, answer and counts" };
        var adapter = CliCommon.Adapter();
        var device = CliCommon.Device();
        var dtype = CliCommon.DType();
        var sampling = new SamplingArgs();
        var cmd = new Command("generate", "Generate a completion from a model folder or GGUF file") { model, adapter, prompt, system, raw, json, device, dtype };
        sampling.AddTo(cmd);
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            sampling.Check(p); // before the model loads
            using var lm = LocalModel.Load(p.GetValue(model)!, p.GetValue(device), p.GetValue(dtype), p.GetValue(adapter));
            var options = sampling.Resolve(p, lm.DefaultSampling());
            string text = p.GetValue(prompt)!;
            bool opensThink = false;
            string fullPrompt = text;
            if (!p.GetValue(raw) && lm.Template != null)
            {
                var messages = new List<ChatMessage>();
                if (p.GetValue(system) is { } s) messages.Add(new ChatMessage("system", s));
                messages.Add(new ChatMessage("user", text));
                (fullPrompt, opensThink) = lm.RenderChat(messages);
            }
            bool asJson = p.GetValue(json);
            var sw = Stopwatch.StartNew();
            var result = lm.Generator.Generate([fullPrompt], options, opensThink,
                asJson ? null : (_, delta) => { Console.Write(delta); Console.Out.Flush(); }, addSpecialTokens: p.GetValue(raw))[0];
            double seconds = sw.Elapsed.TotalSeconds;
            if (asJson)
                CliCommon.PrintJson(new
                {
                    prompt = fullPrompt, text = result.Text, reasoning = result.Reasoning, answer = result.Answer,
                    finish_reason = result.FinishReason, prompt_tokens = result.PromptTokens, completion_tokens = result.TokenIds.Length,
                    seconds, tokens_per_second = result.TokenIds.Length / seconds,
                });
            else
            {
                Console.WriteLine();
                Console.Error.WriteLine($"[{result.TokenIds.Length} tokens, {result.TokenIds.Length / seconds:F1} tok/s, finish: {result.FinishReason}]");
            }
            return 0;
        }));
        return cmd;
    }
}
