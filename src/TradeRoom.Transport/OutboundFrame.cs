namespace TradeRoom.Transport;

/// <summary>
/// One frame to send: its payload (a complete UTF-8 JSON message, shared by every socket it goes to) and, for an
/// event, what conflation and the delivery metrics need: its room, its type and when its room published it
/// (a <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>; 0: not stamped). An answer or error has no type.
/// </summary>
public readonly record struct OutboundFrame(byte[] Bytes, string? BullPenId = null, string? EventType = null, long PublishedAt = 0);

/// <summary>Where the transport counts what it writes (the server's metrics); one per server, not per socket.</summary>
public interface ITransportMetrics
{
    /// <summary>One flush: <paramref name="eventFrames"/> event frames among <paramref name="bytes"/> bytes of payload.</summary>
    void Written(int eventFrames, long bytes);

    /// <summary>An event stamped at <paramref name="publishedAt"/> was written at <paramref name="writtenAt"/> (both Stopwatch timestamps).</summary>
    void Delivered(long publishedAt, long writtenAt);
}
