using System.Collections.Concurrent;

namespace TradeRoom.Server.WebSockets;

/// <summary>The sockets open right now, so that shutdown can close every one of them with 1001.</summary>
internal sealed class OpenSockets
{
    private readonly ConcurrentDictionary<ClientSocket, byte> _sockets = new();

    public int Count => _sockets.Count;

    /// <summary>A snapshot of the sockets open now.</summary>
    public ICollection<ClientSocket> Sockets => _sockets.Keys;

    public void Add(ClientSocket socket) => _sockets.TryAdd(socket, 0);

    public void Remove(ClientSocket socket) => _sockets.TryRemove(socket, out _);

    public void CheckAll(long nowMs)
    {
        foreach (var socket in _sockets.Keys)
            socket.CheckHealth(nowMs);
    }

    public void CloseAll(int code, string reason)
    {
        foreach (var socket in _sockets.Keys)
            socket.Close(code, reason);
    }
}
