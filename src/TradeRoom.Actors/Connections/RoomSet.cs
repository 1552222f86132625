namespace TradeRoom.Actors.Connections;

/// <summary>
/// The rooms one connection follows, each pending (asked for, not yet answered by the room) or active.
/// Events are delivered only for active rooms, so that after an unsubscribe and a new subscribe nothing from the
/// old subscription slips in before the new <c>subscribed</c>. Most connections follow one room, so one is held in
/// fields and a dictionary exists only from the second on (a few hundred bytes less per connection).
/// </summary>
internal sealed class RoomSet
{
    private string? _single;
    private bool _singleActive;
    private Dictionary<string, bool>? _many;

    public int Count => _many?.Count ?? (_single is null ? 0 : 1);

    public bool Contains(string bullPenId) => _many?.ContainsKey(bullPenId) ?? bullPenId == _single;

    public bool IsActive(string bullPenId) =>
        _many is not null ? _many.TryGetValue(bullPenId, out var active) && active : _singleActive && bullPenId == _single;

    /// <summary>Follows <paramref name="bullPenId"/> from the room's answer on; a room already followed stays as it is.</summary>
    public void AddPending(string bullPenId)
    {
        if (_many is not null)
            _many.TryAdd(bullPenId, false);
        else if (_single is null)
            (_single, _singleActive) = (bullPenId, false);
        else if (_single != bullPenId)
        {
            _many = new Dictionary<string, bool>(StringComparer.Ordinal) { [_single] = _singleActive, [bullPenId] = false };
            _single = null;
        }
    }

    /// <summary>The room answered: its events are delivered from now on (if the room is still followed).</summary>
    public void Activate(string bullPenId)
    {
        if (_many is not null)
        {
            if (_many.ContainsKey(bullPenId))
                _many[bullPenId] = true;
        }
        else if (_single == bullPenId)
            _singleActive = true;
    }

    /// <summary>Every room followed, pending or active (a copy: the set may change while it is walked).</summary>
    public string[] ToArray() => _many is not null ? [.. _many.Keys] : _single is null ? [] : [_single];

    public void Remove(string bullPenId)
    {
        if (_many is not null)
            _many.Remove(bullPenId);
        else if (_single == bullPenId)
            (_single, _singleActive) = (null, false);
    }
}
