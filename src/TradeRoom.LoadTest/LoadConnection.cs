using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace TradeRoom.LoadTest;

/// <summary>
/// One test client over a plain socket with its own minimal WebSocket framing: cheaper than ClientWebSocket, so
/// that the load tester measures the server and not itself. It authenticates with <c>?token=</c>, subscribes to
/// one room and then reads frames, keeping per-connection counts (received, duplicated or out of order by seq)
/// and recording publish-to-receive latency from the <c>t</c> timestamp the publisher puts in each event.
/// </summary>
internal sealed class LoadConnection(int index, string room, LoadMetrics metrics)
{
    private const int BufferSize = 16 * 1024;
    private Socket? _socket;
    private SslStream? _tls;  // wss:// only: every read and write then goes through it
    // Opened with synchronous calls only, to be read by EpollReceivers (whose Close or ReadOnce ends Done).
    private bool _synchronous;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _buffer = new byte[BufferSize];
    private int _start;
    private int _end;

    public int Index { get; } = index;
    public string Room { get; } = room;
    public long SubscribedSeq { get; private set; }
    public long LastSeq { get; private set; }
    public long Received;
    /// <summary>Events whose seq was not above the last one seen: duplicated or out of order.</summary>
    public long Backwards;
    /// <summary>Times the seq jumped by more than one: events missing (or arriving out of order).</summary>
    public long Gaps;
    public int? CloseCode { get; private set; }
    public string? Failure { get; private set; }

    /// <summary>
    /// Connects (over TLS for wss://, checking the certificate with <paramref name="validate"/> or the system's trust), authenticates and subscribes; throws <see cref="LoadTestException"/> with the reason on failure.
    /// With <paramref name="forEpoll"/> (plaintext only) every call is synchronous, so run it on a thread of its own,
    /// and the socket is left non-blocking for <see cref="EpollReceivers"/>.
    /// </summary>
    public async Task OpenAsync(Uri ws, IPAddress source, string token, RemoteCertificateValidationCallback? validate, bool forEpoll,
        CancellationToken cancellationToken)
    {
        var remote = new IPEndPoint((await Dns.GetHostAddressesAsync(ws.Host, cancellationToken))
            .First(a => a.AddressFamily == AddressFamily.InterNetwork), ws.Port);
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Bind(new IPEndPoint(source, 0));
        _synchronous = forEpoll && ws.Scheme != "wss";
        if (_synchronous)
            _socket.SendTimeout = _socket.ReceiveTimeout = (int)OpenTimeout.TotalMilliseconds;
        try
        {
            if (_synchronous)
                _socket.Connect(remote);
            else
                await _socket.ConnectAsync(remote, cancellationToken);
        }
        catch (SocketException e)
        {
            throw new LoadTestException($"cannot connect to {ws}: {e.SocketErrorCode}");
        }
        if (ws.Scheme == "wss")
        {
            _tls = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
            try
            {
                await _tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = ws.Host,
                    RemoteCertificateValidationCallback = validate,
                }, cancellationToken);
            }
            catch (System.Security.Authentication.AuthenticationException e)
            {
                throw new LoadTestException($"TLS handshake with {ws} failed: {e.Message} (trust the server's certificate with --ca-cert, or --insecure)");
            }
        }

        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET {ws.AbsolutePath}?token={Uri.EscapeDataString(token)} HTTP/1.1\r\nHost: {ws.Authority}\r\n" +
                      $"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await SendAsync(Encoding.ASCII.GetBytes(request), cancellationToken);

        var head = await ReadHeadAsync(cancellationToken);
        if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            throw new LoadTestException($"upgrade refused: {head.Split("\r\n")[0]}");

        var first = await ReadTextFrameAsync(cancellationToken);
        if (!first.Contains("\"auth_success\"", StringComparison.Ordinal))
            throw new LoadTestException($"auth refused: {first}");

        await SendTextAsync(JsonSerializer.Serialize(new { type = "subscribe_room", data = new { bullPenId = Room } }), cancellationToken);
        while (true)
        {
            var reply = await ReadTextFrameAsync(cancellationToken);
            using var doc = JsonDocument.Parse(reply);
            var type = doc.RootElement.GetProperty("type").GetString();
            if (type == "subscribed")
            {
                SubscribedSeq = LastSeq = doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
                if (_synchronous)
                    _socket.Blocking = false;
                return;
            }
            if (type is "error" or "auth_error")
                throw new LoadTestException($"subscribe refused: {reply}");
        }
    }

    /// <summary>How long a synchronous open waits for the server at each step.</summary>
    private static readonly TimeSpan OpenTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Opened for <see cref="EpollReceivers"/> (plaintext, <c>forEpoll</c>): read it there, not with <see cref="ReceiveLoopAsync"/>.</summary>
    public bool ForEpoll => _synchronous;

    /// <summary>The socket's file descriptor (for <see cref="EpollReceivers"/>).</summary>
    public int Fd => (int)_socket!.Handle;

    /// <summary>Done when the connection is over: closed by the server, failed, or closed here.</summary>
    public Task Done => _done.Task;

    /// <summary>Reads frames until the socket closes or <paramref name="cancellationToken"/> fires.</summary>
    public async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                if (!TryParseFrame(out var opcode, out var payloadStart, out var payloadLength))
                {
                    await FillAsync(cancellationToken);
                    continue;
                }
                _start = payloadStart + payloadLength;
                if (!OnFrame(opcode, _buffer.AsSpan(payloadStart, payloadLength), out var ping))
                    return;
                if (ping is not null)
                    await SendFrameAsync(0xA, ping, cancellationToken);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            if (!cancellationToken.IsCancellationRequested)
                Failure ??= e.Message;
        }
        catch (LoadTestException e)
        {
            Failure ??= e.Message;
        }
    }

    /// <summary>
    /// One read of what the socket holds (non-blocking, opened for <see cref="EpollReceivers"/>), and every whole frame
    /// in it handled. False when the connection is over (<see cref="Done"/>): then it must not be read again.
    /// </summary>
    public bool ReadOnce()
    {
        Compact();
        int read;
        SocketError error;
        try
        {
            read = _socket!.Receive(_buffer.AsSpan(_end), SocketFlags.None, out error);
        }
        catch (ObjectDisposedException e)
        {
            return Finish(e.Message);
        }
        if (error == SocketError.WouldBlock)
            return true;
        if (error != SocketError.Success)
            return Finish($"receive failed: {error}");
        if (read == 0)
            return Finish("the server closed the connection without a close frame");
        _end += read;
        return HandleBufferedFrames();
    }

    /// <summary>
    /// Handles every whole frame read so far (at first, those that came with <c>subscribed</c>); false when the
    /// connection is over. For a connection opened for <see cref="EpollReceivers"/>.
    /// </summary>
    public bool HandleBufferedFrames()
    {
        try
        {
            while (TryParseFrame(out var opcode, out var payloadStart, out var payloadLength))
            {
                _start = payloadStart + payloadLength;
                if (!OnFrame(opcode, _buffer.AsSpan(payloadStart, payloadLength), out var ping))
                    return Finish(null);
                if (ping is not null)
                    SendFrameAsync(0xA, ping, CancellationToken.None).GetAwaiter().GetResult(); // synchronous on this socket
            }
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or LoadTestException)
        {
            return Finish(e.Message);
        }
    }

    /// <summary>Ends the connection's reading, with <paramref name="failure"/> if it failed; always false (for <see cref="ReadOnce"/>).</summary>
    public bool Finish(string? failure)
    {
        if (failure is not null)
            Failure ??= failure;
        _done.TrySetResult();
        return false;
    }

    /// <summary>Handles one frame; false for the server's close. A ping's payload comes back in <paramref name="ping"/>, to answer.</summary>
    private bool OnFrame(int opcode, ReadOnlySpan<byte> payload, out byte[]? ping)
    {
        ping = null;
        switch (opcode)
        {
            case 0x1:
                OnText(payload);
                return true;
            case 0x8:
                CloseCode = payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(payload) : 1005;
                return false;
            case 0x9:
                ping = payload.ToArray();
                return true;
            default:
                return true;
        }
    }

    public void Close()
    {
        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        _tls?.Dispose();
        _socket?.Dispose();
        _done.TrySetResult();
    }

    private void OnText(ReadOnlySpan<byte> payload)
    {
        long seq = -1, sentAt = 0;
        var reader = new Utf8JsonReader(payload);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("seq"u8))
            {
                reader.Read();
                seq = reader.GetInt64();
            }
            else if (reader.ValueTextEquals("data"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject && reader.Read() && reader.TokenType == JsonTokenType.PropertyName
                    && reader.ValueTextEquals("t"u8) && reader.Read())
                    sentAt = reader.GetInt64();
                break;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        if (seq < 0)
            return; // not an event (a pong, an error…)

        if (seq <= LastSeq)
        {
            Interlocked.Increment(ref Backwards);
            return;
        }
        if (seq != LastSeq + 1)
            Interlocked.Increment(ref Gaps);
        LastSeq = seq;
        Interlocked.Increment(ref Received);
        metrics.Record(sentAt == 0 ? -1 : Stopwatch.GetTimestamp() - sentAt);
    }

    private bool TryParseFrame(out int opcode, out int payloadStart, out int payloadLength)
    {
        opcode = payloadStart = payloadLength = 0;
        var available = _end - _start;
        if (available < 2)
            return false;
        var b0 = _buffer[_start];
        var b1 = _buffer[_start + 1];
        opcode = b0 & 0x0F;
        long length = b1 & 0x7F;
        var header = 2;
        if (length == 126)
        {
            if (available < 4)
                return false;
            length = BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 2));
            header = 4;
        }
        else if (length == 127)
        {
            if (available < 10)
                return false;
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2));
            header = 10;
        }
        if ((b0 & 0x80) == 0)
            throw new LoadTestException("fragmented frames are not expected from the server");
        if (header + length > _buffer.Length)
        {
            // A frame larger than the buffer (e.g. a big snapshot): grow for it.
            var larger = new byte[header + length];
            Array.Copy(_buffer, _start, larger, 0, available);
            (_buffer, _start, _end) = (larger, 0, available);
        }
        if (available < header + length)
            return false;
        payloadStart = _start + header;
        payloadLength = (int)length;
        return true;
    }

    /// <summary>Moves the bytes not yet parsed to the buffer's start.</summary>
    private void Compact()
    {
        if (_start > 0)
        {
            Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
            (_end, _start) = (_end - _start, 0);
        }
    }

    private async Task FillAsync(CancellationToken cancellationToken)
    {
        Compact();
        var read = _tls is not null ? await _tls.ReadAsync(_buffer.AsMemory(_end), cancellationToken)
            : _synchronous ? _socket!.Receive(_buffer.AsSpan(_end))
            : await _socket!.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
        if (read == 0)
            throw new LoadTestException("the server closed the connection without a close frame");
        _end += read;
    }

    private async Task<string> ReadHeadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var text = Encoding.ASCII.GetString(_buffer, 0, _end);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                _start = end + 4;
                return text[..end];
            }
            if (_end == _buffer.Length)
                throw new LoadTestException("upgrade answer too large");
            await FillAsync(cancellationToken);
        }
    }

    private async Task<string> ReadTextFrameAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (!TryParseFrame(out var opcode, out var start, out var length))
            {
                await FillAsync(cancellationToken);
                continue;
            }
            _start = start + length;
            if (opcode == 0x8)
            {
                var code = length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(start)) : 1005;
                throw new LoadTestException($"the server closed the connection with {code} {Encoding.UTF8.GetString(_buffer, start + 2, Math.Max(0, length - 2))}");
            }
            if (opcode == 0x1)
                return Encoding.UTF8.GetString(_buffer, start, length);
        }
    }

    private Task SendTextAsync(string text, CancellationToken cancellationToken) => SendFrameAsync(0x1, Encoding.UTF8.GetBytes(text), cancellationToken);

    /// <summary>A client frame: final, masked (RFC 6455 requires clients to mask).</summary>
    private async Task SendFrameAsync(int opcode, byte[] payload, CancellationToken cancellationToken)
    {
        var header = payload.Length < 126 ? 2 : 4;
        var frame = new byte[header + 4 + payload.Length];
        frame[0] = (byte)(0x80 | opcode);
        if (header == 2)
            frame[1] = (byte)(0x80 | payload.Length);
        else
        {
            frame[1] = 0x80 | 126;
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        var mask = frame.AsSpan(header, 4);
        RandomNumberGenerator.Fill(mask);
        for (var i = 0; i < payload.Length; i++)
            frame[header + 4 + i] = (byte)(payload[i] ^ mask[i % 4]);
        await SendAsync(frame, cancellationToken);
    }

    private async Task SendAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        if (_tls is not null)
            await _tls.WriteAsync(bytes, cancellationToken);
        else if (_synchronous)
        {
            if (_socket!.Send(bytes) != bytes.Length)
                throw new LoadTestException("the socket took only part of a frame");
        }
        else
            await _socket!.SendAsync(bytes, SocketFlags.None, cancellationToken);
    }
}

/// <summary>A failure the user should read as it is.</summary>
public sealed class LoadTestException(string message) : Exception(message);
