using TradeRoom.Actors.Rooms;

namespace TradeRoom.Actors.Connections;

/// <summary>
/// The outbound side of one client socket, as its <see cref="ConnectionActor"/> sees it. Implementations never
/// block the caller: frames go into a queue bounded in bytes and drained by one send loop. A connection that
/// stays over its budget is closed as a slow consumer (4008).
/// </summary>
public interface IClientSocket
{
    /// <summary>Queues one complete frame (an answer or error). False when the socket is closing.</summary>
    bool Send(byte[] frame);

    /// <summary>
    /// Queues an event's frame; it is written at the next <see cref="Flush"/>. While the socket is behind, a newer
    /// state event (per the conflation setting) replaces the older one of the same room and type still queued.
    /// False when the socket is closing.
    /// </summary>
    bool Queue(RoomEvent e);

    /// <summary>Writes the events queued so far, in one go: the caller's batch is done. Writing starts on the calling thread.</summary>
    void Flush();

    /// <summary>Bytes queued and not yet written.</summary>
    long QueuedBytes { get; }

    /// <summary>Calls <paramref name="callback"/> once, from the send loop, when the queue has fallen to <paramref name="bytes"/> or below.</summary>
    void NotifyWhenBelow(long bytes, Action callback);

    /// <summary>
    /// Calls <paramref name="callback"/>(<paramref name="state"/>) once when <see cref="Environment.TickCount64"/> has
    /// reached <paramref name="atMs"/>, up to one sweep of the socket's health checks later (at most 1 s). One call waits
    /// at a time: a new one replaces it; a null callback cancels it. A closing socket makes no call.
    /// </summary>
    void CallAt(long atMs, Action<object>? callback, object? state);

    /// <summary>Sends the frames already queued, then a close frame with <paramref name="code"/>. Idempotent: the first close wins.</summary>
    void Close(int code, string reason);
}
