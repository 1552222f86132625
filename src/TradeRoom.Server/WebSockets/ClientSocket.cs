using System.Net.WebSockets;
using System.Text;
using TradeRoom.Actors;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Actors.Protocol;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Server.WebSockets;

/// <summary>
/// The outbound half of one WebSocket: a queue bounded in bytes and one send loop that exists only while there is
/// something to send, so an idle socket holds no task and no buffer. All writes to the socket go through here, one
/// at a time; frames queued together leave in one socket write. Bytes count against the budget from
/// <see cref="Send(byte[])"/> until the write that carries them has completed.
/// Slow consumers: over the budget for longer than the grace period (checked by <see cref="CheckHealth"/>) or
/// over the hard limit at any moment, the queue is dropped and the socket closed with 4008. While behind (more
/// than half the budget queued), a newer state event replaces the older one of the same room and type still queued.
/// Frames and bytes are counted once per socket write, the publish-to-write latency once per event frame.
/// </summary>
/// <param name="abortConnection">
/// Ends the transport itself (Kestrel's <c>ConnectionContext.Abort</c>). <see cref="WebSocket.Abort"/> alone only disposes
/// the stream: a send blocked on a client that never reads, and a receive waiting behind it (a pong), would hold the
/// connection and all its memory until the client leaves.
/// </param>
internal sealed class ClientSocket(WebSocket webSocket, DuplexPipeStream stream, TradeRoomSettings settings, Action? abortConnection = null) : IClientSocket
{
    /// <summary>Frames written together before a flush is forced.</summary>
    private const int MaxBatchBytes = 64 * 1024;

    private readonly object _gate = new();
    private Slot[] _slots = [];
    private int _head;
    private int _count;
    private int _live;
    private long _queuedBytes;
    private long _overBudgetSinceMs;
    private bool _pumping;
    private bool _handedOver;      // a slow consumer's close: the kernel takes every write (DuplexPipeStream.StopWaitingForReader)
    private bool _closeFrameSent;  // the close frame has been written (to the kernel, on a direct socket)
    private bool _closedByClient;
    private string? _closeReason;
    private int _closeCode;
    private long _notifyBelow;
    private Action? _onDrained;
    private CancellationTokenSource? _abortTimer;

    private struct Slot
    {
        public byte[]? Frame; // null once replaced by a newer state event
        public RoomEvent? Event;
    }

    public long QueuedBytes { get { lock (_gate) return _queuedBytes; } }

    /// <summary>The user this connection authenticated as (first success wins), for its close log line; set by the receive loop.</summary>
    public string? UserId { get; set; }

    /// <summary>
    /// How the socket ended, once it has: the close code (1006 when no close was ever sent or asked for: the
    /// connection dropped), the reason sent with it, and whether the client closed first.
    /// </summary>
    public (int Code, string Reason, bool ByClient) CloseInfo
    {
        get
        {
            lock (_gate)
                return _closeCode == 0 ? (CloseCodes.NoCloseFrame, "connection lost", true) : (_closeCode, _closeReason ?? "", _closedByClient);
        }
    }

    public bool Send(byte[] frame) => Enqueue(frame, null, moreComing: true);

    public bool Send(RoomEvent e, bool moreComing = false) => Enqueue(e.Frame, e, moreComing);

    public void NotifyWhenBelow(long bytes, Action callback)
    {
        bool now;
        lock (_gate)
        {
            now = _queuedBytes <= bytes && _closeReason is null;
            if (!now)
                (_notifyBelow, _onDrained) = (bytes, callback);
        }
        if (now)
            callback();
    }

    public void Close(int code, string reason) => Close(code, reason, byClient: false);

    /// <summary>The client sent a close frame: answer it (after what is queued) unless the server closed first.</summary>
    public void ClosedByClient(int code) => Close(code, "", byClient: true);

    private void Close(int code, string reason, bool byClient)
    {
        bool startPump;
        lock (_gate)
        {
            if (_closeReason is null)
                _closedByClient = byClient; // the first close wins
            startPump = RequestCloseLocked(code, reason, discardQueue: false);
        }
        if (startPump)
            StartPump();
    }

    /// <summary>Called by the sweeper: closes a socket that has been silent too long or over its budget too long.</summary>
    public void CheckHealth(long nowMs)
    {
        bool startPump;
        var slowConsumer = false;
        lock (_gate)
        {
            if (_closeReason is not null)
                return;
            if (_overBudgetSinceMs != 0 && nowMs - _overBudgetSinceMs > (long)settings.SlowConsumerGrace.TotalMilliseconds)
            {
                slowConsumer = true;
                startPump = RequestCloseLocked(CloseCodes.SlowConsumer, "slow consumer", discardQueue: true);
            }
            else if (nowMs - stream.LastReceivedMs > (long)settings.HeartbeatTimeout.TotalMilliseconds)
                startPump = RequestCloseLocked(CloseCodes.HeartbeatTimeout, "heartbeat timeout", discardQueue: false);
            else
                return;
        }
        if (slowConsumer)
            HandOverToKernel();
        if (startPump)
            StartPump();
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) for queued frames and the close frame to be written. Called once, when the socket ends.</summary>
    public async Task FlushAsync(TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Environment.TickCount64 < deadline)
        {
            lock (_gate)
            {
                if (!_pumping)
                    return;
            }
            await Task.Delay(10);
        }
    }

    /// <summary>The socket is done: stop the close timer.</summary>
    public void Dispose()
    {
        lock (_gate)
            _abortTimer?.Cancel();
    }

    private bool Enqueue(byte[] frame, RoomEvent? e, bool moreComing)
    {
        bool startPump;
        var slowConsumer = false;
        lock (_gate)
        {
            if (_closeReason is not null)
                return false;
            // Behind means more than half the budget waiting: a short burst to a reader that keeps up loses nothing.
            // The type is looked up only then, not on every delivery.
            if (e is not null && _queuedBytes > settings.OutboundQueueLimit / 2 && settings.ConflatedEventTypes.Contains(e.Type))
                DropOlderLocked(e);
            PushLocked(frame, e);
            _queuedBytes += frame.Length;
            if (_queuedBytes > settings.SlowConsumerHardLimit)
            {
                slowConsumer = true;
                startPump = RequestCloseLocked(CloseCodes.SlowConsumer, "slow consumer", discardQueue: true);
            }
            else
            {
                if (_queuedBytes > settings.OutboundQueueLimit && _overBudgetSinceMs == 0)
                    _overBudgetSinceMs = Environment.TickCount64;
                startPump = ClaimPumpLocked();
            }
        }
        if (slowConsumer)
            HandOverToKernel();
        if (startPump)
        {
            if (moreComing)
                StartPump();
            else
                _ = PumpAsync(); // nothing else is coming: write now, on this thread, and save a hop
        }
        return true;
    }

    private void PushLocked(byte[] frame, RoomEvent? e)
    {
        if (_count == _slots.Length)
        {
            var larger = new Slot[Math.Max(4, _slots.Length * 2)];
            for (var i = 0; i < _count; i++)
                larger[i] = _slots[(_head + i) % _slots.Length];
            (_slots, _head) = (larger, 0);
        }
        _slots[(_head + _count) % _slots.Length] = new Slot { Frame = frame, Event = e };
        _count++;
        _live++;
    }

    private byte[]? PopLocked() => PopLocked(out _);

    private byte[]? PopLocked(out RoomEvent? e)
    {
        e = null;
        while (_count > 0)
        {
            ref var slot = ref _slots[_head];
            var frame = slot.Frame;
            e = slot.Event;
            slot = default;
            _head = (_head + 1) % _slots.Length;
            _count--;
            if (frame is not null)
            {
                _live--;
                return frame;
            }
        }
        if (_slots.Length > 4)
            (_slots, _head) = ([], 0); // a burst is over: give back its memory
        e = null;
        return null;
    }

    /// <summary>Conflation: the newest queued state event of the same room and type is replaced by the one coming in.</summary>
    private void DropOlderLocked(RoomEvent newer)
    {
        for (var i = _count - 1; i >= 0; i--)
        {
            ref var slot = ref _slots[(_head + i) % _slots.Length];
            if (slot.Frame is not null && slot.Event is { } older && older.Type == newer.Type && older.BullPenId == newer.BullPenId)
            {
                _queuedBytes -= slot.Frame.Length;
                slot.Frame = null;
                _live--;
                return;
            }
        }
    }

    private bool RequestCloseLocked(int code, string reason, bool discardQueue)
    {
        if (_closeReason is not null)
            return false;
        _closeCode = code;
        _closeReason = Truncate(reason);
        if (discardQueue)
        {
            // A slow consumer gets no more of what it is behind on; it reconnects and resumes.
            while (PopLocked() is { } dropped)
                _queuedBytes -= dropped.Length;
        }
        _onDrained = null;
        // Whatever happens to the frames still queued, the socket is gone within the close timeout.
        _abortTimer = new CancellationTokenSource();
        _ = AbortAfterCloseTimeoutAsync(_abortTimer.Token);
        return ClaimPumpLocked();
    }

    private bool ClaimPumpLocked()
    {
        if (_pumping)
            return false;
        _pumping = true;
        return true;
    }

    /// <summary>
    /// The send loop runs after the current work item on the same thread (preferLocal), so an actor that queues
    /// several frames in one turn has them all written, and flushed once, by one run of the loop. (A frame with
    /// nothing behind it is written at once instead, by <see cref="Enqueue"/>.)
    /// </summary>
    private void StartPump() =>
        ThreadPool.UnsafeQueueUserWorkItem(static socket => _ = socket.PumpAsync(), this, preferLocal: true);

    private async Task PumpAsync()
    {
        long unflushed = 0;
        var unflushedEvents = 0;
        long writtenAt = 0;
        try
        {
            while (true)
            {
                byte[]? frame;
                RoomEvent? e;
                bool more;
                lock (_gate)
                {
                    frame = PopLocked(out e);
                    more = _live > 0;
                    if (frame is null && _closeReason is null)
                    {
                        _pumping = false;
                        return;
                    }
                }

                if (frame is null)
                {
                    // Frames written since the last flush (a close cut a batch short) leave with the close frame.
                    Metrics.Written(unflushedEvents, unflushed);
                    stream.Corked = false;
                    var sent = false;
                    if (webSocket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                    {
                        await webSocket.CloseOutputAsync((WebSocketCloseStatus)_closeCode, _closeReason, CancellationToken.None);
                        sent = true;
                    }
                    lock (_gate)
                        (_closeFrameSent, _pumping) = (sent, false);
                    return;
                }

                unflushed += frame.Length;
                stream.Corked = more && unflushed < MaxBatchBytes;
                await webSocket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                if (e is not null)
                {
                    unflushedEvents++;
                    if (writtenAt == 0)
                        writtenAt = TradeRoomMetrics.Now(); // one clock read per batch
                    Metrics.Delivered(e.PublishedAt, writtenAt);
                }
                if (stream.Corked)
                    continue;
                Metrics.Written(unflushedEvents, unflushed);
                Written(unflushed);
                (unflushed, unflushedEvents, writtenAt) = (0, 0, 0);
            }
        }
        catch (Exception)
        {
            // The socket faulted or was aborted under us; the receive loop notices and stops the connection.
            // Frames already batched (a close the WebSocket sent by itself, say) still go, if the socket takes them.
            stream.Corked = false;
            try
            {
                await stream.SendBatchAsync();
            }
            catch (Exception)
            {
                // the socket is gone: nothing more can reach the client
            }
            lock (_gate)
            {
                _closeReason ??= "socket faulted";
                while (PopLocked() is not null)
                {
                }
                _queuedBytes = 0;
                _pumping = false;
            }
            Abort();
        }
    }

    private TradeRoomMetrics Metrics => settings.Connections.Metrics;

    /// <summary>Bytes have left for the network: take them off the budget and wake whoever waits for room.</summary>
    private void Written(long bytes)
    {
        Action? drained = null;
        lock (_gate)
        {
            _queuedBytes -= bytes;
            if (_queuedBytes <= settings.OutboundQueueLimit)
                _overBudgetSinceMs = 0;
            if (_onDrained is not null && _queuedBytes <= _notifyBelow)
                (drained, _onDrained) = (_onDrained, null);
        }
        drained?.Invoke();
    }

    private async Task AbortAfterCloseTimeoutAsync(CancellationToken cancel)
    {
        try
        {
            await Task.Delay(settings.CloseTimeout, cancel);
            Abort();
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// A slow consumer's close: what it is behind on is dropped, but the write in progress was cut at a point the
    /// client has not read up to, and the close frame comes after it. The kernel takes both at once (the socket's
    /// send buffer grows for them), so they no longer wait in the server for a reader that may come back only after
    /// the close timeout has ended the connection, and keeps them for the client for <c>slow-consumer-linger</c>;
    /// see <see cref="Abort"/>.
    /// </summary>
    private void HandOverToKernel()
    {
        var handedOver = stream.StopWaitingForReader(settings.SlowConsumerLinger);
        lock (_gate)
            _handedOver = handedOver;
    }

    /// <summary>
    /// Ends the WebSocket and the connection under it, whatever state either is in: nothing more is sent or received.
    /// Aborting the connection resets it, and the kernel drops what it still holds for the client. Except after a
    /// slow consumer's close whose close frame the kernel took: then only our output ends, with a FIN after what the
    /// kernel holds, and the connection ends as when the client answers the close (the receive loop stops, the
    /// handler returns, the transport closes the socket). A client that reads again later still gets whole frames
    /// and the close frame, within <c>slow-consumer-linger</c> of the close.
    /// </summary>
    private void Abort()
    {
        bool inOrder;
        lock (_gate)
            inOrder = _handedOver && _closeFrameSent;
        if (inOrder)
            inOrder = stream.EndOutputInOrder();
        if (webSocket.State != WebSocketState.Closed)
            webSocket.Abort();
        if (!inOrder)
            abortConnection?.Invoke();
    }

    private static string Truncate(string reason)
    {
        // A close frame's reason is at most 123 bytes of UTF-8.
        if (Encoding.UTF8.GetByteCount(reason) <= 123)
            return reason;
        var cut = reason;
        while (Encoding.UTF8.GetByteCount(cut) > 120)
            cut = cut[..^1];
        return cut + "…";
    }
}
