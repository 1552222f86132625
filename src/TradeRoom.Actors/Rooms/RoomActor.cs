using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Actors.Protocol;
using TradeRoom.Contracts;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// One bull pen. Its <see cref="RoomState"/> numbers events, serializes each once, keeps the history and the state
/// snapshot; the actor holds the subscribers (connection actors, watched so a dead one is dropped) and hands each
/// event's bytes to those who may see it: everyone, or for a private event only its owner's connections.
/// A subscribe is answered, replayed and joined to the live stream in one turn, so nothing is lost or doubled
/// between them. When it has had no subscribers and no messages for the idle timeout, it asks its parent
/// (<see cref="RoomRegistry"/>) to stop it.
/// <para>
/// With a durable store (<see cref="RoomSettings.Durable"/>) the room is event-sourced: an event is handed to the
/// journal and becomes visible (sent to subscribers, acknowledged to its publisher) only once the journal has stored
/// it, so nothing anyone saw is lost or renumbered by a crash. Its seq is its journal sequence number, its epoch is
/// stored with its first event, and a snapshot every <see cref="RoomSettings.SnapshotEvery"/> events (and when it
/// stops for idleness) holds its state and resume history, after which the journal before it is deleted. Writes go
/// out with <c>PersistAsync</c>, so the room keeps taking events while earlier ones are written, and the journal
/// batches them across rooms. When the store fails the room hands its followers to its parent and stops
/// (<see cref="RoomFailed"/>).
/// </para>
/// </summary>
public sealed class RoomActor : ReceivePersistentActor
{
    private RoomState _state;
    private readonly Dictionary<IActorRef, string> _subscribers = new();
    private readonly Dictionary<string, List<IActorRef>> _subscribersByUser = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TradeRoomMetrics _metrics;
    private readonly RoomSettings _settings;
    // Publishers of events handed to the journal and not yet confirmed, in order, with when each was handed over.
    private readonly Queue<(IActorRef Publisher, long HandedAt)> _writing = new();
    private readonly long _startedAt = TradeRoomMetrics.Now();
    private long _snapshotSeq;
    private bool _snapshotting;
    private bool _stopWhenSnapshotted;
    private long _activity;
    private long _activityAtPassivation = -1;

    public RoomActor(string bullPenId, RoomSettings settings)
    {
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
            Context.Parent.Tell(new RoomReady(bullPenId));
            // A room no event has reached yet holds nothing worth keeping, so it goes sooner once nobody follows it:
            // subscribing to made-up ids cannot pile up idle rooms for the whole idle timeout.
            SetReceiveTimeout(_state.Seq == 0 && settings.EmptyRoomTimeout < settings.IdleTimeout ? settings.EmptyRoomTimeout : settings.IdleTimeout);
        });

        Command<RoutedEvent>(Publish);
        Command<Subscribe>(OnSubscribe);
        Command<Rejoin>(OnRejoin);
        Command<Unsubscribe>(u =>
        {
            _activity++;
            RemoveSubscriber(u.Subscriber);
            u.Subscriber.Tell(new UnsubscribeAck(_state.BullPenId));
        });
        Command<Terminated>(t => RemoveSubscriber(t.ActorRef));
        // Queries read the room without counting as activity, so looking at a room never keeps it alive.
        Command<GetRoomSummary>(_ => Sender.Tell(new RoomSummary(_state.BullPenId, _subscribers.Count, _state.Seq, _state.Epoch)));
        Command<GetRoomDetails>(_ => Sender.Tell(new RoomDetails(_state.BullPenId, _subscribers.Count, _state.Seq, _state.Epoch,
            _state.StateJson(), _subscribersByUser.Keys.Order(StringComparer.Ordinal).ToArray())));
        Command<ReceiveTimeout>(_ =>
        {
            if (_subscribers.Count > 0 || _activityAtPassivation == _activity)
                return;
            _activityAtPassivation = _activity;
            Context.Parent.Tell(new RoomIdle(_state.BullPenId));
        });
        Command<StopIfIdle>(_ =>
        {
            if (_subscribers.Count > 0 || _activity != _activityAtPassivation)
            {
                Context.Parent.Tell(new PassivationCancelled(_state.BullPenId));
                return;
            }
            _log.Debug("Room {BullPenId} stopped after being idle", _state.BullPenId);
            // Idle means no event in flight: the snapshot taken now is the room's whole story.
            if (_settings.Durable && _state.Seq > _snapshotSeq && _writing.Count == 0)
            {
                _stopWhenSnapshotted = true;
                if (!_snapshotting)
                    SaveSnapshotNow();
            }
            else
            {
                Context.Stop(Self);
            }
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
        });
        // Deleting what a snapshot covers is housekeeping: a failure leaves rows behind for the next snapshot to take.
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(f => _log.Warning("Room {BullPenId} could not delete its journal up to {Seq}: {Reason}",
            TextRules.ForLog(_state.BullPenId), f.ToSequenceNr, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => _log.Warning("Room {BullPenId} could not delete old snapshots: {Reason}",
            TextRules.ForLog(_state.BullPenId), f.Cause.Message));
    }

    public override string PersistenceId { get; }

    /// <summary>The memory provider keeps nothing, so there is nothing to recover.</summary>
    public override Recovery Recovery => _settings.Durable ? Recovery.Default : Recovery.None;

    public static Props Props(string bullPenId, RoomSettings settings) =>
        Akka.Actor.Props.Create(() => new RoomActor(bullPenId, settings));

    /// <summary>The persistence id of a bull pen's journal and snapshots.</summary>
    public static string PersistenceIdOf(string bullPenId) => "room-" + bullPenId;

    /// <summary>Wall-clock milliseconds: history-ttl must count across restarts.</summary>
    private static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    protected override void PreStart()
    {
        _metrics.Rooms.Inc();
        base.PreStart();
    }

    protected override void PostStop()
    {
        _metrics.Rooms.Dec();
        _metrics.Subscriptions.Dec(_subscribers.Count);
        base.PostStop();
    }

    private void Publish(RoutedEvent e)
    {
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
            if (_state.Seq - _snapshotSeq >= _settings.SnapshotEvery && !_snapshotting)
                SaveSnapshotNow();
        });
    }

    private void Deliver(RoomEvent delivery, IActorRef publisher)
    {
        if (delivery.Seq == 1)
            SetReceiveTimeout(_settings.IdleTimeout);
        _metrics.EventPublished(delivery.Type);
        if (delivery.VisibleTo is null)
        {
            foreach (var subscriber in _subscribers.Keys)
                subscriber.Tell(delivery, ActorRefs.NoSender);
        }
        else if (_subscribersByUser.TryGetValue(delivery.VisibleTo, out var owners))
        {
            foreach (var owner in owners)
                owner.Tell(delivery, ActorRefs.NoSender);
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

    private void OnSubscribe(Subscribe s)
    {
        _activity++;
        AddSubscriber(s.Subscriber, s.UserId);
        var replay = s.SinceSeq is { } sinceSeq ? Replay(sinceSeq, s.Epoch, s.UserId) : null;
        if (s.SinceSeq is not null)
            _metrics.ResumeAttempted(recovered: replay is not null);
        s.Subscriber.Tell(new SubscribeAck(_state.BullPenId, _state.Seq, _state.Epoch, replay is not null, _state.StateJson(), replay?.Count ?? 0));
        if (replay is null)
            return;
        foreach (var missed in replay)
            s.Subscriber.Tell(missed, ActorRefs.NoSender);
    }

    /// <summary>
    /// Followers of an incarnation that lost its store. They saw nothing after <see cref="Rejoin.Seq"/>, so each gets
    /// what it missed since then; one whose position cannot be replayed starts over, like a failed resume.
    /// </summary>
    private void OnRejoin(Rejoin r)
    {
        _state.AdoptEpoch(r.Epoch);
        foreach (var follower in r.Followers)
        {
            AddSubscriber(follower.Connection, follower.UserId);
            if (Replay(r.Seq, r.Epoch, follower.UserId) is { } missed)
            {
                foreach (var e in missed)
                    follower.Connection.Tell(e, ActorRefs.NoSender);
            }
            else
            {
                follower.Connection.Tell(new SubscribeAck(_state.BullPenId, _state.Seq, _state.Epoch, false, _state.StateJson()));
            }
        }
        Sender.Tell(new Rejoined(_state.BullPenId));
    }

    private List<RoomEvent>? Replay(long sinceSeq, string? epoch, string userId) =>
        _state.TryReplay(sinceSeq, epoch, NowMs)?.Where(e => e.IsVisibleTo(userId)).ToList();

    private void AddSubscriber(IActorRef subscriber, string userId)
    {
        if (!_subscribers.TryAdd(subscriber, userId))
            return;
        Context.Watch(subscriber);
        _metrics.Subscriptions.Inc();
        if (!_subscribersByUser.TryGetValue(userId, out var connections))
            _subscribersByUser[userId] = connections = new List<IActorRef>(1);
        connections.Add(subscriber);
    }

    private void RemoveSubscriber(IActorRef subscriber)
    {
        if (!_subscribers.Remove(subscriber, out var userId))
            return;
        Context.Unwatch(subscriber);
        _metrics.Subscriptions.Dec();
        var connections = _subscribersByUser[userId];
        connections.Remove(subscriber);
        if (connections.Count == 0)
            _subscribersByUser.Remove(userId);
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        StoreFailed(TradeRoomMetrics.StorageWrite, cause, knowsPosition: true);
        base.OnPersistFailure(cause, @event, sequenceNr); // logs; the room then stops
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // The journal refused the event but took its sequence number: numbering would drift, so start over from the store.
        StoreFailed(TradeRoomMetrics.StorageWrite, cause, knowsPosition: true);
        base.OnPersistRejected(cause, @event, sequenceNr);
        Context.Stop(Self);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        StoreFailed(TradeRoomMetrics.StorageRecovery, reason, knowsPosition: false);
        base.OnRecoveryFailure(reason, message); // logs; the room then stops
    }

    /// <summary>
    /// Refuses every event still being written (none of them was delivered) and hands the followers, with what they
    /// have seen, to the parent, which serves <c>storage_unavailable</c> for the room until it is back.
    /// </summary>
    private void StoreFailed(string operation, Exception cause, bool knowsPosition)
    {
        _metrics.StorageFailed(operation, $"the rooms' store failed ({operation}): {cause.Message}");
        var why = $"room \"{_state.BullPenId}\" could not store the event: its store is unavailable ({cause.Message})";
        while (_writing.TryDequeue(out var writing))
            writing.Publisher.Tell(new PublishRejected(_state.BullPenId, ErrorCodes.StorageUnavailable, why));
        var followers = _subscribers.Select(s => new Follower(s.Key, s.Value)).ToArray();
        Context.Parent.Tell(knowsPosition
            ? new RoomFailed(_state.BullPenId, followers, _state.Seq, _state.Epoch)
            : new RoomFailed(_state.BullPenId, followers, null, null));
    }
}
