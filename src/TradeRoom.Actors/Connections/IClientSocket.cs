namespace TradeRoom.Actors.Connections;

/// <summary>
/// The outbound side of one client socket, as its <see cref="ConnectionActor"/> sees it. Implementations never
/// block the caller: frames go into a bounded queue drained by one send loop.
/// </summary>
public interface IClientSocket
{
    /// <summary>Queues one complete frame. False when the socket is closing or the frame did not fit its budget.</summary>
    bool Send(byte[] frame);

    /// <summary>Sends the frames already queued, then a close frame with <paramref name="code"/>. Idempotent: the first close wins.</summary>
    void Close(int code, string reason);
}
