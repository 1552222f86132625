namespace TradeRoom.Actors.Connections;

/// <summary>
/// The rooms one connection follows. Most connections follow one room, so one is held in a field and a hash set
/// exists only from the second on: a few hundred bytes less per connection, which at tens of thousands of
/// connections is megabytes.
/// </summary>
internal sealed class RoomSet
{
    private string? _single;
    private HashSet<string>? _many;

    public int Count => _many?.Count ?? (_single is null ? 0 : 1);

    public bool Contains(string bullPenId) => _many?.Contains(bullPenId) ?? bullPenId == _single;

    public void Add(string bullPenId)
    {
        if (_many is not null)
            _many.Add(bullPenId);
        else if (_single is null)
            _single = bullPenId;
        else if (_single != bullPenId)
        {
            _many = new HashSet<string>(StringComparer.Ordinal) { _single, bullPenId };
            _single = null;
        }
    }

    public void Remove(string bullPenId)
    {
        if (_many is not null)
            _many.Remove(bullPenId);
        else if (_single == bullPenId)
            _single = null;
    }
}
