using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace TradeRoom.Transport;

/// <summary>
/// The one way bytes leave for a client once its upgrade request is read. Whole frames are appended to one buffer
/// (<see cref="AppendText"/> frames a payload itself; <see cref="Append"/> takes bytes already framed: the 101 answer,
/// and the WebSocket's own pings, pongs and close); nothing leaves until someone calls <see cref="FlushAsync"/>. The
/// send loop of <see cref="ClientSocket"/> flushes when its batch is done or the buffer is full; the WebSocket's own
/// frames are flushed as they are written (<see cref="DuplexPipeStream"/>).
/// One flush at a time hands bytes to the kernel, in the order they were appended: a flush that finds another one
/// sending leaves its bytes to it and completes when it is done. A flush completes when every byte appended before
/// it has been handed to the kernel, so callers may count those bytes as written.
/// Given the connection's <see cref="Socket"/> (plaintext only), bytes go straight to it: what the kernel takes at
/// once leaves on the flushing thread, without a copy into Kestrel's output pipe and a hop to its send loop. Without
/// one (TLS: only the transport's pipe encrypts; or in-memory pipes) they go through <paramref name="output"/>.
/// The buffer is rented from the shared pool only while bytes wait in it: an idle socket holds none.
/// </summary>
internal sealed class FrameWriter(PipeWriter output, Socket? socket, int bufferSize)
{
    private const int MinimumRent = 16 * 1024;

    // Guarded by lock (this): the writer is internal to its socket, and a separate lock object would cost every connection.
    private byte[]? _buffer;
    private int _length;
    private bool _sending;                 // a flush is handing bytes to the kernel
    private TaskCompletionSource? _sent;   // flushes waiting for the one sending; made only when one waits
    private Exception? _failed;            // the output failed: nothing more can reach the client

    private int _unsent;         // bytes of a direct send the kernel has not taken yet: it waits for the client to read
    private int _handingOver;    // 1 once no direct send may wait for the client any more (see StopWaitingForReader)

    /// <summary>Bytes appended and not yet flushed.</summary>
    public int Length
    {
        get
        {
            lock (this)
                return _length;
        }
    }

    /// <summary>Appends one text frame (FIN set, not masked: server to client) carrying <paramref name="payload"/>.</summary>
    public void AppendText(ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[10];
        header[0] = 0x81; // FIN, text
        int headerLength;
        if (payload.Length < 126)
        {
            header[1] = (byte)payload.Length;
            headerLength = 2;
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)payload.Length);
            headerLength = 4;
        }
        else
        {
            header[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(header[2..], (ulong)payload.Length);
            headerLength = 10;
        }
        Append(header[..headerLength], payload);
    }

    /// <summary>Appends bytes that are already whole frames (or the handshake's answer).</summary>
    public void Append(ReadOnlySpan<byte> bytes) => Append(bytes, ReadOnlySpan<byte>.Empty);

    private void Append(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        lock (this)
        {
            if (_failed is not null)
                return; // the next flush reports it
            var needed = _length + first.Length + second.Length;
            if (_buffer is null || _buffer.Length < needed)
                Grow(needed);
            first.CopyTo(_buffer.AsSpan(_length));
            second.CopyTo(_buffer.AsSpan(_length + first.Length));
            _length = needed;
        }
    }

    private void Grow(int needed)
    {
        var grown = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(MinimumRent, Math.Min(2 * (_buffer?.Length ?? 0), bufferSize))));
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _length).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_buffer);
        }
        _buffer = grown;
    }

    /// <summary>Hands every byte appended so far to the kernel; completes when it has taken them (at once, when it has room).</summary>
    public ValueTask FlushAsync()
    {
        byte[] batch;
        int length;
        lock (this)
        {
            if (_failed is { } failed)
                return ValueTask.FromException(new IOException("the connection's output has failed", failed));
            if (_sending)
                return new ValueTask((_sent ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task);
            if (_length == 0)
                return ValueTask.CompletedTask;
            (batch, length) = (_buffer!, _length);
            (_buffer, _length, _sending) = (null, 0, true);
        }
        return SendAll(batch, length);
    }

    /// <summary>Sends <paramref name="batch"/>, then whatever was appended meanwhile, until nothing is left.</summary>
    private ValueTask SendAll(byte[] batch, int length)
    {
        while (true)
        {
            ValueTask send;
            try
            {
                send = Send(batch, length);
            }
            catch (Exception e)
            {
                Fail(e);
                return ValueTask.FromException(e);
            }
            if (!send.IsCompletedSuccessfully)
                return SendAllAsync(send);
            if (!TakeNext(out batch, out length))
                return ValueTask.CompletedTask;
        }
    }

    private async ValueTask SendAllAsync(ValueTask sending)
    {
        try
        {
            await sending;
            while (TakeNext(out var batch, out var length))
                await Send(batch, length);
        }
        catch (Exception e)
        {
            Fail(e);
            throw;
        }
    }

    /// <summary>Takes what was appended while a send ran; with nothing left, ends the flush and wakes those waiting for it.</summary>
    private bool TakeNext(out byte[] batch, out int length)
    {
        TaskCompletionSource? sent;
        lock (this)
        {
            if (_length > 0)
            {
                (batch, length) = (_buffer!, _length);
                (_buffer, _length) = (null, 0);
                return true;
            }
            (_sending, sent, _sent) = (false, _sent, null);
        }
        sent?.TrySetResult();
        (batch, length) = (null!, 0);
        return false;
    }

    private void Fail(Exception e)
    {
        TaskCompletionSource? sent;
        lock (this)
        {
            _failed ??= e;
            if (_buffer is not null)
                ArrayPool<byte>.Shared.Return(_buffer);
            (_buffer, _length, _sending, sent, _sent) = (null, 0, false, _sent, null);
        }
        sent?.TrySetException(new IOException("the connection's output has failed", e));
    }

    /// <summary>Sends one batch and gives its buffer back to the pool once sent.</summary>
    private ValueTask Send(byte[] batch, int length) => socket is null ? SendToPipe(batch, length) : SendToSocket(batch, length);

    private ValueTask SendToPipe(byte[] batch, int length)
    {
        var flush = output.WriteAsync(batch.AsMemory(0, length));
        if (!flush.IsCompletedSuccessfully)
            return AwaitPipe(flush, batch);
        ArrayPool<byte>.Shared.Return(batch);
        return ValueTask.CompletedTask;
    }

    private static async ValueTask AwaitPipe(ValueTask<FlushResult> flush, byte[] batch)
    {
        try
        {
            await flush;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(batch);
        }
    }

    /// <summary>Sends what the kernel takes at once without waiting, the rest asynchronously.</summary>
    private ValueTask SendToSocket(byte[] batch, int length)
    {
        var sent = socket!.Send(batch, 0, length, SocketFlags.None, out var error);
        if (error is SocketError.Success or SocketError.WouldBlock && sent == length)
        {
            ArrayPool<byte>.Shared.Return(batch);
            return ValueTask.CompletedTask;
        }
        if (error is not (SocketError.Success or SocketError.WouldBlock))
        {
            ArrayPool<byte>.Shared.Return(batch);
            return ValueTask.FromException(new IOException($"send failed: {error}", new SocketException((int)error)));
        }
        var rest = batch.AsMemory(Math.Max(sent, 0), length - Math.Max(sent, 0));
        // Each side of the hand-over writes with a full fence (Interlocked) before it reads the other's field, so a
        // send that starts waiting while StopWaitingForReader runs is seen by one of them: the buffer grows for it.
        Interlocked.Exchange(ref _unsent, rest.Length);
        if (Volatile.Read(ref _handingOver) == 1)
            GrowSendBuffer(rest.Length);
        return SendRestAsync(rest, batch);
    }

    private async ValueTask SendRestAsync(ReadOnlyMemory<byte> rest, byte[] batch)
    {
        try
        {
            while (rest.Length > 0)
                rest = rest[await socket!.SendAsync(rest, SocketFlags.None)..];
        }
        catch (SocketException e)
        {
            throw new IOException($"send failed: {e.SocketErrorCode}", e); // as NetworkStream reports it
        }
        finally
        {
            Volatile.Write(ref _unsent, 0);
            ArrayPool<byte>.Shared.Return(batch);
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
}
