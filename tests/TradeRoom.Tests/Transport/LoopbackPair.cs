using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using TradeRoom.Server;
using TradeRoom.Transport;

namespace TradeRoom.Tests.Transport;

/// <summary>
/// A real TCP connection over loopback: the server's end runs the transport's pieces as the connection handler builds
/// them (a non-blocking socket written directly by a <see cref="FrameWriter"/>, or, as under TLS, through a pipe);
/// the client's end is a plain socket that the test reads when it chooses, with a minimal RFC 6455 frame parser.
/// </summary>
internal sealed class LoopbackPair : IDisposable
{
    private readonly NetworkStream _serverStream;
    private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebSocket? _webSocket;

    private LoopbackPair(Socket server, Socket client, bool direct, int writeBufferSize)
    {
        Server = server;
        Client = client;
        // NetworkStream insists on a blocking socket when made; the handler's socket is non-blocking from then on.
        _serverStream = new NetworkStream(server, ownsSocket: false);
        server.Blocking = false;
        Writer = new FrameWriter(PipeWriter.Create(_serverStream), direct ? server : null, writeBufferSize);
        Stream = new DuplexPipeStream(PipeReader.Create(_serverStream), Writer);
    }

    public Socket Server { get; }
    public Socket Client { get; }
    public FrameWriter Writer { get; }
    public DuplexPipeStream Stream { get; }

    /// <summary>Completes when the socket's abort callback (Kestrel's connection abort in the server) has run.</summary>
    public Task Aborted => _aborted.Task;

    /// <param name="direct">Write to the socket itself (plaintext); false: through the stream's pipe, as under TLS.</param>
    /// <param name="smallBuffers">Small kernel buffers both ways (set before connecting), so a client that stops reading fills them soon.</param>
    public static async Task<LoopbackPair> ConnectAsync(bool direct = true, bool smallBuffers = false, int writeBufferSize = 64 * 1024)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 10_000 };
        if (smallBuffers)
            client.ReceiveBufferSize = 4096;
        await client.ConnectAsync(listener.LocalEndPoint!);
        var server = await listener.AcceptAsync();
        server.NoDelay = true;
        if (smallBuffers)
            server.SendBufferSize = 4096;
        return new LoopbackPair(server, client, direct, writeBufferSize);
    }

    /// <summary>A <see cref="ClientSocket"/> over this connection, as the connection handler makes it.</summary>
    public ClientSocket Socket(TransportOptions options, ITransportMetrics metrics)
    {
        _webSocket = WebSocket.CreateFromStream(Stream, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        return new ClientSocket(_webSocket, Stream, options, metrics, () =>
        {
            Server.Close(0); // as Kestrel's abort does: a reset
            _aborted.TrySetResult();
        });
    }

    /// <summary>The transport's options from the server's HOCON, with <paramref name="hocon"/> over it.</summary>
    public static TransportOptions Options(string hocon = "")
    {
        return ServerConfig.Transport(ServerConfig.Load(hocon));
    }

    /// <summary>Reads one whole frame from the client's end (server frames are never masked).</summary>
    public (int Opcode, byte[] Payload) ReadFrame()
    {
        var head = ReadExactly(2);
        var opcode = head[0] & 0x0F;
        Assert.True((head[0] & 0x80) != 0, "every frame the server sends is final");
        Assert.True((head[1] & 0x80) == 0, "a server never masks");
        long length = head[1] & 0x7F;
        if (length == 126)
            length = BinaryPrimitives.ReadUInt16BigEndian(ReadExactly(2));
        else if (length == 127)
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(ReadExactly(8));
        return (opcode, ReadExactly(checked((int)length)));
    }

    /// <summary>Reads text frames until the close frame: the texts' payloads in order, and the close code.</summary>
    public (List<byte[]> Texts, int CloseCode) ReadToClose()
    {
        var texts = new List<byte[]>();
        while (true)
        {
            var (opcode, payload) = ReadFrame();
            if (opcode == 0x8)
                return (texts, BinaryPrimitives.ReadUInt16BigEndian(payload));
            Assert.Equal(0x1, opcode);
            texts.Add(payload);
        }
    }

    private byte[] ReadExactly(int count)
    {
        var bytes = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = Client.Receive(bytes, read, count - read, SocketFlags.None);
            if (n == 0)
                throw new EndOfStreamException($"the connection ended after {read} of {count} bytes");
            read += n;
        }
        return bytes;
    }

    public void Dispose()
    {
        _webSocket?.Abort();
        Client.Dispose();
        Server.Dispose();
        _serverStream.Dispose();
    }
}

/// <summary>What the transport reports per flush, recorded in order.</summary>
internal sealed class RecordingMetrics : ITransportMetrics
{
    private readonly ConcurrentQueue<(int EventFrames, long Bytes)> _flushes = new();

    public IReadOnlyList<(int EventFrames, long Bytes)> Flushes => _flushes.ToArray();

    public void Written(int eventFrames, long bytes) => _flushes.Enqueue((eventFrames, bytes));

    public void Delivered(long publishedAt, long writtenAt)
    {
    }
}
