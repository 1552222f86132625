using System.Net.Sockets;
using System.Text;
using TradeRoom.Protocol;
using TradeRoom.Transport;

namespace TradeRoom.Tests.Transport;

/// <summary>
/// <see cref="ClientSocket"/> over a real loopback TCP connection with small kernel buffers: its send loop's flushes
/// (one per batch, or when the buffer is full), its byte budget against a client that stops reading, and closing
/// while a write waits.
/// </summary>
public sealed class ClientSocketTests
{
    private static OutboundFrame Event(string room, long seq, int padBytes = 0) =>
        new(ServerFrames.Event("order_executed", room, seq, Encoding.UTF8.GetBytes($"{{\"pad\":\"{new string('p', padBytes)}\"}}")),
            room, "order_executed");

    /// <summary>
    /// Queues a 256 KiB event that the client does not read. The send loop starts on this thread (the caller's batch
    /// is done) and, once the kernel's few KiB are full, waits in that flush: when this returns, whatever is queued
    /// next waits in the socket's queue.
    /// </summary>
    private static OutboundFrame Block(ClientSocket socket)
    {
        var blocker = Event("blocker", 1, padBytes: 256 * 1024);
        Assert.True(socket.Queue(blocker));
        socket.Flush();
        Assert.Equal(blocker.Bytes.Length, socket.QueuedBytes); // counted until its write completes
        return blocker;
    }

    [Fact]
    public async Task Queued_frames_wait_for_the_flush_then_leave_in_one_write()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var metrics = new RecordingMetrics();
        var socket = pair.Socket(LoopbackPair.Options(), metrics);
        var batch = Enumerable.Range(1, 3).Select(seq => Event("A", seq)).ToArray();

        foreach (var frame in batch)
            Assert.True(socket.Queue(frame));
        Assert.Empty(metrics.Flushes);
        Assert.Equal(batch.Sum(f => (long)f.Bytes.Length), socket.QueuedBytes); // all held, none written
        socket.Flush();

        Assert.Equal(batch.Select(f => f.Bytes), Enumerable.Range(0, 3).Select(_ => pair.ReadFrame().Payload));
        Assert.Equal([(3, batch.Sum(f => (long)f.Bytes.Length))], metrics.Flushes);
        Assert.Equal(0, socket.QueuedBytes);
    }

    [Fact]
    public async Task Frames_queued_while_a_write_waits_leave_in_order_in_one_flush_once_the_client_reads()
    {
        using var pair = await LoopbackPair.ConnectAsync(smallBuffers: true);
        var metrics = new RecordingMetrics();
        var socket = pair.Socket(LoopbackPair.Options(), metrics);
        var blocker = Block(socket);

        var batch = Enumerable.Range(2, 20).Select(seq => Event("A", seq, padBytes: 100)).ToArray();
        foreach (var frame in batch)
            Assert.True(socket.Queue(frame));
        socket.Close(CloseCodes.Normal, "done");

        var (texts, closeCode) = await Task.Run(pair.ReadToClose);
        Assert.Equal(CloseCodes.Normal, closeCode);
        Assert.Equal([blocker.Bytes, .. batch.Select(f => f.Bytes)], texts);
        Assert.Equal([(1, (long)blocker.Bytes.Length), (20, batch.Sum(f => (long)f.Bytes.Length))], metrics.Flushes);
        Assert.Equal(0, socket.QueuedBytes);
    }

    [Fact]
    public async Task A_batch_larger_than_the_write_buffer_is_flushed_each_time_the_buffer_is_full()
    {
        using var pair = await LoopbackPair.ConnectAsync(smallBuffers: true);
        var metrics = new RecordingMetrics();
        var options = LoopbackPair.Options("traderoom.websocket.write-buffer-size = 4KiB");
        var socket = pair.Socket(options, metrics);
        var blocker = Block(socket);

        // 20 frames of about 970 bytes: four fit in 4 KiB, the fifth would not.
        var batch = Enumerable.Range(10, 20).Select(seq => Event("A", seq, padBytes: 900)).ToArray(); // seqs of one length: frames of one size
        var size = batch[0].Bytes.Length;
        Assert.All(batch, f => Assert.Equal(size, f.Bytes.Length));
        Assert.True(4 * size <= options.WriteBufferSize && 5 * size > options.WriteBufferSize);
        foreach (var frame in batch)
            Assert.True(socket.Queue(frame));
        socket.Close(CloseCodes.Normal, "done");

        var (texts, closeCode) = await Task.Run(pair.ReadToClose);
        Assert.Equal(CloseCodes.Normal, closeCode);
        Assert.Equal([blocker.Bytes, .. batch.Select(f => f.Bytes)], texts);
        Assert.Equal([(1, (long)blocker.Bytes.Length), .. Enumerable.Repeat((4, 4L * size), 5)], metrics.Flushes);
    }

    [Fact]
    public async Task A_client_that_stops_reading_is_queued_for_within_the_budget_then_closed_with_4008_at_the_hard_limit_and_still_gets_whole_frames()
    {
        using var pair = await LoopbackPair.ConnectAsync(smallBuffers: true);
        var options = LoopbackPair.Options("""
            traderoom.websocket {
              outbound-queue-limit = 64KiB
              slow-consumer-hard-limit = 512KiB
            }
            """);
        var socket = pair.Socket(options, new RecordingMetrics());
        var blocker = Block(socket);

        // The kernel is full and the send loop waits: everything queued now is held, and counted, by the socket.
        long queued = blocker.Bytes.Length;
        long seq = 2;
        while (queued + 9000 <= options.SlowConsumerHardLimit)
        {
            var frame = Event("A", seq++, padBytes: 8000);
            Assert.True(socket.Queue(frame));
            queued += frame.Bytes.Length;
            Assert.Equal(queued, socket.QueuedBytes);
        }
        Assert.True(socket.QueuedBytes > options.OutboundQueueLimit); // over the budget, within the grace: still open

        Assert.True(socket.Queue(Event("A", seq++, padBytes: 16_000))); // crosses the hard limit: the socket closes
        Assert.False(socket.Queue(Event("A", seq)));
        Assert.Equal(CloseCodes.SlowConsumer, socket.CloseInfo.Code);

        // What it was behind on is dropped; the frame already in the write arrives whole, then the close.
        var (texts, closeCode) = await Task.Run(pair.ReadToClose);
        Assert.Equal(CloseCodes.SlowConsumer, closeCode);
        Assert.Equal([blocker.Bytes], texts);
    }

    [Fact]
    public async Task Over_the_budget_past_the_grace_period_the_sweepers_check_closes_with_4008()
    {
        using var pair = await LoopbackPair.ConnectAsync(smallBuffers: true);
        var options = LoopbackPair.Options("""
            traderoom.websocket {
              outbound-queue-limit = 64KiB
              slow-consumer-hard-limit = 4MiB
              slow-consumer-grace = 1s
            }
            """);
        var socket = pair.Socket(options, new RecordingMetrics());
        var blocker = Block(socket);
        for (var seq = 2; socket.QueuedBytes <= options.OutboundQueueLimit; seq++)
            Assert.True(socket.Queue(Event("A", seq, padBytes: 8000)));
        var overSince = Environment.TickCount64;

        socket.CheckHealth(overSince + (long)options.SlowConsumerGrace.TotalMilliseconds / 2);
        Assert.True(socket.Queue(Event("A", 1000)));
        socket.CheckHealth(overSince + (long)options.SlowConsumerGrace.TotalMilliseconds + 50);
        Assert.False(socket.Queue(Event("A", 1001)));

        var (texts, closeCode) = await Task.Run(pair.ReadToClose);
        Assert.Equal(CloseCodes.SlowConsumer, closeCode);
        Assert.Equal([blocker.Bytes], texts);
    }

    [Fact]
    public async Task A_close_asked_while_a_write_waits_goes_after_everything_queued()
    {
        using var pair = await LoopbackPair.ConnectAsync(smallBuffers: true);
        var socket = pair.Socket(LoopbackPair.Options(), new RecordingMetrics());
        var blocker = Block(socket);
        var queued = Enumerable.Range(2, 5).Select(seq => Event("A", seq, padBytes: 3000)).ToArray();
        foreach (var frame in queued)
            Assert.True(socket.Queue(frame));

        socket.Close(4000 + 99, "bye");
        Assert.False(socket.Queue(Event("A", 7)));    // nothing after the close
        socket.Close(CloseCodes.Normal, "ignored");  // the first close wins

        var (texts, closeCode) = await Task.Run(pair.ReadToClose);
        Assert.Equal(4099, closeCode);
        Assert.Equal([blocker.Bytes, .. queued.Select(f => f.Bytes)], texts);
        Assert.Equal((4099, "bye", false), socket.CloseInfo);
    }

    [Fact]
    public async Task A_close_asked_while_a_write_waits_for_a_client_that_never_reads_ends_the_connection_within_close_timeout()
    {
        using var pair = await LoopbackPair.ConnectAsync(smallBuffers: true);
        var options = LoopbackPair.Options("traderoom.websocket.close-timeout = 500ms");
        var socket = pair.Socket(options, new RecordingMetrics());
        Block(socket);
        Assert.True(socket.Queue(Event("A", 2, padBytes: 3000)));

        socket.Close(CloseCodes.Normal, "bye");

        // The client never reads: the close timeout aborts the connection, which ends the waiting write and the send loop.
        await pair.Aborted.WaitAsync(TimeSpan.FromSeconds(10));
        await socket.WaitUntilWrittenAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, socket.QueuedBytes);
        Assert.False(socket.Queue(Event("A", 3)));
        AssertConnectionEnds(pair.Client);
    }

    /// <summary>The client's end sees the connection end (what the kernel still held, then the end or the abort's reset), not a read timeout.</summary>
    private static void AssertConnectionEnds(Socket client)
    {
        var buffer = new byte[1 << 20];
        try
        {
            while (client.Receive(buffer) > 0)
            {
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }
}
