using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Tests.Support;

/// <summary>
/// An <see cref="IClientSocket"/> for actor specs: records every frame sent and every close, and lets a test wait
/// for the next frame (or close) with a timeout. Thread-safe: the connection actor writes from its dispatcher thread.
/// </summary>
public sealed class FakeClientSocket : IClientSocket
{
    // A ceiling, not a wait: generous so that a busy CI machine does not turn a slow pass into a failure.
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly BlockingCollection<byte[]> _unread = new();
    private readonly ConcurrentQueue<byte[]> _sent = new();
    private readonly ConcurrentQueue<(int Code, string Reason)> _closes = new();
    private readonly ConcurrentQueue<RoomEvent> _events = new();
    private readonly List<RoomEvent> _queued = new(); // queued events, not yet flushed
    private (long Below, Action Callback)? _drainWatch;
    private readonly TaskCompletionSource<(int Code, string Reason)> _firstClose = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>When set, <see cref="Send"/> and <see cref="Queue"/> throw it, so a test can make the connection actor fail.</summary>
    public Exception? ThrowOnSend { get; set; }

    /// <summary>Every frame sent so far, in order.</summary>
    public IReadOnlyList<byte[]> Sent => _sent.ToArray();

    /// <summary>Every call to <see cref="Close"/>, in order (the first is the one a real socket would honour).</summary>
    public IReadOnlyList<(int Code, string Reason)> Closes => _closes.ToArray();

    /// <summary>As the real socket's send loop: an answer goes out after the events queued before it.</summary>
    public bool Send(byte[] frame)
    {
        if (ThrowOnSend is { } e)
            throw e;
        Flush();
        Record(frame);
        return !_firstClose.Task.IsCompleted;
    }

    /// <summary>
    /// Event frames are recorded like any other once flushed (an actor that never flushes sends nothing);
    /// <see cref="SentEvents"/> keeps the events themselves.
    /// </summary>
    public bool Queue(RoomEvent e)
    {
        if (ThrowOnSend is { } error)
            throw error;
        lock (_queued)
            _queued.Add(e);
        return !_firstClose.Task.IsCompleted;
    }

    public void Flush()
    {
        RoomEvent[] flushed;
        lock (_queued)
        {
            flushed = _queued.ToArray();
            _queued.Clear();
        }
        foreach (var e in flushed)
        {
            _events.Enqueue(e);
            Record(e.Frame);
        }
    }

    private void Record(byte[] frame)
    {
        _sent.Enqueue(frame);
        _unread.Add(frame);
    }

    public IReadOnlyList<RoomEvent> SentEvents => _events.ToArray();

    /// <summary>What the actor sees as queued; a test sets it to stand in for a socket that is behind.</summary>
    public long QueuedBytes { get; set; }

    public void NotifyWhenBelow(long bytes, Action callback)
    {
        lock (_events)
            _drainWatch = (bytes, callback);
    }

    /// <summary>Stands in for the send loop writing: sets <see cref="QueuedBytes"/> and wakes a waiting actor if it fell low enough.</summary>
    public void Drain(long queuedBytes)
    {
        Action? wake = null;
        lock (_events)
        {
            QueuedBytes = queuedBytes;
            if (_drainWatch is { } watch && queuedBytes <= watch.Below)
                (wake, _drainWatch) = (watch.Callback, null);
        }
        wake?.Invoke();
    }

    private int _callVersion;

    /// <summary>Stands in for the transport's sweeper: makes the call at its time (unless replaced, cancelled or closed).</summary>
    public void CallAt(long atMs, Action<object>? callback, object? state)
    {
        var version = Interlocked.Increment(ref _callVersion);
        if (callback is null)
            return;
        _ = Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, atMs - Environment.TickCount64))).ContinueWith(_ =>
        {
            if (Volatile.Read(ref _callVersion) == version && !_firstClose.Task.IsCompleted)
                callback(state!);
        }, TaskScheduler.Default);
    }

    public void Close(int code, string reason)
    {
        _closes.Enqueue((code, reason));
        _firstClose.TrySetResult((code, reason));
    }

    /// <summary>The next frame not yet read by the test, as the exact array the actor sent.</summary>
    public byte[] NextBytes(TimeSpan? timeout = null)
    {
        var wait = timeout ?? DefaultTimeout;
        if (!_unread.TryTake(out var frame, wait))
            throw new TimeoutException($"no frame sent within {wait.TotalMilliseconds} ms");
        return frame;
    }

    /// <summary>The next frame not yet read by the test, parsed.</summary>
    public Frame NextFrame(TimeSpan? timeout = null) => Parse(NextBytes(timeout));

    /// <summary>The next frame, which must have <paramref name="type"/>.</summary>
    public Frame NextFrame(string type, TimeSpan? timeout = null)
    {
        var frame = NextFrame(timeout);
        if (frame.Type != type)
            throw new InvalidOperationException($"expected a \"{type}\" frame, got {frame.Raw}");
        return frame;
    }

    /// <summary>Fails if a frame is sent within <paramref name="window"/>.</summary>
    public void ExpectNoFrame(TimeSpan? window = null)
    {
        if (_unread.TryTake(out var frame, window ?? TimeSpan.FromMilliseconds(200)))
            throw new InvalidOperationException($"expected no frame, got {Encoding.UTF8.GetString(frame)}");
    }

    /// <summary>The first close, waiting for it if needed.</summary>
    public (int Code, string Reason) AwaitClose(TimeSpan? timeout = null)
    {
        var wait = timeout ?? DefaultTimeout;
        if (!_firstClose.Task.Wait(wait))
            throw new TimeoutException($"socket not closed within {wait.TotalMilliseconds} ms");
        return _firstClose.Task.Result;
    }

    public static Frame Parse(byte[] utf8)
    {
        using var document = JsonDocument.Parse(utf8);
        var root = document.RootElement.Clone();
        return new Frame(root.GetProperty("type").GetString()!, root, Encoding.UTF8.GetString(utf8));
    }
}
