using System.Collections.Concurrent;

namespace TradeRoom.Transport;

/// <summary>
/// The sockets open right now, so that shutdown can close every one of them with 1001; and how many connections are
/// held (opened and not yet released), so that the sweeper can tell a wave of closes.
/// </summary>
public sealed class OpenSockets
{
    private readonly ConcurrentDictionary<ClientSocket, byte> _sockets = new();
    private int _held;
    private long _released;

    public int Count => _sockets.Count;

    /// <summary>Connections opened and not yet released: open sockets, and removed ones whose handler is still ending.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Connections released since start.</summary>
    public long Released => Interlocked.Read(ref _released);

    /// <summary>A snapshot of the sockets open now.</summary>
    public ICollection<ClientSocket> Sockets => _sockets.Keys;

    public void Add(ClientSocket socket)
    {
        Interlocked.Increment(ref _held);
        _sockets.TryAdd(socket, 0);
    }

    public void Remove(ClientSocket socket) => _sockets.TryRemove(socket, out _);

    /// <summary>The handler of an added socket is done with it: the connection lets go of its buffers as the handler returns.</summary>
    public void Release()
    {
        Interlocked.Decrement(ref _held);
        Interlocked.Increment(ref _released);
    }

    // Both walk the dictionary itself: its Keys is a copy (an array of every socket, 80 KB at 10,000 sockets, which
    // the sweeper made a few times a second). The walk sees sockets added or removed meanwhile or not, either is fine.
    public void CheckAll(long nowMs)
    {
        foreach (var (socket, _) in _sockets)
            socket.CheckHealth(nowMs);
    }

    public void CloseAll(int code, string reason)
    {
        foreach (var (socket, _) in _sockets)
            socket.Close(code, reason);
    }
}
