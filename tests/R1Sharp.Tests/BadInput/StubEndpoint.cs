using System.Net;
using System.Net.Sockets;
using System.Text;

namespace R1Sharp.Tests.BadInput;

/// <summary>
/// A loopback HTTP endpoint that misbehaves on purpose: every request gets the same status and body (garbage, a 500,
/// a wrong JSON shape), or is accepted and never answered. Answers at once, so a test of a hostile endpoint costs
/// milliseconds. Also <see cref="ClosedPort"/>: a loopback URL where nothing listens (connection refused).
/// </summary>
public sealed class StubEndpoint : IDisposable
{
    readonly TcpListener listener;
    readonly CancellationTokenSource stop = new();
    readonly List<TcpClient> held = [];
    int requests;

    public string Url { get; }
    public string Root { get; }
    public int Requests => requests;

    StubEndpoint(Func<string, (int Status, string Body)> reply, bool hang)
    {
        listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        Root = $"http://127.0.0.1:{port}";
        Url = Root + "/v1";
        _ = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await listener.AcceptTcpClientAsync(stop.Token); } catch { return; }
                Interlocked.Increment(ref requests);
                if (hang) { lock (held) held.Add(client); continue; } // accepted, never answered
                _ = Task.Run(async () =>
                {
                    using var c = client;
                    try
                    {
                        var stream = c.GetStream();
                        var (status, body) = reply(await ReadRequest(stream));
                        var payload = Encoding.UTF8.GetBytes(body);
                        string head = $"HTTP/1.1 {status} {(status == 200 ? "OK" : "Stub")}\r\nContent-Type: application/json\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n";
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
                        await stream.WriteAsync(payload);
                    }
                    catch (IOException) { }
                });
            }
        });
    }

    /// <summary>Reads the head and the Content-Length body, so the client is not cut off mid-send; returns the path.</summary>
    static async Task<string> ReadRequest(NetworkStream stream)
    {
        string path = "";
        var buffer = new List<byte>();
        var chunk = new byte[8192];
        int headEnd = -1, length = 0;
        while (true)
        {
            int n = await stream.ReadAsync(chunk).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            if (n == 0) return path;
            buffer.AddRange(chunk.AsSpan(0, n));
            if (headEnd < 0)
            {
                string text = Encoding.ASCII.GetString(buffer.ToArray());
                headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (headEnd < 0) continue;
                path = text.Split(' ') is { Length: > 1 } parts ? parts[1] : "";
                foreach (var line in text[..headEnd].Split("\r\n"))
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(line[15..].Trim());
            }
            if (buffer.Count >= headEnd + 4 + length) return path;
        }
    }

    public static StubEndpoint Answering(int status, string body) => new(_ => (status, body), hang: false);
    /// <summary>Answers by request path (e.g. "/v1/models"); unknown paths get 404.</summary>
    public static StubEndpoint Routes(Dictionary<string, (int, string)> routes) =>
        new(path => routes.TryGetValue(path, out var r) ? r : (404, "{\"error\":{\"message\":\"no route\"}}"), hang: false);
    public static StubEndpoint Silent() => new(_ => (0, ""), hang: true);

    /// <summary>A loopback URL on a port that was free a moment ago: nothing listens there.</summary>
    public static string ClosedPort()
    {
        // The port stays bound (never listening) for the life of the test process: a port merely probed and released
        // can be taken by another test's server, or picked as the local port of a connection to itself, and then the
        // "refused" endpoint answers (a CI run once saw exactly that). A bound socket without listen() refuses.
        // SO_REUSEADDR off: with it (as .NET may set on Unix), Linux lets another reusing socket bind the same port
        // while nobody listens on it, and a stub server of a concurrent test class once did just that.
        var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, false);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        lock (ClosedPorts) ClosedPorts.Add(holder);
        return $"http://127.0.0.1:{((IPEndPoint)holder.LocalEndPoint!).Port}/v1";
    }

    static readonly List<Socket> ClosedPorts = [];

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        lock (held) foreach (var c in held) c.Dispose();
    }
}
