using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace TradeRoom.LoadTest;

/// <summary>
/// A deliberately trivial server for checking the load tester itself: it accepts WebSocket upgrades, answers
/// auth and subscribe like TradeRoom, then sends each connection a fixed number of small event frames as fast as
/// the socket takes them, many frames per write. Whatever the load tester then receives per second of its own
/// CPU is its ceiling as a measuring instrument.
/// </summary>
internal static class TrivialServer
{
    public static async Task RunAsync(int port, int frames, CancellationToken cancellationToken)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start(4096);
        Console.WriteLine($"trivial server on ws://127.0.0.1:{port}/ws, {frames} frames per connection");
        while (!cancellationToken.IsCancellationRequested)
        {
            var socket = await listener.AcceptSocketAsync(cancellationToken);
            _ = ServeAsync(socket, frames);
        }
    }

    private static async Task ServeAsync(Socket socket, int frames)
    {
        try
        {
            socket.NoDelay = true;
            var buffer = new byte[8192];
            var head = await ReadHeadAsync(socket, buffer);
            var key = head.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))[18..].Trim();
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            await socket.SendAsync(Encoding.ASCII.GetBytes(
                $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"));
            await socket.SendAsync(Frame("""{"type":"auth_success","data":{"userId":"trivial"}}"""));
            await socket.ReceiveAsync(buffer); // the subscribe
            await socket.SendAsync(Frame("""{"type":"subscribed","data":{"bullPenId":"trivial","seq":0}}"""));

            const int perWrite = 64;
            var batch = new List<byte>(perWrite * 160);
            for (var seq = 1; seq <= frames; seq++)
            {
                batch.AddRange(Frame($$$"""{"type":"ranking_changed","bullPenId":"trivial","seq":{{{seq}}},"data":{"t":{{{Stopwatch.GetTimestamp()}}},"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"""));
                if (seq % perWrite == 0 || seq == frames)
                {
                    await socket.SendAsync(batch.ToArray());
                    batch.Clear();
                }
            }
            while (await socket.ReceiveAsync(buffer) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    private static async Task<string> ReadHeadAsync(Socket socket, byte[] buffer)
    {
        var count = 0;
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(count));
            if (read == 0)
                throw new InvalidOperationException("client left");
            count += read;
            var text = Encoding.ASCII.GetString(buffer, 0, count);
            if (text.Contains("\r\n\r\n", StringComparison.Ordinal))
                return text;
        }
    }

    private static byte[] Frame(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        var header = payload.Length < 126 ? 2 : 4;
        var frame = new byte[header + payload.Length];
        frame[0] = 0x81;
        if (header == 2)
            frame[1] = (byte)payload.Length;
        else
        {
            frame[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        payload.CopyTo(frame, header);
        return frame;
    }
}
