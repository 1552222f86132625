using System.Net.WebSockets;
using System.Text;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Protocol;

namespace TradeRoom.Server.WebSockets;

/// <summary>
/// The outbound half of one WebSocket: a queue bounded in bytes and one send loop that exists only while there is
/// something to send, so an idle socket holds no task and no buffer. All writes to the socket go through here,
/// one at a time. Bytes count against the budget from <see cref="Send"/> until the send loop has written them.
/// </summary>
internal sealed class ClientSocket(WebSocket webSocket, long queueLimit, TimeSpan closeTimeout) : IClientSocket
{
    private readonly object _gate = new();
    private readonly CancellationTokenSource _lifetime = new();
    private Queue<byte[]>? _queue;
    private long _queuedBytes;
    private bool _pumping;
    private string? _closeReason;
    private int _closeCode;
    private Task _pump = Task.CompletedTask;

    /// <summary>The close code this side sent or will send; 0 while none was asked for.</summary>
    public int CloseCode { get { lock (_gate) return _closeCode; } }

    public bool Send(byte[] frame)
    {
        bool startPump, accepted;
        lock (_gate)
        {
            if (_closeReason is not null)
                return false;
            accepted = _queuedBytes + frame.Length <= queueLimit;
            if (!accepted)
            {
                startPump = RequestCloseLocked(CloseCodes.SlowConsumer, "slow consumer");
            }
            else
            {
                (_queue ??= new Queue<byte[]>()).Enqueue(frame);
                _queuedBytes += frame.Length;
                startPump = ClaimPumpLocked();
            }
        }
        if (startPump)
            StartPump();
        return accepted;
    }

    public void Close(int code, string reason)
    {
        bool startPump;
        lock (_gate)
            startPump = RequestCloseLocked(code, reason);
        if (startPump)
            StartPump();
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) for queued frames and the close frame to be written.</summary>
    public async Task FlushAsync(TimeSpan timeout)
    {
        Task pump;
        lock (_gate)
            pump = _pump;
        await pump.WaitAsync(timeout).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>Stops the close timer; the socket is done.</summary>
    public void Dispose() => _lifetime.Cancel();

    private bool RequestCloseLocked(int code, string reason)
    {
        if (_closeReason is not null)
            return false;
        _closeCode = code;
        _closeReason = Truncate(reason);
        return ClaimPumpLocked();
    }

    private bool ClaimPumpLocked()
    {
        if (_pumping)
            return false;
        _pumping = true;
        return true;
    }

    private void StartPump()
    {
        var pump = PumpAsync();
        lock (_gate)
            _pump = pump;
    }

    private async Task PumpAsync()
    {
        try
        {
            while (true)
            {
                byte[]? frame = null;
                lock (_gate)
                {
                    if (_queue is { Count: > 0 })
                        frame = _queue.Dequeue();
                    else if (_closeReason is null)
                    {
                        _pumping = false;
                        return;
                    }
                }

                if (frame is not null)
                {
                    await webSocket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                    lock (_gate)
                        _queuedBytes -= frame.Length;
                    continue;
                }

                // Everything queued is written and a close was asked for: send it, then give the client a while to answer.
                if (webSocket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                    await webSocket.CloseOutputAsync((WebSocketCloseStatus)_closeCode, _closeReason, CancellationToken.None);
                _ = AbortIfNotClosedAsync();
                return;
            }
        }
        catch (Exception)
        {
            // The socket faulted or was aborted under us; the receive loop notices and stops the connection.
            lock (_gate)
            {
                _closeReason ??= "socket faulted";
                _queue = null;
                _queuedBytes = 0;
            }
            webSocket.Abort();
        }
    }

    private async Task AbortIfNotClosedAsync()
    {
        try
        {
            await Task.Delay(closeTimeout, _lifetime.Token);
            if (webSocket.State != WebSocketState.Closed)
                webSocket.Abort();
        }
        catch (OperationCanceledException)
        {
        }
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
