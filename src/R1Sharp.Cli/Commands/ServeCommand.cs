using System.CommandLine;
using R1Sharp.Serving;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 serve`: the OpenAI-compatible server for a model folder, until Ctrl-C.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = CliCommon.Model();
        var host = new Option<string>("--host") { Description = "address to bind (loopback by default)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one)", DefaultValueFactory = _ => 8000 };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together (KV-cache rows)", DefaultValueFactory = _ => 8 };
        var maxQueue = new Option<int>("--max-queue") { Description = "sequences allowed to wait for a row; more get HTTP 429", DefaultValueFactory = _ => 64 };
        var maxContext = new Option<int?>("--max-context") { Description = "tokens per sequence, prompt included (default: the model's, at most 4096)" };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the API key clients must send as a bearer token" };
        var name = new Option<string?>("--served-model-name") { Description = "model id for clients (default: the folder's name)" };
        var maxRequestBytes = new Option<long>("--max-request-bytes") { Description = "largest request body accepted; larger ones get HTTP 413", DefaultValueFactory = _ => new ServeOptions().MaxRequestBytes };
        var requestTimeout = new Option<double>("--request-timeout")
            { Description = "seconds a completion request may take; then its sequences are cancelled and the client gets 504", DefaultValueFactory = _ => new ServeOptions().RequestTimeout.TotalSeconds };
        var adapter = CliCommon.Adapter();
        var loras = new Option<string[]>("--lora") { Description = "NAME=DIR: serve a LoRA adapter (PEFT's layout) over the base under model id NAME (repeatable; a request picks one by its model field)", AllowMultipleArgumentsPerToken = true };
        var device = CliCommon.Device();
        var dtype = CliCommon.DType();
        var cmd = new Command("serve", "Serve a model folder or GGUF file over the OpenAI API (chat/completions with reasoning_content, completions, models)")
            { model, adapter, loras, host, port, maxBatch, maxQueue, maxContext, apiKeyEnv, name, maxRequestBytes, requestTimeout, device, dtype };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            string? key = p.GetValue(apiKeyEnv) is { } env ? CliCommon.RequiredEnv(env) : null;
            double timeout = p.GetValue(requestTimeout);
            if (!double.IsFinite(timeout) || timeout <= 0 || timeout > 86400)
                throw new R1SharpException($"--request-timeout must be a number of seconds between 0 and 86400, got {timeout}");
            var options = new ServeOptions
            {
                Host = p.GetValue(host)!, Port = p.GetValue(port), MaxBatch = p.GetValue(maxBatch), MaxQueue = p.GetValue(maxQueue),
                MaxContext = p.GetValue(maxContext), ApiKey = key, ModelName = p.GetValue(name),
                MaxRequestBytes = p.GetValue(maxRequestBytes), RequestTimeout = TimeSpan.FromSeconds(timeout),
                Adapter = p.GetValue(adapter), Loras = (p.GetValue(loras) ?? []).Select(ParseLora).ToList(),
            };
            options.Validate(); // before the model loads
            if (options.Host != "localhost" && !System.Net.IPAddress.TryParse(options.Host, out _))
                throw new R1SharpException($"--host {Excerpt.Quote(options.Host)} is not an IP address");
            var server = OpenAiServer.FromFolder(p.GetValue(model)!, options, p.GetValue(device), p.GetValue(dtype));
            try
            {
                var uri = server.StartAsync().GetAwaiter().GetResult();
                Console.Error.WriteLine($"serving {server.Model.Name} at {uri} (max batch {options.MaxBatch}, context {server.Batcher.Capacity}); Ctrl-C stops");
                server.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            catch (IOException e) { throw new R1SharpException($"cannot listen on {options.Host}:{options.Port}: {e.Message}"); }
            finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            return 0;
        }));
        return cmd;
    }

    static (string Name, string Dir) ParseLora(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0 || eq == spec.Length - 1) throw new R1SharpException($"--lora {Excerpt.Quote(spec)}: expected NAME=DIR");
        return (spec[..eq], spec[(eq + 1)..]);
    }
}
