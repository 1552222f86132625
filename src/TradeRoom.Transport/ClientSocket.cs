using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using TradeRoom.Protocol;

namespace TradeRoom.Transport;

/// <summary>
/// The outbound half of one WebSocket: a queue bounded in bytes and one send loop that exists only while there is
/// something to send, so an idle socket holds no task and no buffer. Every frame the server sends goes through here
/// (the WebSocket's own pings, pongs and close go straight to the same writer). Bytes count against the budget from
/// <see cref="Send(byte[])"/> or <see cref="Queue"/> until the flush that carries them has completed.
/// Slow consumers: over the budget for longer than the grace period (checked by <see cref="CheckHealth"/>) or
/// over the hard limit at any moment, the queue is dropped and the socket closed with 4008. While behind (more
/// than half the budget queued), a newer state event replaces the older one of the same room and type still queued.
/// One send loop drains the queue into the connection's <see cref="FrameWriter"/> and flushes it explicitly: when
/// the queue is empty (its batch is done) or the next frame would take it past <c>write-buffer-size</c>. Events are
/// queued (<see cref="Queue"/>) and written when their sender says its batch is done (<see cref="Flush"/>): the
/// frames a connection's actor queues before its flush leave in one socket write, and no write path depends on
/// which thread runs it.
/// Frames and bytes are counted once per flush, the publish-to-write latency once per event frame.
/// </summary>
public sealed class ClientSocket : IDisposable, IThreadPoolWorkItem
{
    private readonly WebSocket _webSocket;
    private readonly DuplexPipeStream _stream;
    private readonly TransportOptions _options;
    private readonly ITransportMetrics _metrics;
    // Ends the transport itself (Kestrel's ConnectionContext.Abort). WebSocket.Abort alone only disposes the stream:
    // a send blocked on a client that never reads, and a receive waiting behind it (a pong), would hold the
    // connection and all its memory until the client leaves.
    private readonly Action? _abortConnection;

    private readonly object _gate = new();
    private Slot[] _slots = [];
    private int _head;
    private int _count;
    private int _live;
    private long _queuedBytes;
    private long _overBudgetSinceMs;
    private bool _pumping;
    private bool _handedOver;      // a slow consumer's close: the kernel takes every write (FrameWriter.StopWaitingForReader)
    private bool _closeFrameSent;  // the close frame has been written (to the kernel, on a direct socket)
    private bool _closedByClient;
    private string? _closeReason;
    private int _closeCode;
    private long _notifyBelow;
    private Action? _onDrained;
    private CancellationTokenSource? _abortTimer;
    // Kept here and checked by the sweeper, rather than a timer per socket (a timer costs every connection ~0.3 KB).
    private long _lastPingMs;
    private bool _pingDue;
    private long _callAtMs;
    private Action<object>? _callback;
    private object? _callbackState;

    /// <summary>A WebSocket ping frame (FIN, opcode 9) with no payload.</summary>
    private static readonly byte[] PingFrame = [0x89, 0x00];

    internal ClientSocket(WebSocket webSocket, DuplexPipeStream stream, TransportOptions options, ITransportMetrics metrics, Action? abortConnection = null)
    {
        _webSocket = webSocket;
        _stream = stream;
        _options = options;
        _metrics = metrics;
        _abortConnection = abortConnection;
        _lastPingMs = Environment.TickCount64;
    }

    private struct Slot
    {
        public OutboundFrame Frame; // Bytes null once replaced by a newer state event
    }

    /// <summary>Bytes queued and not yet handed to the kernel.</summary>
    public long QueuedBytes { get { lock (_gate) return _queuedBytes; } }

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

    /// <summary>Queues one complete frame (an answer or error); it leaves after the current work item. False when the socket is closing.</summary>
    public bool Send(byte[] frame)
    {
        if (!Enqueue(new OutboundFrame(frame)))
            return false;
        if (ClaimPump())
            StartPump();
        return true;
    }

    /// <summary>
    /// Queues one frame; nothing is written until <see cref="Flush"/> (or until a send loop already running reaches
    /// it). While the socket is behind, a newer state event (per <c>conflated-event-types</c>) replaces the older one
    /// of the same room and type still queued. False when the socket is closing.
    /// </summary>
    public bool Queue(in OutboundFrame frame) => Enqueue(frame);

    /// <summary>
    /// Writes what is queued: the send loop starts on this thread, unless it is already running (then it takes the
    /// queued frames after its current write). The caller's batch is done: the frames it queued leave in one write.
    /// </summary>
    public void Flush()
    {
        if (ClaimPump())
            _ = PumpAsync();
    }

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

    /// <summary>Sends the frames already queued, then a close frame with <paramref name="code"/>. Idempotent: the first close wins.</summary>
    public void Close(int code, string reason) => Close(code, reason, byClient: false);

    /// <summary>
    /// Calls <paramref name="callback"/>(<paramref name="state"/>) once, from the sweeper, when <paramref name="atMs"/>
    /// (<see cref="Environment.TickCount64"/>) has passed: at most one sweep later. One call waits at a time: a new one
    /// replaces it, and a null <paramref name="callback"/> cancels it. A closing socket makes no call.
    /// </summary>
    public void CallAt(long atMs, Action<object>? callback, object? state)
    {
        lock (_gate)
            (_callAtMs, _callback, _callbackState) = (atMs, callback, callback is null ? null : state);
    }

    /// <summary>
    /// Called by the sweeper: closes a socket that has been silent too long or over its budget too long, pings it
    /// every <c>ping-interval</c>, and makes the call asked by <see cref="CallAt"/> once it is due.
    /// </summary>
    public void CheckHealth(long nowMs)
    {
        bool startPump;
        var slowConsumer = false;
        Action<object>? call = null;
        object? callState = null;
        lock (_gate)
        {
            if (_closeReason is not null)
                return;
            if (_overBudgetSinceMs != 0 && nowMs - _overBudgetSinceMs > (long)_options.SlowConsumerGrace.TotalMilliseconds)
            {
                slowConsumer = true;
                startPump = RequestCloseLocked(CloseCodes.SlowConsumer, "slow consumer", discardQueue: true);
            }
            else if (nowMs - _stream.LastReceivedMs > (long)_options.HeartbeatTimeout.TotalMilliseconds)
                startPump = RequestCloseLocked(CloseCodes.HeartbeatTimeout, "heartbeat timeout", discardQueue: false);
            else
            {
                if (_callback is not null && nowMs >= _callAtMs)
                {
                    (call, callState) = (_callback, _callbackState);
                    (_callback, _callbackState) = (null, null);
                }
                startPump = false;
                if (nowMs - _lastPingMs >= (long)_options.PingInterval.TotalMilliseconds)
                {
                    // The send loop writes the ping between two frames (with whatever else is queued, or alone).
                    (_lastPingMs, _pingDue) = (nowMs, true);
                    startPump = ClaimPumpLocked();
                }
            }
        }
        if (slowConsumer)
            HandOverToKernel();
        if (startPump)
            StartPump();
        call?.Invoke(callState!);
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) for queued frames and the close frame to be written. Called once, when the socket ends.</summary>
    public async Task WaitUntilWrittenAsync(TimeSpan timeout)
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

    /// <summary>Queues a frame against the budget; over the hard limit, the socket closes as a slow consumer instead.</summary>
    private bool Enqueue(in OutboundFrame frame)
    {
        var slowConsumer = false;
        var startPump = false;
        lock (_gate)
        {
            if (_closeReason is not null)
                return false;
            // Behind means more than half the budget waiting: a short burst to a reader that keeps up loses nothing.
            // The type is looked up only then, not on every delivery.
            if (frame.EventType is not null && _queuedBytes > _options.OutboundQueueLimit / 2 && _options.ConflatedEventTypes.Contains(frame.EventType))
                DropOlderLocked(frame);
            PushLocked(frame);
            _queuedBytes += frame.Bytes.Length;
            if (_queuedBytes > _options.SlowConsumerHardLimit)
            {
                slowConsumer = true;
                startPump = RequestCloseLocked(CloseCodes.SlowConsumer, "slow consumer", discardQueue: true);
            }
            else if (_queuedBytes > _options.OutboundQueueLimit && _overBudgetSinceMs == 0)
                _overBudgetSinceMs = Environment.TickCount64;
        }
        if (slowConsumer)
            HandOverToKernel();
        if (startPump)
            StartPump();
        return true;
    }

    /// <summary>Claims the send loop for frames just queued; never once closing, when the close has its own loop (<see cref="RequestCloseLocked"/>).</summary>
    private bool ClaimPump()
    {
        lock (_gate)
            return _closeReason is null && ClaimPumpLocked();
    }

    private void PushLocked(in OutboundFrame frame)
    {
        if (_count == _slots.Length)
        {
            var larger = new Slot[Math.Max(4, _slots.Length * 2)];
            for (var i = 0; i < _count; i++)
                larger[i] = _slots[(_head + i) % _slots.Length];
            (_slots, _head) = (larger, 0);
        }
        _slots[(_head + _count) % _slots.Length] = new Slot { Frame = frame };
        _count++;
        _live++;
    }

    private bool TryPopLocked(out OutboundFrame frame)
    {
        while (_count > 0)
        {
            ref var slot = ref _slots[_head];
            frame = slot.Frame;
            slot = default;
            _head = (_head + 1) % _slots.Length;
            _count--;
            if (frame.Bytes is not null)
            {
                _live--;
                return true;
            }
        }
        if (_slots.Length > 4)
            (_slots, _head) = ([], 0); // a burst is over: give back its memory
        frame = default;
        return false;
    }

    /// <summary>Conflation: the newest queued state event of the same room and type is replaced by the one coming in.</summary>
    private void DropOlderLocked(in OutboundFrame newer)
    {
        for (var i = _count - 1; i >= 0; i--)
        {
            ref var slot = ref _slots[(_head + i) % _slots.Length];
            if (slot.Frame.Bytes is { } older && slot.Frame.EventType == newer.EventType && slot.Frame.BullPenId == newer.BullPenId)
            {
                _queuedBytes -= older.Length;
                slot.Frame = default;
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
            while (TryPopLocked(out var dropped))
                _queuedBytes -= dropped.Bytes.Length;
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
    /// For what is not the caller's batch (an answer, a ping, a close): the send loop runs after the current work item
    /// on the same thread (preferLocal), so what the caller queues meanwhile leaves with it. (A batch's end starts
    /// the loop at once instead, see <see cref="Flush"/>.) The socket is its own work item: nothing is allocated per
    /// start (a callback and state would take a wrapper object each time).
    /// </summary>
    private void StartPump() => ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);

    void IThreadPoolWorkItem.Execute() => _ = PumpAsync();

    /// <summary>
    /// Moves queued frames into the writer and flushes it when the queue is empty (the batch is done) or when the next
    /// frame would take it past <c>write-buffer-size</c>; bytes leave the budget once their flush has completed. With
    /// nothing queued and a close asked, writes the close frame last. One loop at a time (<see cref="_pumping"/>).
    /// </summary>
    private async Task PumpAsync()
    {
        var writer = _stream.Writer;
        long unflushed = 0;
        var unflushedEvents = 0;
        long writtenAt = 0;
        var pinged = false; // a ping appended and not yet flushed
        try
        {
            while (true)
            {
                OutboundFrame frame;
                bool ping;
                lock (_gate)
                {
                    (ping, _pingDue) = (_pingDue, false);
                    frame = default;
                    if (!ping && !TryPopLocked(out frame) && unflushed == 0 && !pinged && _closeReason is null)
                    {
                        _pumping = false;
                        return;
                    }
                }

                if (ping)
                {
                    // Not counted against the budget: two bytes, at most one per ping-interval.
                    if (_webSocket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                    {
                        writer.Append(PingFrame);
                        pinged = true;
                    }
                    continue;
                }

                if (frame.Bytes is { } bytes)
                {
                    if (unflushed > 0 && unflushed + bytes.Length > _options.WriteBufferSize)
                    {
                        await writer.FlushAsync();
                        Written(unflushedEvents, unflushed);
                        (unflushed, unflushedEvents, writtenAt, pinged) = (0, 0, 0, false);
                    }
                    // The WebSocket closed by itself (a protocol error: it sent its own close) or was aborted: no frame may follow.
                    if (unflushed == 0 && _webSocket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
                        throw new WebSocketException(WebSocketError.InvalidState, $"the WebSocket is {_webSocket.State}");
                    writer.AppendText(bytes);
                    unflushed += bytes.Length;
                    if (frame.EventType is not null)
                    {
                        unflushedEvents++;
                        if (writtenAt == 0)
                            writtenAt = Stopwatch.GetTimestamp(); // one clock read per batch
                        _metrics.Delivered(frame.PublishedAt, writtenAt);
                    }
                    continue;
                }

                if (unflushed > 0 || pinged)
                {
                    // The queue is empty: the batch is done. Frames queued meanwhile start the next one.
                    await writer.FlushAsync();
                    if (unflushed > 0)
                        Written(unflushedEvents, unflushed);
                    (unflushed, unflushedEvents, writtenAt, pinged) = (0, 0, 0, false);
                    continue;
                }

                // Nothing queued, nothing unflushed, a close asked: the close frame goes last, through the WebSocket,
                // which then knows it has sent it (no keep-alive ping after it, no second close).
                var sent = false;
                if (_webSocket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await _webSocket.CloseOutputAsync((WebSocketCloseStatus)_closeCode, _closeReason, CancellationToken.None);
                    sent = true;
                }
                lock (_gate)
                    (_closeFrameSent, _pumping) = (sent, false);
                return;
            }
        }
        catch (Exception)
        {
            // The socket faulted or was aborted under us; the receive loop notices and stops the connection.
            lock (_gate)
            {
                _closeReason ??= "socket faulted";
                while (TryPopLocked(out _))
                {
                }
                _queuedBytes = 0;
                _pumping = false;
            }
            Abort();
        }
    }

    /// <summary>A flush has completed: count it, take its bytes off the budget and wake whoever waits for room.</summary>
    private void Written(int eventFrames, long bytes)
    {
        _metrics.Written(eventFrames, bytes);
        Action? drained = null;
        lock (_gate)
        {
            _queuedBytes -= bytes;
            if (_queuedBytes <= _options.OutboundQueueLimit)
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
            await Task.Delay(_options.CloseTimeout, cancel);
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
        var handedOver = _stream.Writer.StopWaitingForReader(_options.SlowConsumerLinger);
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
            inOrder = _stream.Writer.EndOutputInOrder();
        if (_webSocket.State != WebSocketState.Closed)
            _webSocket.Abort();
        if (!inOrder)
            _abortConnection?.Invoke();
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
