using System.Text.Json;

namespace TradeRoom.Client;

/// <summary>
/// One followed bull pen, made by <see cref="TradeRoomClient.Subscribe(string, Action{Room}?)"/>. It keeps the room's
/// epoch and position across reconnects and resumes from them, and calls its handlers once per event, in order.
/// </summary>
public sealed class Room
{
    internal enum LinkState { None, Subscribing, Subscribed, Unsubscribing }

    internal readonly record struct SentSubscribe(long? SinceSeq, int Life);

    private readonly TradeRoomClient _client;

    // Everything below is guarded by the client's lock.
    internal string? EpochValue;
    internal long? PositionValue;
    internal bool Wanted = true;                  // the application follows this room
    internal LinkState Link = LinkState.None;     // on the current connection
    internal SentSubscribe? Sent;                 // the subscribe in flight
    internal int Life;                            // +1 on every unsubscribe: answers to older requests are not resumes
    internal TradeRoomError? RefusedBy;           // the server refused the subscribe: not resubscribed until Subscribe()
    internal List<TaskCompletionSource> UnsubscribeWaiters = [];
    internal List<Action<SubscribedInfo>> SubscribedHandlers = [];
    internal List<Action<EventFrame>> EventHandlers = [];
    internal Dictionary<string, List<Action<EventFrame>>> TypeHandlers = new(StringComparer.Ordinal);

    internal Room(TradeRoomClient client, string bullPenId)
    {
        _client = client;
        BullPenId = bullPenId;
    }

    public string BullPenId { get; }

    /// <summary>The last seq seen (null before the first <c>subscribed</c>).</summary>
    public long? Position { get { lock (_client.Sync) return PositionValue; } }

    /// <summary>The room's epoch from the last <c>subscribed</c> (null before it).</summary>
    public string? Epoch { get { lock (_client.Sync) return EpochValue; } }

    /// <summary>Whether the room is subscribed on the current connection.</summary>
    public bool IsSubscribed { get { lock (_client.Sync) return Wanted && Link == LinkState.Subscribed; } }

    /// <summary>
    /// The server's error if it refused this room's subscribe (<c>too_many_subscriptions</c>, <c>room_limit</c>,
    /// <c>forbidden</c>, <c>authorization_unavailable</c>, <c>storage_unavailable</c>, …), else null. A refused room is
    /// not subscribed again, not even after a reconnect, until <see cref="TradeRoomClient.Subscribe(string, Action{Room}?)"/> asks again.
    /// </summary>
    public TradeRoomError? Refused { get { lock (_client.Sync) return RefusedBy; } }

    /// <summary>
    /// Calls <paramref name="handler"/> after every <c>subscribed</c>: the first (always <c>Recovered = false</c>:
    /// draw the room from its state) and the one after each reconnect (<c>Recovered = false</c> again when the server
    /// could not resume: redraw). Dispose the result to remove it.
    /// </summary>
    public IDisposable OnSubscribed(Action<SubscribedInfo> handler) => Add(SubscribedHandlers, handler);

    /// <summary>Calls <paramref name="handler"/> for every event of the room, once, in order. Dispose the result to remove it.</summary>
    public IDisposable OnEvent(Action<EventFrame> handler) => Add(EventHandlers, handler);

    /// <summary>Calls <paramref name="handler"/> for every event of <paramref name="eventType"/>. Dispose the result to remove it.</summary>
    public IDisposable On(string eventType, Action<EventFrame> handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        ArgumentNullException.ThrowIfNull(handler);
        lock (_client.Sync)
        {
            if (!TypeHandlers.TryGetValue(eventType, out var list))
                TypeHandlers[eventType] = list = [];
            return Add(list, handler);
        }
    }

    /// <summary>
    /// Calls <paramref name="handler"/> with the data of every event of <typeparamref name="T"/>'s type
    /// (<c>room.On&lt;OrderExecuted&gt;((order, frame) =&gt; …)</c>). Data that does not fit <typeparamref name="T"/>
    /// is reported on <see cref="TradeRoomClient.Error"/> as <c>invalid_payload</c> and the handler is not called.
    /// </summary>
    public IDisposable On<T>(Action<T, EventFrame> handler) where T : ITradeRoomEvent => On(T.EventType, handler);

    /// <summary>Calls <paramref name="handler"/> with the data of every event of <paramref name="eventType"/>, read as <typeparamref name="T"/> (e.g. the platform's own record).</summary>
    public IDisposable On<T>(string eventType, Action<T, EventFrame> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return On(eventType, frame =>
        {
            T? data;
            try
            {
                data = frame.Data.Deserialize<T>(Json.Options);
            }
            catch (JsonException e)
            {
                _client.ReportPayloadError(frame, typeof(T), e);
                return;
            }
            if (data is null)
            {
                _client.ReportPayloadError(frame, typeof(T), null);
                return;
            }
            handler(data, frame);
        });
    }

    /// <summary>
    /// Stops following the room: no callback of the room starts after this call, its position and handlers are
    /// forgotten, and the task completes on the server's <c>unsubscribed</c> (at once when the client is not running;
    /// while disconnected it is sent after the next <c>auth_success</c>). Subscribing again later starts afresh.
    /// </summary>
    public Task UnsubscribeAsync() => _client.Unsubscribe(this);

    internal void Forget()
    {
        Life++;
        RefusedBy = null;
        SubscribedHandlers = [];
        EventHandlers = [];
        TypeHandlers = new Dictionary<string, List<Action<EventFrame>>>(StringComparer.Ordinal);
        EpochValue = null;
        PositionValue = null;
    }

    private IDisposable Add<T>(List<T> list, T handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_client.Sync)
            list.Add(handler);
        return new Remover(() =>
        {
            lock (_client.Sync)
                list.Remove(handler);
        });
    }

    private sealed class Remover(Action remove) : IDisposable
    {
        private Action? _remove = remove;

        public void Dispose() => Interlocked.Exchange(ref _remove, null)?.Invoke();
    }
}
