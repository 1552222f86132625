using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using TradeRoom.Actors.Protocol;

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

    public string BullPenId { get; }

    /// <summary>This incarnation's id: a resume position is only valid with the epoch it was taken in.</summary>
    public string Epoch { get; }

    /// <summary>The last event's number (0 before any).</summary>
    public long Seq { get; private set; }

    public int HistoryCount => _history.Count;

    /// <summary>Numbers <paramref name="e"/>, serializes it once, keeps it in history and folds it into the state.</summary>
    public RoomEvent Apply(RoutedEvent e, long nowMs)
    {
        // Nothing changes until everything that can throw has run: a room resumed after a fault has no gap in seq.
        var seq = Seq + 1;
        var delivery = new RoomEvent(BullPenId, seq, e.Type, e.IsPrivate ? e.UserId : null, ServerFrames.Event(e.Type, BullPenId, seq, e.Data),
            Monitoring.TradeRoomMetrics.Now());
        UpdateState(e);
        Seq = seq;
        _history.Enqueue((delivery, nowMs));
        Trim(nowMs);
        return delivery;
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

    private void UpdateState(RoutedEvent e)
    {
        switch (e.Type)
        {
            case EventTypes.LeaderboardUpdate or EventTypes.SnapshotCreated:
                _leaderboard = e.Data;
                break;
            case EventTypes.RoomStateChanged:
                _room = e.Data;
                break;
            case EventTypes.RoomStarted:
                _room = WithStatus(e.Data, "active");
                break;
            case EventTypes.RoomEnded:
                _room = WithStatus(e.Data, "ended");
                break;
            case EventTypes.MemberJoined when e.UserId is not null:
                if (!_members.TryAdd(e.UserId, true))
                    return;
                break;
            case EventTypes.MemberLeft when e.UserId is not null:
                if (!_members.Remove(e.UserId))
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
