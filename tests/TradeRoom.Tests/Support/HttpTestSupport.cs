using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace TradeRoom.Tests.Support;

/// <summary>An HTTP answer, read whole: status, headers and the body parsed as JSON (when it is JSON).</summary>
public sealed record ApiResponse(HttpStatusCode Status, HttpResponseHeaders Headers, string? MediaType, string Text)
{
    public JsonElement Json => JsonDocument.Parse(Text).RootElement.Clone();

    /// <summary><c>error.code</c> of an error body.</summary>
    public string ErrorCode => Json.GetProperty("error").GetProperty("code").GetString()!;

    public string ErrorMessage => Json.GetProperty("error").GetProperty("message").GetString()!;

    public static async Task<ApiResponse> ReadAsync(Task<HttpResponseMessage> sending)
    {
        using var response = await sending;
        var text = await response.Content.ReadAsStringAsync();
        return new ApiResponse(response.StatusCode, response.Headers, response.Content.Headers.ContentType?.MediaType, text);
    }

    public override string ToString() => $"{(int)Status} {Text}";
}

/// <summary>A body sent with <c>Transfer-Encoding: chunked</c> (no Content-Length), in several chunks.</summary>
public sealed class ChunkedContent : HttpContent
{
    private readonly byte[] _bytes;
    private readonly int _chunk;

    public ChunkedContent(byte[] bytes, int chunk = 512)
    {
        _bytes = bytes;
        _chunk = chunk;
        Headers.ContentType = new MediaTypeHeaderValue("application/json");
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        for (var offset = 0; offset < _bytes.Length; offset += _chunk)
        {
            await stream.WriteAsync(_bytes.AsMemory(offset, Math.Min(_chunk, _bytes.Length - offset)));
            await stream.FlushAsync();
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}

public static class HttpTestExtensions
{
    /// <summary>POSTs raw bytes with a Content-Length, or chunked when <paramref name="chunked"/>; with a service token.</summary>
    public static Task<HttpResponseMessage> PostBytesAsync(this TestServer server, string path, byte[] body, bool chunked, int chunkSize = 512)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = chunked ? new ChunkedContent(body, chunkSize) : new ByteArrayContent(body),
        };
        if (chunked)
            request.Headers.TransferEncodingChunked = true;
        else
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", server.ServiceToken());
        return server.Http.SendAsync(request);
    }

    public static Task<ApiResponse> PostJsonAsync(this TestServer server, string path, string body, string? token = null) =>
        ApiResponse.ReadAsync(server.PostAsync(path, body, token));

    public static Task<ApiResponse> GetJsonAsync(this TestServer server, string path) =>
        ApiResponse.ReadAsync(server.Http.GetAsync(path));

    /// <summary>A JSON body of exactly <paramref name="size"/> bytes: a valid single event whose data pads it out (with a <c>data.userId</c>, as a private type needs).</summary>
    public static byte[] EventOfSize(int size, string type = "order_executed", string userId = "u1")
    {
        var prefix = $"{{\"type\":\"{type}\",\"data\":{{\"userId\":\"{userId}\",\"pad\":\"";
        const string suffix = "\"}}";
        var pad = size - prefix.Length - suffix.Length;
        if (pad < 0)
            throw new ArgumentOutOfRangeException(nameof(size));
        var bytes = Encoding.UTF8.GetBytes(prefix + new string('x', pad) + suffix);
        if (bytes.Length != size)
            throw new InvalidOperationException("padding miscounted");
        return bytes;
    }

    /// <summary>A batch body of exactly <paramref name="size"/> bytes: one valid event (a private one, with its <c>data.userId</c>) to <paramref name="bullPenId"/>.</summary>
    public static byte[] BatchOfSize(int size, string bullPenId, string userId = "u1")
    {
        var prefix = $"[{{\"bullPenId\":\"{bullPenId}\",\"type\":\"order_executed\",\"data\":{{\"userId\":\"{userId}\",\"pad\":\"";
        const string suffix = "\"}}]";
        var bytes = Encoding.UTF8.GetBytes(prefix + new string('x', size - prefix.Length - suffix.Length) + suffix);
        if (bytes.Length != size)
            throw new InvalidOperationException("padding miscounted");
        return bytes;
    }
}

/// <summary>Polling with a deadline, for state that settles asynchronously (never a fixed sleep).</summary>
public static class Eventually
{
    public static async Task<T> MatchAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var watch = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(10);
        while (true)
        {
            var value = await probe();
            if (done(value))
                return value;
            if (watch.Elapsed > limit)
                throw new TimeoutException($"{what}: not reached within {limit.TotalSeconds:0.#} s; last value {value}");
            await Task.Delay(25);
        }
    }
}

/// <summary>One server shared by the tests of a class that each use their own rooms.</summary>
public class SharedServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    /// <summary>Extra HOCON for the shared server.</summary>
    protected virtual string? Hocon => null;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(Hocon);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Tests that set process-wide environment variables, or run the server as a child process: one at a time, never beside others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection
{
    public const string Name = "Process environment";
}

/// <summary>Sets environment variables for the scope of a test (null removes one) and puts back the old values.</summary>
public sealed class EnvironmentScope : IDisposable
{
    private readonly Dictionary<string, string?> _saved = new();

    public EnvironmentScope(params (string Name, string? Value)[] variables)
    {
        foreach (var (name, value) in variables)
        {
            if (!_saved.ContainsKey(name))
                _saved[name] = Environment.GetEnvironmentVariable(name);
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    public void Dispose()
    {
        foreach (var (name, value) in _saved)
            Environment.SetEnvironmentVariable(name, value);
    }
}

/// <summary>The real server binary (<c>dotnet TradeRoom.Server.dll</c>) as a child process, its output collected line by line.</summary>
public sealed class ServerProcess : IDisposable
{
    /// <summary>Variables the server reads; removed from the inherited environment so only what a test sets applies.</summary>
    private static readonly string[] ServerVariables =
    [
        "WS_PORT", "API_PORT", "BIND_ADDRESS", "JWT_SECRET", "TRADEROOM_CONFIG", "TRADEROOM_DEMO",
        "ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT", "ASPNETCORE_URLS", "ASPNETCORE_HTTP_PORTS", "ASPNETCORE_HTTPS_PORTS",
        "TRADEROOM_PERSISTENCE", "TRADEROOM_DB_FILE", "TRADEROOM_DB",
        "TRADEROOM_CLUSTER", "CLUSTER_HOSTNAME", "CLUSTER_PORT", "CLUSTER_SEEDS",
    ];

    private readonly BlockingCollection<string> _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly StringBuilder _allStdout = new();

    private string? _scratch;

    private ServerProcess(Process process) => Process = process;

    public Process Process { get; }

    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    public string Stdout { get { lock (_allStdout) return _allStdout.ToString(); } }

    public static string ServerDll => Path.Combine(AppContext.BaseDirectory, "TradeRoom.Server.dll");

    public static ServerProcess Start(IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(ServerDll);
        foreach (var name in ServerVariables)
            info.Environment.Remove(name);
        foreach (var (name, value) in environment)
            info.Environment[name] = value;
        // Each server its own SQLite file (the default provider), unless the test names one (e.g. to restart on it).
        var scratch = environment.ContainsKey("TRADEROOM_DB_FILE") ? null : TestDatabase.NewSqliteFolder();
        if (scratch is not null)
            info.Environment["TRADEROOM_DB_FILE"] = Path.Combine(scratch, "traderoom.db");

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var server = new ServerProcess(process) { _scratch = scratch };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                server._stdout.CompleteAdding();
                return;
            }
            lock (server._allStdout)
                server._allStdout.AppendLine(e.Data);
            server._stdout.Add(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (server._stderr)
                    server._stderr.AppendLine(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>The first stdout line that <paramref name="match"/> accepts, reading at most until <paramref name="timeout"/>.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        return await Task.Run(() =>
        {
            try
            {
                foreach (var line in _stdout.GetConsumingEnumerable(deadline.Token))
                {
                    if (match(line))
                        return line;
                }
            }
            catch (OperationCanceledException)
            {
            }
            throw new TimeoutException($"no matching line on stdout within {timeout.TotalSeconds:0.#} s (exited: {Process.HasExited}).\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        });
    }

    /// <summary>Sends SIGTERM, as an orchestrator stopping the container would.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
            throw new InvalidOperationException($"kill -TERM {Process.Id} exited with {kill.ExitCode}");
    }

    /// <summary>True if the process exited within <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await Process.WaitForExitAsync(deadline.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited)
                Process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        // _stdout is left to the GC: the output callbacks may still fire while the process is torn down.
        Process.Dispose();
        TestDatabase.Delete(_scratch);
    }
}
