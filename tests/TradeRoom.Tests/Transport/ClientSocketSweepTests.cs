using System.Collections.Concurrent;
using System.Text;
using TradeRoom.Protocol;
using TradeRoom.Transport;

namespace TradeRoom.Tests.Transport;

/// <summary>
/// What the sweeper does for each socket besides closing it (<see cref="ClientSocket.CheckHealth"/>), driven directly
/// with chosen clock values over a real loopback connection: a ping every ping-interval, between whole frames, and
/// the one call a connection asked for (its token expiry) once its time has come.
/// </summary>
public sealed class ClientSocketSweepTests
{
    private static byte[] Text(int i) => ServerFrames.Event("order_executed", "A", i, Encoding.UTF8.GetBytes($"{{\"i\":{i}}}"));

    /// <summary>Every frame up to and with the first of <paramref name="opcode"/>, in order: opcode and payload.</summary>
    private static List<(int Opcode, byte[] Payload)> ReadUntil(LoopbackPair pair, int opcode)
    {
        var frames = new List<(int, byte[])>();
        while (true)
        {
            var frame = pair.ReadFrame();
            frames.Add(frame);
            if (frame.Opcode == opcode)
                return frames;
        }
    }

    [Fact]
    public async Task A_ping_goes_out_once_per_ping_interval_between_whole_frames()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var socket = pair.Socket(LoopbackPair.Options("traderoom.websocket.ping-interval = 1s"), new RecordingMetrics());
        var t0 = Environment.TickCount64;

        socket.CheckHealth(t0 + 500);          // not yet due
        Assert.True(socket.Send(Text(1)));
        socket.CheckHealth(t0 + 1_000);        // due: one ping, before or after the frame queued
        Assert.True(socket.Send(Text(2)));
        var first = await Task.Run(() => ReadUntil(pair, 0x9));
        socket.CheckHealth(t0 + 1_900);        // 900 ms after that ping: none
        socket.CheckHealth(t0 + 2_000);        // due again
        Assert.True(socket.Send(Text(3)));
        socket.Close(CloseCodes.Normal, "done");
        var rest = await Task.Run(() => ReadUntil(pair, 0x8));

        var frames = first.Concat(rest).ToList();
        Assert.Equal(2, frames.Count(f => f.Opcode == 0x9));
        Assert.All(frames.Where(f => f.Opcode == 0x9), ping => Assert.Empty(ping.Payload));
        Assert.Equal([Text(1), Text(2), Text(3)], frames.Where(f => f.Opcode == 0x1).Select(f => f.Payload));
        Assert.Equal(CloseCodes.Normal, System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(frames[^1].Payload));
    }

    [Fact]
    public async Task The_ping_to_an_idle_socket_is_sent_on_its_own_and_costs_nothing_of_the_budget()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var metrics = new RecordingMetrics();
        var socket = pair.Socket(LoopbackPair.Options("traderoom.websocket.ping-interval = 1s"), metrics);

        socket.CheckHealth(Environment.TickCount64 + 1_000);

        var (opcode, payload) = await Task.Run(pair.ReadFrame);
        Assert.Equal(0x9, opcode);
        Assert.Empty(payload);
        Assert.Equal(0, socket.QueuedBytes);
        Assert.Empty(metrics.Flushes); // no event frame, no bytes of the queue written
    }

    [Fact]
    public async Task The_call_asked_for_is_made_once_when_its_time_has_come_and_a_new_one_replaces_it()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var socket = pair.Socket(LoopbackPair.Options(), new RecordingMetrics());
        var calls = new ConcurrentQueue<object>();
        var t0 = Environment.TickCount64;

        socket.CallAt(t0 + 500, calls.Enqueue, "first");
        socket.CallAt(t0 + 700, calls.Enqueue, "second");  // replaces the first
        socket.CheckHealth(t0 + 600);
        Assert.Empty(calls);
        socket.CheckHealth(t0 + 700);
        socket.CheckHealth(t0 + 800);
        Assert.Equal(["second"], calls);

        socket.CallAt(t0 + 900, calls.Enqueue, "cancelled");
        socket.CallAt(0, null, null);
        socket.CheckHealth(t0 + 1_000);
        Assert.Equal(["second"], calls);
    }

    [Fact]
    public async Task A_closing_socket_makes_no_call()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var socket = pair.Socket(LoopbackPair.Options(), new RecordingMetrics());
        var calls = new ConcurrentQueue<object>();
        var t0 = Environment.TickCount64;

        socket.CallAt(t0 + 100, calls.Enqueue, "expiry");
        socket.Close(CloseCodes.Normal, "done");
        socket.CheckHealth(t0 + 200);

        Assert.Empty(calls);
    }
}
