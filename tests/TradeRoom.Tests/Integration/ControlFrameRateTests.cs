using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TradeRoom.Transport;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// WebSocket control frames count against a connection's message rate. Before, the WebSocket answered every ping by
/// itself, so a ping flood was answered at one core's worth of pongs and never closed.
/// </summary>
public class ControlFrameRateTests
{
    private static byte[] MaskedPing(int payloadLength)
    {
        var frame = new byte[2 + 4 + payloadLength];
        frame[0] = 0x89; // FIN + ping
        frame[1] = (byte)(0x80 | payloadLength);
        // mask 0 0 0 0: the payload travels as is
        return frame;
    }

    /// <summary>Opens a raw WebSocket (no token), sends <paramref name="pings"/> pings in one write, then reads until the server closes or goes quiet.</summary>
    private static async Task<(int Pongs, int? CloseCode)> PingAsync(TestServer server, int pings)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, server.WsPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(E2E.UpgradeRequest()));
        var burst = Enumerable.Range(0, pings).SelectMany(_ => MaskedPing(4)).ToArray();
        await stream.WriteAsync(burst);

        var buffer = new List<byte>();
        var chunk = new byte[65536];
        var headDone = false;
        var pongs = 0;
        while (true)
        {
            using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            int n;
            try
            {
                n = await stream.ReadAsync(chunk, quiet.Token);
            }
            catch (OperationCanceledException)
            {
                return (pongs, null);
            }
            if (n == 0)
                return (pongs, null);
            buffer.AddRange(chunk.AsSpan(0, n));
            if (!headDone)
            {
                var text = Encoding.ASCII.GetString(buffer.ToArray());
                var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (end < 0)
                    continue;
                Assert.StartsWith("HTTP/1.1 101", text, StringComparison.Ordinal);
                buffer.RemoveRange(0, end + 4);
                headDone = true;
            }
            while (buffer.Count >= 2 && buffer.Count >= 2 + (buffer[1] & 0x7F))
            {
                var opcode = buffer[0] & 0x0F;
                var length = buffer[1] & 0x7F; // server control frames are short
                var payload = buffer.GetRange(2, length).ToArray();
                buffer.RemoveRange(0, 2 + length);
                if (opcode == 0xA)
                    pongs++;
                else if (opcode == 0x8)
                    return (pongs, BinaryPrimitives.ReadUInt16BigEndian(payload));
            }
        }
    }

    [Fact]
    public async Task A_ping_flood_is_closed_with_1008_and_not_answered_ping_for_ping()
    {
        await using var server = await TestServer.StartAsync();

        var (pongs, closeCode) = await PingAsync(server, 5000);

        Assert.Equal(1008, closeCode);
        // The burst (50) and the refusals before a flood (50) at most; far from 5,000.
        Assert.InRange(pongs, 0, 150);
    }

    [Fact]
    public async Task Pings_within_the_burst_are_all_answered_and_the_connection_stays()
    {
        await using var server = await TestServer.StartAsync();

        var (pongs, closeCode) = await PingAsync(server, 20);

        Assert.Equal((20, (int?)null), (pongs, closeCode));
    }
}

/// <summary>The frame-header tracker on its own: boundaries across reads, every length form, many frames in one read.</summary>
public class FrameHeaderTrackerTests
{
    private static byte[] Frame(int opcode, long length, bool masked = true)
    {
        var header = new List<byte> { (byte)(0x80 | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (length < 126)
            header.Add((byte)(maskBit | (int)length));
        else if (length <= ushort.MaxValue)
        {
            header.Add((byte)(maskBit | 126));
            header.AddRange(BitConverter.GetBytes((ushort)length).Reverse());
        }
        else
        {
            header.Add((byte)(maskBit | 127));
            header.AddRange(BitConverter.GetBytes(length).Reverse());
        }
        if (masked)
            header.AddRange([1, 2, 3, 4]);
        return [.. header, .. new byte[length]];
    }

    private static List<int> Feed(IEnumerable<byte[]> reads)
    {
        var tracker = new FrameHeaderTracker();
        var opcodes = new List<int>();
        foreach (var read in reads)
            tracker.Feed(read, opcodes.Add);
        return opcodes;
    }

    [Fact]
    public void Many_frames_in_one_read_are_each_seen()
    {
        byte[] all = [.. Frame(0x9, 0), .. Frame(0x1, 10), .. Frame(0xA, 125), .. Frame(0x2, 126), .. Frame(0x8, 2), .. Frame(0x1, 70_000)];

        Assert.Equal([0x9, 0x1, 0xA, 0x2, 0x8, 0x1], Feed([all]));
    }

    [Fact]
    public void Frames_split_byte_by_byte_are_seen_the_same()
    {
        byte[] all = [.. Frame(0x1, 300), .. Frame(0x9, 4), .. Frame(0x0, 65_536), .. Frame(0x9, 0, masked: false)];

        Assert.Equal([0x1, 0x9, 0x0, 0x9], Feed(all.Select(b => new[] { b })));
    }

    [Fact]
    public void Reads_cut_anywhere_see_the_same_frames()
    {
        byte[] all = [.. Frame(0x9, 7), .. Frame(0x1, 200), .. Frame(0xA, 0), .. Frame(0x1, 66_000), .. Frame(0x9, 125)];
        var random = new Random(7);
        for (var round = 0; round < 50; round++)
        {
            var reads = new List<byte[]>();
            for (var at = 0; at < all.Length;)
            {
                var size = Math.Min(all.Length - at, random.Next(1, 40));
                reads.Add(all[at..(at + size)]);
                at += size;
            }
            Assert.Equal([0x9, 0x1, 0xA, 0x1, 0x9], Feed(reads));
        }
    }

    [Fact]
    public void A_64_bit_length_with_the_top_bit_set_never_loops()
    {
        byte[] header = [0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 9, 9, 9];

        Assert.Equal([0x1], Feed([header]));
    }
}
