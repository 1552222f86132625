using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace TradeRoom.Server.WebSockets;

/// <summary>
/// A <see cref="Stream"/> over a Kestrel connection's transport, so that
/// <see cref="System.Net.WebSockets.WebSocket.CreateFromStream(Stream, System.Net.WebSockets.WebSocketCreationOptions)"/>
/// runs on it directly. Two additions: it notes when bytes last arrived (pongs included, which the WebSocket
/// consumes itself), for the heartbeat; and while <see cref="Corked"/> it writes without flushing, so the send
/// loop can put many frames in one socket write.
/// Given the connection's <see cref="Socket"/>, it writes to the socket itself rather than through the transport's
/// output pipe: a frame leaves on the thread that wrote it, without a copy into the pipe and a hop to the transport's
/// send loop; only a send the kernel cannot take at once waits asynchronously. Everything after the handshake's
/// request must then be written through this stream (the 101 answer included), so that bytes never overtake each other.
/// </summary>
internal sealed class DuplexPipeStream(IDuplexPipe pipe, Socket? socket = null) : Stream
{
    private readonly PipeReader _input = pipe.Input;
    private readonly PipeWriter _output = pipe.Output;
    private long _lastReceivedMs = Environment.TickCount64;
    private volatile bool _corked;
    private volatile int _corkedBy;  // the thread that corked: only its writes join the batch (direct sends only)
    private byte[]? _batch;      // corked writes waiting for the next uncorked one (direct sends only)
    private int _batchLength;

    private int _unsent;         // bytes of a direct send the kernel has not taken yet: it waits for the client to read
    private int _handingOver;    // 1 once no direct send may wait for the client any more (see StopWaitingForReader)

    private FrameHeaderTracker _frames; // a struct: no object of its own per connection
    private Action<int>? _onFrame;      // made at the first read that carries bytes
    private TaskCompletionSource? _stopped;

    /// <summary>Called for each control frame (ping, pong, close) the client sends, as its header arrives.</summary>
    public Action? OnControlFrame { get; set; }

    /// <summary>
    /// Reads nothing more from the client (a flood): a pending or later read waits until the stream is disposed (the
    /// WebSocket aborted at the close timeout), then ends. The close the server sends still goes out meanwhile.
    /// </summary>
    public void StopReading() => Interlocked.CompareExchange(ref _stopped, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);

    /// <summary><see cref="Environment.TickCount64"/> when bytes last arrived from the client.</summary>
    public long LastReceivedMs => Volatile.Read(ref _lastReceivedMs);

    /// <summary>While true, writes are buffered in the pipe and go out with the next uncorked write.</summary>
    public bool Corked
    {
        get => _corked;
        set
        {
            _corkedBy = value ? Environment.CurrentManagedThreadId : 0;
            _corked = value;
        }
    }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

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
        if (socket is not null)
            return WriteDirect(buffer, cancellationToken);
        if (_corked)
        {
            _output.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
        var flush = _output.WriteAsync(buffer, cancellationToken);
        return flush.IsCompletedSuccessfully ? ValueTask.CompletedTask : AwaitFlush(flush);
    }

    private static async ValueTask AwaitFlush(ValueTask<FlushResult> flush) => await flush;

    /// <summary>
    /// Corked, and written by the thread that corked (the send loop): keep the bytes (in a pooled buffer that exists
    /// only while a batch does). Else send them, after any kept ones. A frame the WebSocket writes by itself from
    /// another thread (a pong, or the close it sends on a protocol error) therefore never waits in a batch that the
    /// send loop may not come back to. The WebSocket writes one frame at a time, so writes never overlap.
    /// </summary>
    private ValueTask WriteDirect(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        var batching = _corked && _corkedBy == Environment.CurrentManagedThreadId;
        byte[]? batch = null;
        var length = 0;
        // The lock only guards the batch against a flush from a send loop that failed (see FlushAsync); it is never contended otherwise.
        lock (this)
        {
            if ((batching || _batchLength > 0) && !Append(buffer.Span, keep: batching, out batch, out length))
                return ValueTask.CompletedTask;
        }
        return batch is null ? SendAsync(buffer, null, cancellationToken) : SendAsync(batch.AsMemory(0, length), batch, cancellationToken);
    }

    /// <summary>Adds <paramref name="bytes"/> to the batch; unless <paramref name="keep"/>, takes the batch out to be sent (true).</summary>
    private bool Append(ReadOnlySpan<byte> bytes, bool keep, out byte[]? batch, out int length)
    {
        if (_batch is null || _batch.Length - _batchLength < bytes.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(Math.Max(_batchLength + bytes.Length, 16 * 1024));
            if (_batch is not null)
            {
                _batch.AsSpan(0, _batchLength).CopyTo(grown);
                ArrayPool<byte>.Shared.Return(_batch);
            }
            _batch = grown;
        }
        bytes.CopyTo(_batch.AsSpan(_batchLength));
        _batchLength += bytes.Length;
        (batch, length) = (null, 0);
        if (keep)
            return false;
        (batch, length) = (_batch, _batchLength);
        (_batch, _batchLength) = (null, 0);
        return true;
    }

    /// <summary>Sends what the kernel takes at once without waiting, the rest asynchronously; gives <paramref name="pooled"/> back after.</summary>
    private ValueTask SendAsync(ReadOnlyMemory<byte> bytes, byte[]? pooled, CancellationToken cancellationToken)
    {
        var sent = socket!.Send(bytes.Span, SocketFlags.None, out var error);
        if (error is SocketError.Success or SocketError.WouldBlock && sent == bytes.Length)
        {
            if (pooled is not null)
                ArrayPool<byte>.Shared.Return(pooled);
            return ValueTask.CompletedTask;
        }
        if (error is not (SocketError.Success or SocketError.WouldBlock))
        {
            if (pooled is not null)
                ArrayPool<byte>.Shared.Return(pooled);
            return ValueTask.FromException(new IOException($"send failed: {error}", new SocketException((int)error)));
        }
        var rest = bytes[Math.Max(sent, 0)..];
        // Each side of the hand-over writes with a full fence (Interlocked) before it reads the other's field, so a
        // send that starts waiting while StopWaitingForReader runs is seen by one of them: the buffer grows for it.
        Interlocked.Exchange(ref _unsent, rest.Length);
        if (Volatile.Read(ref _handingOver) == 1)
            GrowSendBuffer(rest.Length);
        return SendRestAsync(rest, pooled, cancellationToken);
    }

    private async ValueTask SendRestAsync(ReadOnlyMemory<byte> rest, byte[]? pooled, CancellationToken cancellationToken)
    {
        try
        {
            while (rest.Length > 0)
                rest = rest[await socket!.SendAsync(rest, SocketFlags.None, cancellationToken)..];
        }
        catch (SocketException e)
        {
            throw new IOException($"send failed: {e.SocketErrorCode}", e); // as NetworkStream reports it
        }
        finally
        {
            Volatile.Write(ref _unsent, 0);
            if (pooled is not null)
                ArrayPool<byte>.Shared.Return(pooled);
        }
    }

    /// <summary>
    /// A slow consumer's close: from now on no direct send waits for the client to read. The socket's send buffer grows
    /// so that the kernel takes the write in progress (whose start it already holds) and the frames after it (the
    /// close); it delivers them when the client reads again, even after the server has let go of the socket
    /// (<see cref="EndOutputInOrder"/>), for about <paramref name="linger"/> more (see <see cref="LimitLinger"/>).
    /// Plaintext only: under TLS the bytes keep waiting in the transport's pipe. Returns false when nothing can be
    /// handed over (TLS, in-memory pipes, not Linux).
    /// </summary>
    public bool StopWaitingForReader(TimeSpan linger)
    {
        if (socket is null || !OperatingSystem.IsLinux())
            return false;
        LimitLinger(linger);
        Interlocked.Exchange(ref _handingOver, 1);
        var unsent = Volatile.Read(ref _unsent);
        if (unsent > 0)
            GrowSendBuffer(unsent);
        return true;
    }

    /// <summary>
    /// Bounds how long the kernel keeps a connection whose client reads nothing, our socket closed or not: else it
    /// keeps probing the closed window for minutes (measured: about 6 on loopback) and holds what it could not send.
    /// TCP_USER_TIMEOUT ends it once the window has been probed for that long, counted from the first probe, which
    /// comes after the last data the kernel could send (TCP_INFO's tcpi_last_data_sent, ms ago). So the timeout is that
    /// age plus <paramref name="linger"/>: the kernel gives up about <paramref name="linger"/> from now, not before.
    /// A client that reads again opens the window, and the timeout no longer applies while data flows.
    /// </summary>
    private void LimitLinger(TimeSpan linger)
    {
        const int IpProtoTcp = 6, TcpInfo = 11, TcpUserTimeout = 18, LastDataSentOffset = 44; // Linux
        try
        {
            Span<byte> info = stackalloc byte[256];
            var length = socket!.GetRawSocketOption(IpProtoTcp, TcpInfo, info);
            if (length < LastDataSentOffset + 4)
                return;
            var sinceLastData = BitConverter.ToUInt32(info.Slice(LastDataSentOffset, 4));
            var timeout = (int)Math.Min(sinceLastData + (long)linger.TotalMilliseconds, int.MaxValue);
            socket.SetRawSocketOption(IpProtoTcp, TcpUserTimeout, BitConverter.GetBytes(timeout));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // the kernel keeps it for as long as its own limits say
        }
    }

    /// <summary>Room asked of the kernel beyond the bytes themselves: a close frame, a pong, and the kernel's per-packet overhead.</summary>
    private const int SendBufferSlack = 64 * 1024;

    /// <summary>Linux's cap on SO_SNDBUF for unprivileged processes (net.core.wmem_max); 0 when unknown.</summary>
    private static readonly Lazy<long> WmemMax = new(() =>
    {
        try
        {
            return long.Parse(File.ReadAllText("/proc/sys/net/core/wmem_max").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return 0;
        }
    });

    /// <summary>
    /// Grows the socket's send buffer so that the kernel takes <paramref name="bytes"/> more. Linux wakes a send that
    /// waits for room only once the free room is at least half of what the buffer holds (sk_stream_is_writeable),
    /// and a full buffer holds about its size: so the buffer grows to twice its size plus the bytes. That is a
    /// limit, not an allocation: the kernel then holds what it held plus the bytes. Linux reports the size in use,
    /// which is twice what SO_SNDBUF asks for. Past net.core.wmem_max only a process with CAP_NET_ADMIN may ask
    /// (SO_SNDBUFFORCE); when the kernel refuses, the send keeps waiting for the reader, as it did before.
    /// </summary>
    private void GrowSendBuffer(int bytes)
    {
        const int SolSocket = 1, SoSndBufForce = 32; // Linux
        try
        {
            var ask = (int)Math.Min((2L * socket!.SendBufferSize + bytes + SendBufferSlack) / 2, int.MaxValue / 2);
            if (ask <= WmemMax.Value)
                socket.SendBufferSize = ask;
            else
                socket.SetRawSocketOption(SolSocket, SoSndBufForce, BitConverter.GetBytes(ask));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // refused, or the socket is gone: nothing more to do
        }
    }

    /// <summary>
    /// Ends the connection's output in order: the kernel sends a FIN after what it holds, instead of the reset that
    /// aborting the connection sends (Kestrel's abort closes with SO_LINGER 0), which drops what it holds. For a
    /// socket whose close frame is in the kernel (<see cref="StopWaitingForReader"/>), instead of that abort. Unread
    /// input is discarded first: Linux resets a connection closed with unread input. Input still on its way when the
    /// transport closes the socket resets it all the same. Returns false without a socket of its own.
    /// </summary>
    public bool EndOutputInOrder()
    {
        if (socket is null)
            return false;
        try
        {
            var unread = socket.Available;
            if (unread > 0)
            {
                var scratch = ArrayPool<byte>.Shared.Rent(Math.Min(unread, 64 * 1024));
                try
                {
                    // At most what was there: a client that keeps sending cannot hold this thread.
                    while (unread > 0)
                    {
                        var read = socket.Receive(scratch, 0, Math.Min(unread, scratch.Length), SocketFlags.None, out var error);
                        if (error != SocketError.Success || read <= 0)
                            break;
                        unread -= read;
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(scratch);
                }
            }
            socket.Shutdown(SocketShutdown.Send);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Direct sends only: nothing is held back but a batch, which the next uncorked write sends (see <see cref="SendBatchAsync"/>).</summary>
    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (socket is null)
            await _output.FlushAsync(cancellationToken);
    }

    /// <summary>Sends what a batch still holds, for a send loop that stops before its uncorked write (a failed send).</summary>
    public async Task SendBatchAsync()
    {
        if (socket is null)
        {
            await _output.FlushAsync();
            return;
        }
        byte[]? batch;
        int length;
        lock (this)
        {
            if (_batchLength == 0)
                return;
            (batch, length) = (_batch!, _batchLength);
            (_batch, _batchLength) = (null, 0);
        }
        await SendAsync(batch.AsMemory(0, length), batch, CancellationToken.None);
    }

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
