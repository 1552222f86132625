using System.Collections.Frozen;
using System.Diagnostics;
using Prometheus;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Monitoring;

/// <summary>
/// The server's Prometheus metrics, in a registry of their own (one per host, so servers sharing a process, as the
/// tests do, never mix their counts). Every labelled series is resolved once here, so that counting on a hot path
/// is one interlocked add on a field: no label lookup, no allocation.
/// </summary>
public sealed class TradeRoomMetrics
{
    /// <summary>Publish-to-socket-write latency buckets, in seconds: 0.5 ms to 10 s.</summary>
    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly double SecondsPerTick = 1.0 / Stopwatch.Frequency;

    /// <summary>The auth failure reasons counted (<c>reason</c> label).</summary>
    public static readonly IReadOnlyList<string> AuthFailureReasons =
        [ErrorCodes.InvalidToken, ErrorCodes.TokenExpired, AuthTimeout, ErrorCodes.TooManyConnections];

    /// <summary>The <c>reason</c> of an auth failure for a connection that never authenticated in time.</summary>
    public const string AuthTimeout = "timeout";

    /// <summary>Close codes and their readable names (<c>code</c> and <c>reason</c> labels); any other code counts as <c>other</c>.</summary>
    public static readonly IReadOnlyDictionary<int, string> CloseReasons = new Dictionary<int, string>
    {
        [CloseCodes.Normal] = "normal",
        [CloseCodes.GoingAway] = "going_away",
        [CloseCodes.UnsupportedData] = "unsupported_data",
        [CloseCodes.NoCloseFrame] = "abnormal",
        [CloseCodes.PolicyViolation] = "rate_limit",
        [CloseCodes.MessageTooBig] = "message_too_big",
        [CloseCodes.InternalError] = "internal_error",
        [CloseCodes.HeartbeatTimeout] = "heartbeat_timeout",
        [CloseCodes.AuthenticationFailed] = "auth_failed",
        [CloseCodes.SlowConsumer] = "slow_consumer",
        [CloseCodes.TooManyConnections] = "too_many_connections",
    }.ToFrozenDictionary();

    private readonly FrozenDictionary<string, Counter.Child> _eventsByType;
    private readonly FrozenDictionary<string, Counter.Child> _authFailures;
    private readonly FrozenDictionary<int, Counter.Child> _closes;
    private readonly Counter.Child _otherCloses;
    private readonly Counter.Child _resumeRecovered;
    private readonly Counter.Child _resumeNotRecovered;
    private readonly Counter _framesDelivered;
    private readonly Counter _bytesSent;
    private readonly Histogram _deliveryLatency;

    public TradeRoomMetrics()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        factory.ExemplarBehavior = ExemplarBehavior.NoExemplars();
        DotNetStats.Register(Registry); // process CPU, memory, GC and thread counts, read at each scrape

        OpenConnections = factory.CreateGauge("traderoom_connections_open", "WebSocket connections open (handshake done, not yet closed).");
        AuthenticatedConnections = factory.CreateGauge("traderoom_connections_authenticated", "Open connections that have authenticated.");
        Rooms = factory.CreateGauge("traderoom_rooms", "Room actors running.");
        Subscriptions = factory.CreateGauge("traderoom_subscriptions", "Subscriptions of connections to rooms.");

        var events = factory.CreateCounter("traderoom_events_published_total", "Events published into rooms, by event type.", ["type"]);
        _eventsByType = EventTypes.All.ToFrozenDictionary(t => t, t => events.WithLabels(t), StringComparer.Ordinal);
        _framesDelivered = factory.CreateCounter("traderoom_frames_delivered_total", "Event frames written to client sockets (one per event per subscriber that received it).");
        _bytesSent = factory.CreateCounter("traderoom_bytes_sent_total", "Bytes of frames (events and answers) written to client sockets, without WebSocket framing.");

        var auth = factory.CreateCounter("traderoom_auth_failures_total", "Connections refused at authentication, by reason.", ["reason"]);
        _authFailures = AuthFailureReasons.ToFrozenDictionary(r => r, r => auth.WithLabels(r), StringComparer.Ordinal);

        var closes = factory.CreateCounter("traderoom_connections_closed_total", "Connections closed, by close code (1006: dropped without a close frame).", ["code", "reason"]);
        _closes = CloseReasons.OrderBy(c => c.Key).ToFrozenDictionary(c => c.Key, c => closes.WithLabels(c.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), c.Value));
        _otherCloses = closes.WithLabels("other", "other");

        var resumes = factory.CreateCounter("traderoom_resume_attempts_total", "Subscribes with sinceSeq, by outcome: recovered (missed events replayed) or not_recovered (history gone or another epoch).", ["outcome"]);
        _resumeRecovered = resumes.WithLabels("recovered");
        _resumeNotRecovered = resumes.WithLabels("not_recovered");

        var refused = factory.CreateCounter("traderoom_rooms_refused_total",
            "Rooms not started, by reason: room_cap (rooms.max-rooms reached) or connection_budget (limits.new-rooms-per-minute spent).", ["reason"]);
        _roomsRefusedCap = refused.WithLabels(RoomCap);
        _roomsRefusedBudget = refused.WithLabels(RoomBudget);

        _journalWrite = factory.CreateHistogram("traderoom_journal_write_seconds",
            "Time from a room handing an event to its journal to the journal confirming it stored (durable providers only).",
            new HistogramConfiguration { Buckets = LatencyBuckets });
        _eventsPersisted = factory.CreateCounter("traderoom_events_persisted_total", "Events the journal stored.");
        _journalTransactions = factory.CreateCounter("traderoom_journal_transactions_total",
            "Write transactions the store committed (group commit, SQLite; events, snapshots and deletes together): traderoom_events_persisted_total divided by this is events per transaction.");
        _snapshots = factory.CreateCounter("traderoom_snapshots_total", "Room snapshots saved.");
        _recoveryTime = factory.CreateHistogram("traderoom_room_recovery_seconds",
            "Time a room took to recover its state from its snapshot and journal when it started; the count is the number of recoveries.",
            new HistogramConfiguration { Buckets = LatencyBuckets });
        var storageFailures = factory.CreateCounter("traderoom_journal_failures_total",
            "Failures of the rooms' store, by operation: write (an event), recovery (a room starting), snapshot.", ["operation"]);
        _storageFailures = new[] { StorageWrite, StorageRecovery, StorageSnapshot }
            .ToFrozenDictionary(o => o, o => storageFailures.WithLabels(o), StringComparer.Ordinal);

        _deliveryLatency = factory.CreateHistogram("traderoom_delivery_latency_seconds",
            "Time from an event's publish (when its room numbered it) to the socket write that carried it; a replayed event counts its age.",
            new HistogramConfiguration { Buckets = LatencyBuckets });
    }

    public const string StorageWrite = "write";
    public const string StorageRecovery = "recovery";
    public const string StorageSnapshot = "snapshot";

    private readonly Histogram _journalWrite;
    private readonly Counter _eventsPersisted;
    private readonly Counter _snapshots;
    private readonly Counter _journalTransactions;
    private readonly Histogram _recoveryTime;
    private readonly FrozenDictionary<string, Counter.Child> _storageFailures;
    private volatile string? _storageProblem;

    /// <summary>Why the store is failing, from its last failure until its next success; null while it works.</summary>
    public string? StorageProblem => _storageProblem;

    /// <summary>The journal stored an event handed to it at <paramref name="startedAt"/> (<see cref="Now"/>).</summary>
    public void EventPersisted(long startedAt)
    {
        _eventsPersisted.Inc();
        _journalWrite.Observe((Stopwatch.GetTimestamp() - startedAt) * SecondsPerTick);
        if (_storageProblem is not null)
            _storageProblem = null;
    }

    public void SnapshotSaved() => _snapshots.Inc();

    /// <summary>The journal committed one write transaction (<see cref="Storage.GroupCommitJournal"/>).</summary>
    public void JournalTransactionCommitted() => _journalTransactions.Inc();

    /// <summary>Cluster mode only (<see cref="AddClusterCounters"/>): events sent to relays on other nodes.</summary>
    public Counter? CrossNodeEventsSent { get; private set; }

    /// <summary>Cluster mode only: events this node's relays received from rooms on other nodes.</summary>
    public Counter? CrossNodeEventsReceived { get; private set; }

    /// <summary>The cross-node counters, registered in cluster mode only (single-node /metrics shows no cluster metric).</summary>
    public void AddClusterCounters()
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        CrossNodeEventsSent = factory.CreateCounter("traderoom_cluster_events_sent_total",
            "Cluster mode: events this node's rooms sent to relays on other nodes (one per event per node with subscribers).");
        CrossNodeEventsReceived = factory.CreateCounter("traderoom_cluster_events_received_total",
            "Cluster mode: events this node's relays received from rooms on other nodes.");
    }

    /// <summary>A room recovered, having started at <paramref name="startedAt"/> (<see cref="Now"/>).</summary>
    public void RoomRecovered(long startedAt)
    {
        _recoveryTime.Observe((Stopwatch.GetTimestamp() - startedAt) * SecondsPerTick);
        if (_storageProblem is not null)
            _storageProblem = null;
    }

    /// <summary>The store failed at <paramref name="operation"/> (<see cref="StorageWrite"/>, …) for <paramref name="reason"/>.</summary>
    public void StorageFailed(string operation, string reason)
    {
        _storageFailures[operation].Inc();
        _storageProblem = reason;
    }

    public const string RoomCap = "room_cap";
    public const string RoomBudget = "connection_budget";

    private readonly Counter.Child _roomsRefusedCap;
    private readonly Counter.Child _roomsRefusedBudget;

    /// <summary>A room was not started: <see cref="RoomCap"/> or <see cref="RoomBudget"/>.</summary>
    public void RoomRefused(string reason) => (reason == RoomCap ? _roomsRefusedCap : _roomsRefusedBudget).Inc();

    /// <summary>For actors built outside a host (TestKit specs): counts nobody scrapes.</summary>
    public static TradeRoomMetrics Unexported { get; } = new();

    public CollectorRegistry Registry { get; }

    public Gauge OpenConnections { get; }
    public Gauge AuthenticatedConnections { get; }
    public Gauge Rooms { get; }
    public Gauge Subscriptions { get; }

    /// <summary>Events published since start, all types.</summary>
    public long EventsPublished
    {
        get
        {
            double sum = 0;
            foreach (var counter in _eventsByType.Values)
                sum += counter.Value;
            return (long)sum;
        }
    }

    /// <summary>Event frames written to sockets since start.</summary>
    public long FramesDelivered => (long)_framesDelivered.Value;

    /// <summary>A timestamp (<see cref="Stopwatch.GetTimestamp"/>) to stamp an event with when its room publishes it.</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    public void EventPublished(string type)
    {
        if (_eventsByType.TryGetValue(type, out var counter))
            counter.Inc();
    }

    /// <summary>One socket write (a batch): <paramref name="eventFrames"/> event frames among <paramref name="bytes"/> bytes.</summary>
    public void Written(int eventFrames, long bytes)
    {
        if (eventFrames > 0)
            _framesDelivered.Inc(eventFrames);
        if (bytes > 0)
            _bytesSent.Inc(bytes);
    }

    /// <summary>An event stamped at <paramref name="publishedAt"/> was written at <paramref name="now"/> (both <see cref="Now"/>).</summary>
    public void Delivered(long publishedAt, long now)
    {
        if (publishedAt != 0)
            _deliveryLatency.Observe((now - publishedAt) * SecondsPerTick);
    }

    public void AuthFailed(string reason)
    {
        if (_authFailures.TryGetValue(reason, out var counter))
            counter.Inc();
    }

    public void Closed(int code) => (_closes.TryGetValue(code, out var counter) ? counter : _otherCloses).Inc();

    /// <summary>The readable name of a close code, as the <c>reason</c> label has it.</summary>
    public static string CloseReason(int code) => CloseReasons.TryGetValue(code, out var reason) ? reason : "other";

    public void ResumeAttempted(bool recovered) => (recovered ? _resumeRecovered : _resumeNotRecovered).Inc();
}
