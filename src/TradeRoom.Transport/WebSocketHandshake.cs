using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace TradeRoom.Transport;

/// <summary>What the server needs from a client's upgrade request.</summary>
internal sealed record UpgradeRequest(string? Token);

/// <summary>
/// The RFC 6455 opening handshake on the WebSocket port, done by the server itself so that no HTTP request objects
/// stay alive for the life of the socket (see ../shared/KESTREL-MEMORY.md). The parsing is strict and bounded: one
/// request head of at most <c>max-handshake-size</c> bytes within <c>handshake-timeout</c>.
/// </summary>
internal static class WebSocketHandshake
{
    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>
    /// Reads the request head and answers it: 101 (written to <paramref name="upgraded"/>, the stream the WebSocket
    /// will use) and the request, or an HTTP error and null.
    /// </summary>
    public static async Task<UpgradeRequest?> AcceptAsync(IDuplexPipe transport, Stream upgraded, int maxHeadSize, IReadOnlyList<string> allowedOrigins, CancellationToken cancellationToken)
    {
        var head = await ReadHeadAsync(transport.Input, maxHeadSize, cancellationToken);
        if (head is null)
        {
            await RespondErrorAsync(transport.Output, 431, "Request Header Fields Too Large", "handshake_too_large",
                $"the upgrade request head is over {maxHeadSize} bytes", null, cancellationToken);
            return null;
        }
        if (head.Length == 0)
            return null; // the client left before finishing its request

        var (status, error, extraHeader, key, request) = Validate(head, allowedOrigins);
        if (status != 101)
        {
            await RespondErrorAsync(transport.Output, status, ReasonPhrase(status), error!.Value.Code, error.Value.Message, extraHeader, cancellationToken);
            return null;
        }

        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));
        await upgraded.WriteAsync(Encoding.ASCII.GetBytes(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Accept: {accept}\r\n\r\n"), cancellationToken);
        return request;
    }

    /// <summary>The head's bytes (without the blank line); empty when the client left; null when over the size limit.</summary>
    private static async Task<string?> ReadHeadAsync(PipeReader input, int maxHeadSize, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            var reader = new SequenceReader<byte>(buffer);
            if (reader.TryReadTo(out ReadOnlySequence<byte> head, HeadEnd, advancePastDelimiter: true))
            {
                if (head.Length > maxHeadSize)
                {
                    input.AdvanceTo(reader.Position);
                    return null;
                }
                var text = Encoding.Latin1.GetString(head);
                input.AdvanceTo(reader.Position);
                return text;
            }
            if (buffer.Length > maxHeadSize)
            {
                input.AdvanceTo(buffer.End);
                return null;
            }
            if (result.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                return "";
            }
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static (int Status, (string Code, string Message)? Error, string? ExtraHeader, string Key, UpgradeRequest? Request) Validate(
        string head, IReadOnlyList<string> allowedOrigins)
    {
        var lines = head.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || !requestLine[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || requestLine[2] == "HTTP/1.0")
            return (400, ("bad_request", "malformed request line; expected GET /ws HTTP/1.1"), null, "", null);
        if (requestLine[0] != "GET")
            return (405, ("method_not_allowed", "the WebSocket endpoint takes GET upgrade requests only"), "Allow: GET", "", null);

        var target = requestLine[1];
        var queryStart = target.IndexOf('?');
        var path = queryStart < 0 ? target : target[..queryStart];
        if (path is not ("/" or "/ws"))
            return (404, ("not_found", $"no WebSocket endpoint at {path}; connect to / or /ws"), null, "", null);

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 1; i < lines.Length; i++)
        {
            var colon = lines[i].IndexOf(':');
            if (colon <= 0)
                return (400, ("bad_request", "malformed header line"), null, "", null);
            var name = lines[i][..colon].Trim();
            var value = lines[i][(colon + 1)..].Trim();
            headers[name] = headers.TryGetValue(name, out var existing) ? existing + ", " + value : value;
        }

        if (!HasToken(headers, "Upgrade", "websocket") || !HasToken(headers, "Connection", "upgrade"))
            return (426, ("upgrade_required", "this port speaks WebSocket only: send an upgrade request (Upgrade: websocket)"),
                "Upgrade: websocket", "", null);
        if (!headers.TryGetValue("Sec-WebSocket-Version", out var version) || version != "13")
            return (426, ("unsupported_version", "Sec-WebSocket-Version must be 13"), "Sec-WebSocket-Version: 13", "", null);
        if (!headers.TryGetValue("Sec-WebSocket-Key", out var key) || !IsValidKey(key))
            return (400, ("bad_request", "Sec-WebSocket-Key must be 16 bytes, base64-encoded"), null, "", null);
        if (headers.TryGetValue("Origin", out var origin) && !allowedOrigins.Contains("*") && !allowedOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase))
            return (403, ("origin_not_allowed", $"origin {origin} is not allowed"), null, "", null);

        return (101, null, null, key, new UpgradeRequest(QueryValue(queryStart < 0 ? "" : target[(queryStart + 1)..], "token")));
    }

    private static bool HasToken(Dictionary<string, string> headers, string name, string token) =>
        headers.TryGetValue(name, out var value)
        && value.Split(',').Any(part => part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase));

    private static bool IsValidKey(string key)
    {
        Span<byte> decoded = stackalloc byte[24];
        return Convert.TryFromBase64String(key, decoded, out var written) && written == 16;
    }

    private static string? QueryValue(string query, string name)
    {
        foreach (var pair in query.Split('&'))
        {
            var eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            if (key == name)
                return eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
        }
        return null;
    }

    private static async Task RespondErrorAsync(PipeWriter output, int status, string reason, string code, string message, string? extraHeader, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new { error = new { code, message } });
        var head = $"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n" +
                   (extraHeader is null ? "" : extraHeader + "\r\n") + "\r\n";
        await output.WriteAsync(Encoding.ASCII.GetBytes(head), cancellationToken);
        await output.WriteAsync(body, cancellationToken);
    }

    private static string ReasonPhrase(int status) => status switch
    {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
}
