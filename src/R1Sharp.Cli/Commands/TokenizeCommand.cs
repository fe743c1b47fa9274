using System.CommandLine;
using R1Sharp.Text;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 tokenize`: token ids (and pieces) of a text under a tokenizer.json.</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "folder with tokenizer.json (a model folder works)", Required = true };
        var text = new Option<string>("--text") { Description = "text to encode", Required = true };
        var special = new Option<bool>("--add-special-tokens") { Description = "add BOS as the tokenizer config says" };
        var json = new Option<bool>("--json") { Description = "print JSON: ids and tokens" };
        var cmd = new Command("tokenize", "Encode text with a Hugging Face tokenizer") { tokenizer, text, special, json };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            var tok = HfTokenizer.FromFolder(p.GetValue(tokenizer)!);
            var ids = tok.Encode(p.GetValue(text)!, p.GetValue(special));
            if (p.GetValue(json)) CliCommon.PrintJson(new { ids, tokens = ids.Select(i => tok.IdToToken(i)).ToArray(), count = ids.Count });
            else Console.WriteLine(string.Join(' ', ids));
            return 0;
        }));
        return cmd;
    }
}
