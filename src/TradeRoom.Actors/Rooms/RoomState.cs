using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// A room's rules, apart from any actor: numbering events, the bounded history kept for resume, and the state
/// derived from the events (leaderboard, room status, members) that a subscriber gets on subscribe.
/// </summary>
public sealed class RoomState
{
    private readonly RoomSettings _settings;
    private readonly Queue<(RoomEvent Event, long AtMs)> _history = new();
    private readonly OrderedDictionary<string, bool> _members = new(StringComparer.Ordinal);
    private byte[]? _leaderboard;
    private byte[]? _room;
    private byte[]? _stateJson;

    public RoomState(string bullPenId, RoomSettings settings)
    {
        BullPenId = bullPenId;
        _settings = settings;
        Epoch = NewEpoch();
    }

    /// <summary>The state a snapshot holds, taken at event <paramref name="seq"/>.</summary>
    public RoomState(string bullPenId, RoomSettings settings, RoomSnapshot snapshot, long seq)
    {
        BullPenId = bullPenId;
        _settings = settings;
        Epoch = snapshot.Epoch;
        Seq = seq;
        _leaderboard = snapshot.Leaderboard;
        _room = snapshot.Room;
        foreach (var member in snapshot.Members)
            _members[member] = true;
        foreach (var h in snapshot.History)
            _history.Enqueue((new RoomEvent(bullPenId, h.Seq, h.Type, h.VisibleTo, h.Frame), h.AtMs));
    }

    public string BullPenId { get; }

    /// <summary>
    /// The room's incarnation: a resume position is only valid with the epoch it was taken in. Chosen when the room
    /// is first created and stored with its first event, so it stays the same across restarts.
    /// </summary>
    public string Epoch { get; private set; }

    /// <summary>The last event's number (0 before any); with a journal, its sequence number.</summary>
    public long Seq { get; private set; }

    public int HistoryCount => _history.Count;

    /// <summary>Numbers <paramref name="e"/>, serializes it once, keeps it in history and folds it into the state.</summary>
    public RoomEvent Apply(RoutedEvent e, long nowMs) => Apply(Record(e, nowMs));

    /// <summary>
    /// <paramref name="e"/> as the journal keeps it; nothing changes until it is applied. The first event of a room
    /// carries the room's epoch, so the epoch is stored before anyone can have seen an event of it.
    /// </summary>
    public StoredEvent Record(RoutedEvent e, long nowMs) =>
        new(e.Type, e.Data, e.UserId, e.IsPrivate, nowMs, Seq == 0 ? Epoch : null);

    /// <summary>Numbers a stored event (the next seq), serializes it once, keeps it in history and folds it into the state.</summary>
    public RoomEvent Apply(StoredEvent e)
    {
        // Nothing changes until everything that can throw has run: a room resumed after a fault has no gap in seq.
        var seq = Seq + 1;
        var delivery = new RoomEvent(BullPenId, seq, e.Type, e.IsPrivate ? e.UserId : null, ServerFrames.Event(e.Type, BullPenId, seq, e.Data),
            Monitoring.TradeRoomMetrics.Now());
        UpdateState(e.Type, e.Data, e.UserId);
        if (e.Epoch is not null)
            Epoch = e.Epoch;
        Seq = seq;
        _history.Enqueue((delivery, e.AtMs));
        Trim(e.AtMs);
        return delivery;
    }

    /// <summary>
    /// Takes <paramref name="epoch"/> as this room's, when no event has numbered anything in the current one: a room
    /// that lost its store before its first event was stored keeps the epoch its subscribers saw.
    /// </summary>
    public void AdoptEpoch(string epoch)
    {
        if (Seq == 0)
            Epoch = epoch;
    }

    /// <summary>What recovery needs to rebuild this state without the events before <see cref="Seq"/>: the state and the resume history.</summary>
    public RoomSnapshot ToSnapshot(long nowMs)
    {
        Trim(nowMs);
        return new RoomSnapshot(Epoch, _leaderboard, _room, _members.Keys.ToArray(),
            _history.Select(h => new HistoryEntry(h.Event.Seq, h.Event.Type, h.Event.VisibleTo, h.AtMs, h.Event.Frame)).ToArray());
    }

    /// <summary>
    /// The events after <paramref name="sinceSeq"/>, when the client's position is from this epoch and every
    /// event after it is still in history; otherwise null (the client starts over from the state snapshot).
    /// </summary>
    public IEnumerable<RoomEvent>? TryReplay(long sinceSeq, string? epoch, long nowMs)
    {
        Trim(nowMs);
        if (epoch != Epoch || sinceSeq < 0 || sinceSeq > Seq)
            return null;
        var oldestKept = _history.Count > 0 ? _history.Peek().Event.Seq : Seq + 1;
        if (sinceSeq + 1 < oldestKept)
            return null;
        return _history.Where(h => h.Event.Seq > sinceSeq).Select(h => h.Event);
    }

    /// <summary><c>{"leaderboard":…|null,"room":…|null,"members":[…]}</c>, rebuilt only when the state changed.</summary>
    public byte[] StateJson()
    {
        if (_stateJson is not null)
            return _stateJson;
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WritePropertyName("leaderboard");
            WriteRawOrNull(w, _leaderboard);
            w.WritePropertyName("room");
            WriteRawOrNull(w, _room);
            w.WriteStartArray("members");
            foreach (var member in _members.Keys)
                w.WriteStringValue(member);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return _stateJson = buffer.WrittenSpan.ToArray();
    }

    private void UpdateState(string type, byte[] data, string? userId)
    {
        switch (type)
        {
            case EventTypes.LeaderboardUpdate or EventTypes.SnapshotCreated:
                _leaderboard = data;
                break;
            case EventTypes.RoomStateChanged:
                _room = data;
                break;
            case EventTypes.RoomStarted:
                _room = WithStatus(data, "active");
                break;
            case EventTypes.RoomEnded:
                _room = WithStatus(data, "ended");
                break;
            case EventTypes.MemberJoined when userId is not null:
                if (!_members.TryAdd(userId, true))
                    return;
                break;
            case EventTypes.MemberLeft when userId is not null:
                if (!_members.Remove(userId))
                    return;
                break;
            default:
                return;
        }
        _stateJson = null;
    }

    private void Trim(long nowMs)
    {
        var oldestAllowed = nowMs - (long)_settings.HistoryTtl.TotalMilliseconds;
        while (_history.Count > 0 && (_history.Count > _settings.HistorySize || _history.Peek().AtMs < oldestAllowed))
            _history.Dequeue();
    }

    /// <summary>The room data with its <c>status</c> set; every other property (duplicates included) as published.</summary>
    private static byte[] WithStatus(byte[] data, string status)
    {
        using var document = JsonDocument.Parse(data);
        var buffer = new ArrayBufferWriter<byte>(data.Length + 32);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!property.NameEquals("status"u8))
                    property.WriteTo(w);
            }
            w.WriteString("status", status);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteRawOrNull(Utf8JsonWriter w, byte[]? json)
    {
        if (json is null)
            w.WriteNullValue();
        else
            w.WriteRawValue(json, skipInputValidation: true);
    }

    private static string NewEpoch() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
}
