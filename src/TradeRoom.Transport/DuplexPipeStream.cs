using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace TradeRoom.Transport;

/// <summary>
/// The <see cref="Stream"/> that
/// <see cref="System.Net.WebSockets.WebSocket.CreateFromStream(Stream, System.Net.WebSockets.WebSocketCreationOptions)"/>
/// runs on: it reads the client's bytes from the Kestrel connection's input pipe, noting when bytes last arrived
/// (pongs included, which the WebSocket consumes itself) for the heartbeat and following frame headers for the
/// control-frame rate; it writes through the connection's one <see cref="FrameWriter"/>. The WebSocket writes only its
/// own frames here (pings, pongs, its close): each is one whole frame in one write, flushed at once, since nobody
/// else would flush it. Event and answer frames never pass through here: <see cref="ClientSocket"/> appends them to
/// the same writer itself.
/// </summary>
internal sealed class DuplexPipeStream(PipeReader input, FrameWriter writer) : Stream
{
    private readonly PipeReader _input = input;
    private long _lastReceivedMs = Environment.TickCount64;

    private FrameHeaderTracker _frames; // a struct: no object of its own per connection
    private Action<int>? _onFrame;      // made at the first read that carries bytes
    private TaskCompletionSource? _stopped;

    /// <summary>Where every byte for the client goes, in order.</summary>
    public FrameWriter Writer => writer;

    /// <summary>Called for each control frame (ping, pong, close) the client sends, as its header arrives.</summary>
    public Action? OnControlFrame { get; set; }

    /// <summary>
    /// Reads nothing more from the client (a flood): a pending or later read waits until the stream is disposed (the
    /// WebSocket aborted at the close timeout), then ends. The close the server sends still goes out meanwhile.
    /// </summary>
    public void StopReading() => Interlocked.CompareExchange(ref _stopped, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);

    /// <summary><see cref="Environment.TickCount64"/> when bytes last arrived from the client.</summary>
    public long LastReceivedMs => Volatile.Read(ref _lastReceivedMs);

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    // A read that waits (an idle socket's zero-byte read, until the client sends) boxes its state machine: with a new
    // box each time, the pongs to the sweeper's pings made 7% of the bytes the server allocated in the steady fan-out
    // (dotnet-trace, bench/analysis.md). The WebSocket awaits each read once, so a pooled box is safe.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_stopped is { } stopped)
        {
            await stopped.Task;
            return 0;
        }
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
        _frames.Feed(buffer.Span[..count], _onFrame ??= OnFrame);
        return count; // 0 only at the end of the stream
    }

    private void OnFrame(int opcode)
    {
        if (opcode >= 0x8) // close, ping, pong
            OnControlFrame?.Invoke();
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        writer.Append(buffer.Span);
        return writer.FlushAsync();
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Every write is flushed already.</summary>
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The WebSocket disposes its stream when aborted: wake a pending read so the receive loop ends.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _input.CancelPendingRead();
            _stopped?.TrySetResult();
        }
        base.Dispose(disposing);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");
    public override void Flush() => throw new NotSupportedException("async only");
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
