using Akka.Actor;
using Akka.Event;
using TradeRoom.Actors.Storage;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// Retention in cluster mode, run by one node at a time (a cluster singleton on the server role): every
/// <c>rooms.retention-sweep-interval</c>, and once when it starts, it lists from the store the rooms whose last event
/// is older than <c>rooms.retention</c>, a page at a time, and sends each a <see cref="PurgeIfStale"/> through the
/// shard region. The room itself decides and deletes (see <see cref="RoomActor"/>): it is the one writer of its
/// journal, and sharding holds its other messages while it deletes, so no start of the room can race the deletion.
/// The next page is asked once every room of this one has answered. A page whose answers stop coming (a node lost
/// meanwhile) is given up at the next tick, and the sweep starts over.
/// </summary>
public sealed class RetentionSweeper : ReceiveActor, IWithTimers
{
    /// <summary>Stale rooms asked per page: as many rooms start at once across the cluster to check and delete.</summary>
    private const int Page = 500;

    private readonly IActorRef _rooms;
    private readonly RoomStore _store;
    private readonly TimeSpan _retention;
    private readonly TimeSpan _interval;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    // The page being checked: rooms asked and not yet answered. Null between sweeps.
    private HashSet<string>? _waiting;
    private string? _pageLast;
    private bool _pageFull;
    private bool _answeredSinceTick;
    private int _purged;

    public RetentionSweeper(IActorRef rooms, RoomStore store, TimeSpan retention, TimeSpan interval)
    {
        (_rooms, _store, _retention, _interval) = (rooms, store, retention, interval);

        Receive<Tick>(_ =>
        {
            if (_waiting is not null)
            {
                if (_answeredSinceTick)
                {
                    _answeredSinceTick = false;
                    return; // still answering: let it go on
                }
                _log.Warning("Retention: {Rooms} rooms did not answer since the last sweep; sweeping again", _waiting.Count);
            }
            _purged = 0;
            NextPage(after: null);
        });
        Receive<StalePage>(OnStalePage);
        Receive<Status.Failure>(f =>
        {
            _waiting = null;
            _log.Warning("Retention could not list old rooms: {Reason}", f.Cause.Message);
        });
        Receive<RetentionChecked>(c =>
        {
            if (_waiting is null || !_waiting.Remove(c.BullPenId))
                return;
            _answeredSinceTick = true;
            if (c.Purged)
                _purged++;
            if (_waiting.Count == 0)
                PageDone();
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef rooms, RoomStore store, TimeSpan retention, TimeSpan interval) =>
        Akka.Actor.Props.Create(() => new RetentionSweeper(rooms, store, retention, interval));

    protected override void PreStart() => Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, TimeSpan.Zero, _interval);

    private void NextPage(string? after)
    {
        _waiting = [];
        _answeredSinceTick = false;
        _store.StaleRoomsAsync(DateTime.UtcNow - _retention, Page, after)
            .PipeTo(Self, success: rooms => new StalePage(rooms));
    }

    private void OnStalePage(StalePage page)
    {
        _waiting = page.Rooms.Select(r => r.BullPenId).ToHashSet(StringComparer.Ordinal);
        _pageFull = page.Rooms.Count == Page;
        _pageLast = page.Rooms.Count > 0 ? page.Rooms[^1].BullPenId : null;
        foreach (var room in page.Rooms)
            _rooms.Tell(new PurgeIfStale(room.BullPenId, room.Seq), Self);
        if (_waiting.Count == 0)
            PageDone();
    }

    private void PageDone()
    {
        if (_pageFull)
        {
            NextPage(_pageLast);
            return;
        }
        _waiting = null;
        if (_purged > 0)
            _log.Info("Retention deleted the data of {Rooms} rooms unused for {Retention}", _purged, _retention);
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record StalePage(IReadOnlyList<StaleRoom> Rooms);
}
