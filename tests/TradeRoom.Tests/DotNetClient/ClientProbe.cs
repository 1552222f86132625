using TradeRoom.Client;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.DotNetClient;

/// <summary>Records what a <see cref="TradeRoomClient"/> reports and what one of its rooms delivers, for the tests to wait on and check.</summary>
public sealed class ClientProbe
{
    private readonly object _gate = new();
    private readonly List<StateChange> _states = [];
    private readonly List<CloseInfo> _closes = [];
    private readonly List<TradeRoomError> _errors = [];
    private readonly List<AuthInfo> _auths = [];
    private readonly List<SubscribedInfo> _subscribes = [];
    private readonly List<EventFrame> _events = [];

    public ClientProbe(TradeRoomClient client)
    {
        client.StateChanged += s => Add(_states, s);
        client.Closed += c => Add(_closes, c);
        client.Error += e => Add(_errors, e);
        client.Authenticated += a => Add(_auths, a);
    }

    public IReadOnlyList<StateChange> States => Copy(_states);
    public IReadOnlyList<CloseInfo> Closes => Copy(_closes);
    public IReadOnlyList<TradeRoomError> Errors => Copy(_errors);
    public IReadOnlyList<AuthInfo> Auths => Copy(_auths);
    public IReadOnlyList<SubscribedInfo> Subscribes => Copy(_subscribes);
    public IReadOnlyList<EventFrame> Events => Copy(_events);
    public IReadOnlyList<long> Seqs => Events.Select(e => e.Seq).ToList();

    /// <summary>Records the room's <c>subscribed</c> answers and events (call it in the room's setup).</summary>
    public void Follow(Room room)
    {
        room.OnSubscribed(s => Add(_subscribes, s));
        room.OnEvent(e => Add(_events, e));
    }

    /// <summary>Polls until <paramref name="condition"/> holds (never a fixed sleep).</summary>
    public async Task WaitAsync(Func<ClientProbe, bool> condition, string what, TimeSpan? timeout = null) =>
        await Eventually.MatchAsync(() => Task.FromResult(condition(this)), done => done,
            $"{what} (states {string.Join(",", States.Select(s => s.State))}; closes {string.Join(",", Closes.Select(c => c.Code))}; errors {string.Join("; ", Errors)})",
            timeout ?? TimeSpan.FromSeconds(20));

    private void Add<T>(List<T> list, T item)
    {
        lock (_gate)
            list.Add(item);
    }

    private IReadOnlyList<T> Copy<T>(List<T> list)
    {
        lock (_gate)
            return list.ToList();
    }
}
