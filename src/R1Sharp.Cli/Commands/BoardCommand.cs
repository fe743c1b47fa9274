using System.CommandLine;
using R1Sharp.Board;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 board [DIR…]`: a local web page over run folders (curves, rollouts, evals, pipelines), until Ctrl-C.</summary>
public static class BoardCommand
{
    public static Command Create()
    {
        var folders = new Argument<string[]>("DIR") { Description = "run folders, or folders with runs below them (default: runs)", Arity = ArgumentArity.ZeroOrMore };
        var host = new Option<string>("--host") { Description = "address to bind (loopback by default)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one)", DefaultValueFactory = _ => 6006 };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding a key the browser must give (?key=… once) or scripts send as a bearer token" };
        var poll = new Option<double>("--poll") { Description = "seconds between looks at the run files", DefaultValueFactory = _ => 1.0 };
        var cmd = new Command("board", "Watch and compare runs in a local web page: curves, rollouts, evals, pipelines, live as runs write")
            { folders, host, port, apiKeyEnv, poll };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            string? key = p.GetValue(apiKeyEnv) is { } env ? CliCommon.RequiredEnv(env) : null;
            var dirs = p.GetValue(folders) is { Length: > 0 } given ? given : ["runs"];
            foreach (var d in dirs)
                if (!Directory.Exists(d)) throw new R1SharpException(File.Exists(d) ? $"{d} is a file; give the run folder that holds it" : $"{d}: no such folder");
            double seconds = p.GetValue(poll);
            if (!double.IsFinite(seconds) || seconds < 0.05 || seconds > 3600) throw new R1SharpException($"--poll must be between 0.05 and 3600 seconds, got {seconds}");
            var options = new BoardOptions
            {
                Folders = dirs, Host = p.GetValue(host)!, Port = p.GetValue(port), ApiKey = key, PollInterval = TimeSpan.FromSeconds(seconds),
            };
            bool loopback = options.Host is "localhost" || System.Net.IPAddress.TryParse(options.Host, out var ip) && System.Net.IPAddress.IsLoopback(ip);
            if (!loopback && key is null)
                Console.Error.WriteLine($"warning: --host {options.Host} serves the runs' prompts and completions to anyone who can reach it; --api-key-env VAR asks for a key");
            var server = new BoardServer(options);
            try
            {
                var uri = server.StartAsync().GetAwaiter().GetResult();
                int runs = server.Catalog.Runs.Count;
                Console.Error.WriteLine($"r1 board: {runs} run{(runs == 1 ? "" : "s")} below {string.Join(", ", dirs)}; Ctrl-C stops");
                Console.WriteLine(key is null ? uri.ToString() : $"{uri} (open it once as {uri}?key=<the value of ${p.GetValue(apiKeyEnv)}>)");
                server.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            catch (IOException e) { throw new R1SharpException($"cannot listen on {options.Host}:{options.Port}: {e.Message} (another board? try --port 0)"); }
            finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            return 0;
        }));
        return cmd;
    }
}
