using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Contracts;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// One bull pen. Its <see cref="RoomState"/> numbers events, serializes each once, keeps the history and the state
/// snapshot. The actor holds its subscribers as the relays that serve them (<see cref="RoomRelay"/>, one per node,
/// watched so a dead one is dropped), each with its connections, and hands each event's bytes once to every relay
/// that may deliver it: all of them, or for a private event those serving its owner.
/// A subscribe is answered, replayed and joined to the live stream in one turn, so nothing is lost or doubled
/// between them. When it has had no subscribers and no messages for the idle timeout, it asks its parent
/// (the <see cref="RoomRegistry"/>, or sharding's <c>Passivate</c> when sharded) to stop it.
/// <para>
/// With a durable store (<see cref="RoomSettings.Durable"/>) the room is event-sourced: an event is handed to the
/// journal and becomes visible (sent to subscribers, acknowledged to its publisher) only once the journal has stored
/// it, so nothing anyone saw is lost or renumbered by a crash. Its seq is its journal sequence number, its epoch is
/// stored with its first event, and a snapshot every <see cref="RoomSettings.SnapshotEvery"/> events (and when it
/// stops for idleness) holds its state and resume history, after which the journal before it is deleted. Writes go
/// out with <c>PersistAsync</c>, so the room keeps taking events while earlier ones are written, and the journal
/// batches them across rooms. When the store fails the room stops (telling its local parent, <see cref="RoomFailed"/>),
/// and its relays join it again.
/// </para>
/// </summary>
public sealed class RoomActor : ReceivePersistentActor, IWithTimers
{
    private RoomState _state;
    // The relays that deliver this room's events, one per node with subscribers, each with the connections it serves.
    private readonly Dictionary<IActorRef, RelayMembers> _relays = new();
    private int _subscribers;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TradeRoomMetrics _metrics;
    private readonly RoomSettings _settings;
    // Publishers of events handed to the journal and not yet confirmed, in order, with when each was handed over.
    private readonly Queue<(IActorRef Publisher, long HandedAt)> _writing = new();
    private readonly long _startedAt = TradeRoomMetrics.Now();
    private long _snapshotSeq;
    private bool _snapshotting;
    private bool _stopWhenSnapshotted;
    // Asked to stop (idle, or handed off): it stops once its writes in flight are done.
    private bool _stopping;
    private long _activity;
    private long _activityAtPassivation = -1;

    // Cluster mode: this node's room directory, told that the room runs here (room queries ask it).
    private readonly IActorRef? _directory;

    // Cluster mode: the address of this node, which room queries report.
    private readonly string? _node;

    // Cluster mode: the node's count of hosted rooms (rooms.max-rooms), whose slot this room holds until it stops.
    private readonly RoomSlots? _slots;

    // No message has reached this run of the room yet: the next one is the one that started it.
    private bool _awaitingFirst = true;
    // Cluster mode: this run was started by a subscribe that could not start rooms (its connection's
    // new-rooms-per-minute spent). It refused it and asked to stop; more such subscribes are refused until it has.
    private bool _startRefused;
    // Cluster mode: the retention sweeper that asked this run (which its PurgeIfStale started) to delete the room's
    // data, and whether the deletion runs now (the room stops only once it is done).
    private IActorRef? _purgeAskedBy;
    private bool _purging;

    public RoomActor(string bullPenId, RoomSettings settings, IActorRef? directory = null, RoomSlots? slots = null)
    {
        _directory = directory;
        _slots = slots;
        _node = settings.Sharded ? Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString() : null;
        _state = new RoomState(bullPenId, settings);
        _metrics = settings.Metrics;
        _settings = settings;
        PersistenceId = PersistenceIdOf(bullPenId);

        Recover<SnapshotOffer>(offer =>
        {
            _state = new RoomState(bullPenId, settings, (RoomSnapshot)offer.Snapshot, offer.Metadata.SequenceNr);
            _snapshotSeq = offer.Metadata.SequenceNr;
        });
        Recover<StoredEvent>(e => _state.Apply(e));
        Recover<RecoveryCompleted>(_ =>
        {
            if (_settings.Durable)
                _metrics.RoomRecovered(_startedAt);
            if (!_settings.Sharded)
                Context.Parent.Tell(new RoomReady(bullPenId));
            // A room no event has reached yet holds nothing worth keeping, so it goes sooner once nobody follows it:
            // subscribing to made-up ids cannot pile up idle rooms for the whole idle timeout.
            SetReceiveTimeout(_state.Seq == 0 && settings.EmptyRoomTimeout < settings.IdleTimeout ? settings.EmptyRoomTimeout : settings.IdleTimeout);
        });

        Command<RoutedEvent>(Publish);
        Command<RelaySubscribe>(OnSubscribe);
        Command<RelayJoin>(OnJoin);
        Command<PurgeIfStale>(OnPurgeIfStale);
        Command<PurgeDone>(OnPurgeDone);
        Command<RelayUnsubscribe>(u =>
        {
            _activity++;
            RemoveSubscriber(Sender, u.Connection);
        });
        Command<Terminated>(t => RemoveRelay(t.ActorRef));
        // Queries read the room without counting as activity, so looking at a room never keeps it alive.
        Command<GetRoomSummary>(_ => Sender.Tell(new RoomSummary(_state.BullPenId, _subscribers, _state.Seq, _state.Epoch, _node)));
        Command<GetRoomDetails>(_ => Sender.Tell(new RoomDetails(_state.BullPenId, _subscribers, _state.Seq, _state.Epoch,
            _state.StateJson(), _relays.Values.SelectMany(r => r.Users.Keys).Distinct().Order(StringComparer.Ordinal).ToArray(), _node)));
        Command<ReceiveTimeout>(_ =>
        {
            if (_subscribers > 0 || _activityAtPassivation == _activity)
                return;
            _activityAtPassivation = _activity;
            // Sharding buffers the room's messages from here until it has stopped, then starts it again for them.
            Context.Parent.Tell(_settings.Sharded ? new Akka.Cluster.Sharding.Passivate(StopIfIdle.Instance) : new RoomIdle(_state.BullPenId));
        });
        Command<StopIfIdle>(_ =>
        {
            if (!_settings.Sharded && (_subscribers > 0 || _activity != _activityAtPassivation))
            {
                Context.Parent.Tell(new PassivationCancelled(_state.BullPenId));
                return;
            }
            _log.Debug("Room {BullPenId} stops (idle, or handed to another node)", _state.BullPenId);
            _stopping = true;
            if (_purging)
                return; // it stops once its data is deleted
            if (_activity == 0)
            {
                // Nothing but a refused subscribe or a retention check reached this run: there is nothing to save.
                if (_purgeAskedBy is not null)
                    Purge();
                else
                    Context.Stop(Self);
                return;
            }
            if (_purgeAskedBy is not null)
            {
                // Used since the sweeper looked: not stale after all.
                _purgeAskedBy.Tell(new RetentionChecked(_state.BullPenId, Purged: false));
                _purgeAskedBy = null;
            }
            StopWhenWritten();
        });
        Command<SaveSnapshotSuccess>(saved =>
        {
            _snapshotting = false;
            _metrics.SnapshotSaved();
            var seq = saved.Metadata.SequenceNr;
            _snapshotSeq = Math.Max(_snapshotSeq, seq);
            // The snapshot holds the state and the resume history: nothing before it is needed any more.
            DeleteMessages(seq);
            if (seq > 1)
                DeleteSnapshots(new SnapshotSelectionCriteria(seq - 1));
            if (_stopWhenSnapshotted)
                Context.Stop(Self);
            else if (_state.Seq - _snapshotSeq >= _settings.SnapshotEvery)
                SaveSnapshotNow(); // events came faster than the snapshot was written: keep the journal within one interval
        });
        Command<SaveSnapshotFailure>(failed =>
        {
            _snapshotting = false;
            _metrics.StorageFailed(TradeRoomMetrics.StorageSnapshot, failed.Cause.Message);
            _log.Warning("Room {BullPenId} could not save its snapshot at seq {Seq}: {Reason}", TextRules.ForLog(_state.BullPenId),
                failed.Metadata.SequenceNr, failed.Cause.Message);
            if (_stopWhenSnapshotted)
                Context.Stop(Self);
            else
                Timers.StartSingleTimer(RetryHousekeeping.Instance, RetryHousekeeping.Instance, _settings.StoreMinBackoff);
        });
        // Deleting what a snapshot covers is housekeeping: a failure leaves rows behind for the next snapshot to take.
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(f =>
        {
            _log.Warning("Room {BullPenId} could not delete its journal up to {Seq}: {Reason}", TextRules.ForLog(_state.BullPenId),
                f.ToSequenceNr, f.Cause.Message);
            Timers.StartSingleTimer(RetryHousekeeping.Instance, RetryHousekeeping.Instance, _settings.StoreMinBackoff);
        });
        // A failed snapshot or delete is tried again (after persistence.restart-backoff.min), so a room that has gone
        // quiet still trims its journal: the snapshot of its head, whose success deletes what it covers.
        Command<RetryHousekeeping>(_ =>
        {
            if (_snapshotting)
                return;
            if (_state.Seq > _snapshotSeq)
                SaveSnapshotNow();
            else
                DeleteMessages(_snapshotSeq);
        });
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => _log.Warning("Room {BullPenId} could not delete old snapshots: {Reason}",
            TextRules.ForLog(_state.BullPenId), f.Cause.Message));
    }

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The memory provider keeps nothing, so there is nothing to recover.</summary>
    public override Recovery Recovery => _settings.Durable ? Recovery.Default : Recovery.None;

    public static Props Props(string bullPenId, RoomSettings settings, IActorRef? directory = null, RoomSlots? slots = null) =>
        Akka.Actor.Props.Create(() => new RoomActor(bullPenId, settings, directory, slots));

    /// <summary>The persistence id of a bull pen's journal and snapshots.</summary>
    public static string PersistenceIdOf(string bullPenId) => "room-" + bullPenId;

    /// <summary>Wall-clock milliseconds: history-ttl must count across restarts.</summary>
    private static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    protected override void PreStart()
    {
        _metrics.Rooms.Inc();
        _directory?.Tell(new RoomStarted(_state.BullPenId));
        base.PreStart();
    }

    protected override void PostStop()
    {
        _metrics.Rooms.Dec();
        _slots?.Release();
        base.PostStop();
    }

    /// <summary>Whether the message now handled is the first of this run, i.e. the one that started the room.</summary>
    private bool TakeFirst()
    {
        var first = _awaitingFirst;
        _awaitingFirst = false;
        return first;
    }

    private void Publish(RoutedEvent e)
    {
        TakeFirst();
        _activity++;
        if (!_settings.Durable)
        {
            Deliver(_state.Apply(e, NowMs), Sender);
            return;
        }
        _writing.Enqueue((Sender, TradeRoomMetrics.Now()));
        PersistAsync(_state.Record(e, NowMs), stored =>
        {
            var (publisher, handedAt) = _writing.Dequeue();
            _metrics.EventPersisted(handedAt);
            Deliver(_state.Apply(stored), publisher);
            if (_stopping)
                StopWhenWritten();
            else if (_state.Seq - _snapshotSeq >= _settings.SnapshotEvery && !_snapshotting)
                SaveSnapshotNow();
        });
    }

    /// <summary>
    /// Stops once no event is in flight, so every event handed to the journal is delivered and acknowledged (under
    /// sharding a hand-off stops a busy room, and a publisher told nothing would publish again); a durable room first
    /// saves a snapshot, which is then its whole story.
    /// </summary>
    private void StopWhenWritten()
    {
        if (_writing.Count > 0)
            return;
        if (_settings.Durable && _state.Seq > _snapshotSeq)
        {
            _stopWhenSnapshotted = true;
            if (!_snapshotting)
                SaveSnapshotNow();
        }
        else
        {
            Context.Stop(Self);
        }
    }

    private void Deliver(RoomEvent delivery, IActorRef publisher)
    {
        if (delivery.Seq == 1)
            SetReceiveTimeout(_settings.IdleTimeout);
        _metrics.EventPublished(delivery.Type);
        foreach (var (relay, members) in _relays)
        {
            // A private event goes only to the relays that serve its owner.
            if (delivery.VisibleTo is not null && !members.Users.ContainsKey(delivery.VisibleTo))
                continue;
            relay.Tell(delivery, ActorRefs.NoSender);
            if (members.OnOtherNode)
                _metrics.CrossNodeEventsSent?.Inc();
        }
        publisher.Tell(new EventPublished(_state.BullPenId, delivery.Seq));
    }

    /// <summary>
    /// Saves the state as of the last applied event. Told to the snapshot store directly, with that event's seq:
    /// <c>SaveSnapshot</c> would label it with the last seq handed to the journal, which runs ahead while writes are in flight.
    /// </summary>
    private void SaveSnapshotNow()
    {
        _snapshotting = true;
        SnapshotStore.Tell(new SaveSnapshot(new SnapshotMetadata(PersistenceId, _state.Seq, DateTime.UtcNow), _state.ToSnapshot(NowMs)), Self);
    }

    private void OnSubscribe(RelaySubscribe s)
    {
        var started = TakeFirst();
        if (!s.MayStart && (started || _startRefused) && _settings.Sharded)
        {
            RefuseStart(s);
            return;
        }
        _activity++;
        AddSubscriber(s.Relay, s.Connection, s.UserId);
        var replay = s.SinceSeq is { } sinceSeq ? _state.TryReplay(sinceSeq, s.Epoch, NowMs)?.Where(e => e.IsVisibleTo(s.UserId)).ToList() : null;
        if (s.SinceSeq is not null)
            _metrics.ResumeAttempted(recovered: replay is not null);
        var ack = new SubscribeAck(_state.BullPenId, _state.Seq, _state.Epoch, replay is not null, _state.StateJson(), replay?.Count ?? 0, started);
        s.Relay.Tell(new RelaySubscribed(s.Connection, ack, (IReadOnlyList<RoomEvent>?)replay ?? []));
    }

    /// <summary>
    /// A relay whose room stopped joins again with its connections, from the last event it got: it gets every event
    /// since (it filters them per connection), or, if the history no longer covers that, the state to start over from.
    /// </summary>
    private void OnJoin(RelayJoin j)
    {
        TakeFirst();
        _activity++;
        // A room that failed before its first event was stored knows no epoch of its own yet: its followers' one
        // stands, as long as they saw nothing (a room that had events and lost them must not number again under it).
        if (j.Epoch is not null && j.SinceSeq == 0)
            _state.AdoptEpoch(j.Epoch);
        foreach (var member in j.Members)
            AddSubscriber(j.Relay, member.Connection, member.UserId);
        var replay = _state.TryReplay(j.SinceSeq, j.Epoch, NowMs)?.ToList();
        j.Relay.Tell(new RelayJoined(_state.BullPenId, _state.Seq, _state.Epoch, replay is not null, _state.StateJson(),
            (IReadOnlyList<RoomEvent>?)replay ?? []));
    }

    /// <summary>
    /// Cluster mode: the connection has started its <c>limits.new-rooms-per-minute</c>, and this subscribe started the
    /// room. It is refused with <c>room_limit</c>, as the single-node registry refuses it, and the room asks to stop at
    /// once; with nothing else handled it stops without writing anything (see <c>StopIfIdle</c>). A connection with
    /// its budget spent so costs one short start per subscribe at most, and its subscribes are rate-limited.
    /// </summary>
    private void RefuseStart(RelaySubscribe s)
    {
        _metrics.RoomRefused(TradeRoomMetrics.RoomBudget);
        s.Relay.Tell(new RelayRefused(_state.BullPenId, s.Connection, ErrorCodes.RoomLimit,
            $"room \"{_state.BullPenId}\" is not running, and this connection has started its new rooms for the minute " +
            "(traderoom.limits.new-rooms-per-minute); subscribe again later, or to a room that is running"));
        if (_startRefused)
            return;
        _startRefused = true;
        Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(StopIfIdle.Instance));
    }

    /// <summary>
    /// Cluster mode, retention: the sweeper found this room's last event older than <c>rooms.retention</c>. Only a
    /// room this message started (one not running, so not in use) that is still where the sweeper saw it is purged,
    /// and only once sharding holds the room's messages: it asks to be passivated, and deletes when told to stop if
    /// nothing else reached it meanwhile (the messages sharding holds start it afresh afterwards, in a new epoch).
    /// </summary>
    private void OnPurgeIfStale(PurgeIfStale p)
    {
        var started = TakeFirst();
        if (!started || !_settings.Sharded || _settings.Store is null || p.Seq != _state.Seq)
        {
            Sender.Tell(new RetentionChecked(_state.BullPenId, Purged: false));
            if (started && _settings.Sharded)
                Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(StopIfIdle.Instance)); // started for nothing
            return;
        }
        _purgeAskedBy = Sender;
        Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(StopIfIdle.Instance));
    }

    /// <summary>Deletes every journal row and snapshot of the room, as the single-node registry's retention does.</summary>
    private void Purge()
    {
        _purging = true;
        _settings.Store!.PurgeAsync([_state.BullPenId])
            .PipeTo(Self, success: () => new PurgeDone(null), failure: e => new PurgeDone(e));
    }

    private void OnPurgeDone(PurgeDone done)
    {
        if (done.Failure is null)
            _log.Info("Retention deleted the data of room {BullPenId}, unused for {Retention}", TextRules.ForLog(_state.BullPenId), _settings.Retention);
        else
            _log.Warning("Retention could not delete the data of room {BullPenId}: {Reason}", TextRules.ForLog(_state.BullPenId), done.Failure.Message);
        _purgeAskedBy?.Tell(new RetentionChecked(_state.BullPenId, Purged: done.Failure is null));
        Context.Stop(Self);
    }

    private void AddSubscriber(IActorRef relay, IActorRef connection, string userId)
    {
        if (!_relays.TryGetValue(relay, out var members))
        {
            _relays[relay] = members = new RelayMembers(relay.Path.Address.HasGlobalScope);
            Context.Watch(relay);
        }
        if (members.Add(connection, userId))
            _subscribers++;
    }

    private void RemoveSubscriber(IActorRef relay, IActorRef connection)
    {
        if (!_relays.TryGetValue(relay, out var members) || !members.Remove(connection))
            return;
        _subscribers--;
        if (members.Connections.Count == 0)
        {
            _relays.Remove(relay);
            Context.Unwatch(relay);
        }
    }

    /// <summary>A relay stopped (its node left or died): its connections are gone from here.</summary>
    private void RemoveRelay(IActorRef relay)
    {
        if (_relays.Remove(relay, out var members))
            _subscribers -= members.Connections.Count;
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        StoreFailed(TradeRoomMetrics.StorageWrite, cause);
        base.OnPersistFailure(cause, @event, sequenceNr); // logs; the room then stops
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // The journal refused the event but took its sequence number: numbering would drift, so start over from the store.
        StoreFailed(TradeRoomMetrics.StorageWrite, cause);
        base.OnPersistRejected(cause, @event, sequenceNr);
        Context.Stop(Self);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        StoreFailed(TradeRoomMetrics.StorageRecovery, reason);
        base.OnRecoveryFailure(reason, message); // logs; the room then stops
    }

    /// <summary>
    /// Refuses every event still being written (none of them was delivered) and tells the local parent, which serves
    /// <c>storage_unavailable</c> for the room for a while. The room then stops; its relays join it again.
    /// </summary>
    private void StoreFailed(string operation, Exception cause)
    {
        _metrics.StorageFailed(operation, $"the rooms' store failed ({operation}): {cause.Message}");
        var why = $"room \"{_state.BullPenId}\" could not store the event: its store is unavailable ({cause.Message})";
        while (_writing.TryDequeue(out var writing))
            writing.Publisher.Tell(new PublishRejected(_state.BullPenId, ErrorCodes.StorageUnavailable, why));
        if (!_settings.Sharded)
            Context.Parent.Tell(new RoomFailed(_state.BullPenId));
    }

    private sealed record RetryHousekeeping
    {
        public static readonly RetryHousekeeping Instance = new();
    }

    private sealed record PurgeDone(Exception? Failure);

    /// <summary>The connections one relay serves here, and how many of them each user has (for private events).</summary>
    /// <param name="OnOtherNode">The relay runs on another node (its address is remote), so each event to it crosses the network.</param>
    private sealed class RelayMembers(bool OnOtherNode)
    {
        public bool OnOtherNode { get; } = OnOtherNode;

        public Dictionary<IActorRef, string> Connections { get; } = new();
        public Dictionary<string, int> Users { get; } = new(StringComparer.Ordinal);

        public bool Add(IActorRef connection, string userId)
        {
            if (!Connections.TryAdd(connection, userId))
                return false;
            Users[userId] = Users.GetValueOrDefault(userId) + 1;
            return true;
        }

        public bool Remove(IActorRef connection)
        {
            if (!Connections.Remove(connection, out var userId))
                return false;
            if (--Users[userId] == 0)
                Users.Remove(userId);
            return true;
        }
    }
}
