using System.Buffers;
using System.IO.Pipelines;

namespace TradeRoom.Server.WebSockets;

/// <summary>
/// A <see cref="Stream"/> over a Kestrel connection's transport, so that
/// <see cref="System.Net.WebSockets.WebSocket.CreateFromStream(Stream, System.Net.WebSockets.WebSocketCreationOptions)"/>
/// runs on it directly. Two additions: it notes when bytes last arrived (pongs included, which the WebSocket
/// consumes itself), for the heartbeat; and while <see cref="Corked"/> it writes without flushing, so the send
/// loop can put many frames in one socket write.
/// </summary>
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    private readonly PipeReader _input = pipe.Input;
    private readonly PipeWriter _output = pipe.Output;
    private long _lastReceivedMs = Environment.TickCount64;
    private volatile bool _corked;

    /// <summary><see cref="Environment.TickCount64"/> when bytes last arrived from the client.</summary>
    public long LastReceivedMs => Volatile.Read(ref _lastReceivedMs);

    /// <summary>While true, writes are buffered in the pipe and go out with the next uncorked write.</summary>
    public bool Corked { get => _corked; set => _corked = value; }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var result = await _input.ReadAsync(cancellationToken);
        var data = result.Buffer;
        if (result.IsCanceled)
        {
            _input.AdvanceTo(data.Start);
            throw new OperationCanceledException(cancellationToken);
        }
        if (data.Length > 0)
            Volatile.Write(ref _lastReceivedMs, Environment.TickCount64);
        if (buffer.Length == 0)
        {
            // A zero-byte read only waits for data: it consumes and examines nothing.
            _input.AdvanceTo(data.Start, data.Start);
            return 0;
        }
        var count = (int)Math.Min(data.Length, buffer.Length);
        var end = data.GetPosition(count);
        data.Slice(0, count).CopyTo(buffer.Span);
        _input.AdvanceTo(end);
        return count; // 0 only at the end of the stream
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_corked)
        {
            _output.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
        var flush = _output.WriteAsync(buffer, cancellationToken);
        return flush.IsCompletedSuccessfully ? ValueTask.CompletedTask : AwaitFlush(flush);
    }

    private static async ValueTask AwaitFlush(ValueTask<FlushResult> flush) => await flush;

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async Task FlushAsync(CancellationToken cancellationToken) => await _output.FlushAsync(cancellationToken);

    /// <summary>The WebSocket disposes its stream when aborted: wake a pending read so the receive loop ends.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _input.CancelPendingRead();
        base.Dispose(disposing);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");
    public override void Flush() => throw new NotSupportedException("async only");
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
