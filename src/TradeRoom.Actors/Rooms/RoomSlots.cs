namespace TradeRoom.Actors.Rooms;

/// <summary>
/// Cluster mode: the rooms this node hosts, held to <c>rooms.max-rooms</c> (a cap per node: each node bounds what it
/// holds itself, with no cluster-wide count to agree on). Sharding creates a room's entity in the shard's own turn,
/// from the entity factory, when the first message for it arrives: that is where a start is decided
/// (<see cref="TryTake"/>), before anything is read from the store. A node's shards run concurrently, so the count
/// is one atomic integer they share. A room that took a slot gives it back when it stops (<see cref="Release"/>).
/// </summary>
public sealed class RoomSlots(int max)
{
    private int _taken;

    /// <summary>The cap (0: none).</summary>
    public int Max => max;

    /// <summary>Takes a slot for a room about to start; false when the node already hosts <see cref="Max"/> rooms.</summary>
    public bool TryTake()
    {
        while (true)
        {
            var taken = Volatile.Read(ref _taken);
            if (max > 0 && taken >= max)
                return false;
            if (Interlocked.CompareExchange(ref _taken, taken + 1, taken) == taken)
                return true;
        }
    }

    public void Release() => Interlocked.Decrement(ref _taken);
}
