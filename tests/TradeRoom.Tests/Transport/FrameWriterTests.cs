using System.Net.Sockets;

namespace TradeRoom.Tests.Transport;

/// <summary>The one frame writer, over a real loopback TCP connection: framing, explicit flushes, partial writes, a failed output.</summary>
public sealed class FrameWriterTests
{
    /// <summary>Payload lengths on every boundary of the RFC 6455 length encoding (7-bit, 16-bit, 64-bit).</summary>
    private static readonly int[] Lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000, 3];

    private static byte[] Payload(int index, int length)
    {
        var payload = new byte[length];
        for (var i = 0; i < length; i++)
            payload[i] = (byte)('a' + (index + i) % 26);
        return payload;
    }

    private static int FrameLength(int payload) => payload + (payload < 126 ? 2 : payload <= ushort.MaxValue ? 4 : 10);

    [Theory]
    [InlineData(true)]   // plaintext: straight to the socket
    [InlineData(false)]  // as under TLS: through the transport's pipe
    public async Task Frames_appended_then_flushed_once_arrive_whole_and_in_order(bool direct)
    {
        using var pair = await LoopbackPair.ConnectAsync(direct);
        var payloads = Lengths.Select((length, i) => Payload(i, length)).ToArray();

        foreach (var payload in payloads)
            pair.Writer.AppendText(payload);
        // Nothing has left: every byte is still in the writer until the flush.
        Assert.Equal(Lengths.Sum(FrameLength), pair.Writer.Length);

        var reading = Task.Run(() => payloads.Select(_ => pair.ReadFrame()).ToList());
        await pair.Writer.FlushAsync();
        Assert.Equal(0, pair.Writer.Length);

        var frames = await reading;
        Assert.All(frames, frame => Assert.Equal(0x1, frame.Opcode));
        Assert.Equal(payloads, frames.Select(frame => frame.Payload));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_flush_the_kernel_cannot_take_at_once_completes_when_the_client_has_read_it_and_later_frames_follow_in_order(bool direct)
    {
        using var pair = await LoopbackPair.ConnectAsync(direct, smallBuffers: true);
        var first = Enumerable.Range(0, 16).Select(i => Payload(i, 64 * 1024)).ToArray();
        var second = Enumerable.Range(16, 8).Select(i => Payload(i, 1000)).ToArray();

        foreach (var payload in first)
            pair.Writer.AppendText(payload);
        var firstFlush = pair.Writer.FlushAsync().AsTask();
        // 1 MiB against kernel buffers of a few KiB: the rest of the write waits for the client, which reads nothing yet.
        Assert.False(firstFlush.IsCompleted);

        // Frames appended while that write waits: their flush waits for it, and they leave after it.
        foreach (var payload in second)
            pair.Writer.AppendText(payload);
        var secondFlush = pair.Writer.FlushAsync().AsTask();
        Assert.False(secondFlush.IsCompleted);

        var frames = await Task.Run(() => first.Concat(second).Select(_ => pair.ReadFrame()).ToList());
        await firstFlush;
        await secondFlush;
        Assert.Equal(first.Concat(second), frames.Select(frame => frame.Payload));
        Assert.Equal(0, pair.Writer.Length);
    }

    [Fact]
    public async Task A_client_that_resets_while_a_write_waits_fails_that_flush_and_every_later_one()
    {
        using var pair = await LoopbackPair.ConnectAsync(direct: true, smallBuffers: true);
        foreach (var i in Enumerable.Range(0, 16))
            pair.Writer.AppendText(Payload(i, 64 * 1024));
        var flush = pair.Writer.FlushAsync().AsTask();
        Assert.False(flush.IsCompleted);

        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close(); // a reset, with the server's write still waiting

        await Assert.ThrowsAsync<IOException>(() => flush);
        pair.Writer.AppendText("after"u8);
        await Assert.ThrowsAsync<IOException>(() => pair.Writer.FlushAsync().AsTask());
        Assert.Equal(0, pair.Writer.Length); // a failed writer keeps nothing
    }
}
