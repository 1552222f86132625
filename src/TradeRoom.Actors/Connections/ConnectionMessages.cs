using Akka.Actor;

namespace TradeRoom.Actors.Connections;

/// <summary>The socket's token (from an <c>auth</c> message or <c>?token=</c>) checked out: it names <paramref name="UserId"/>.</summary>
public sealed record AuthSucceeded(string UserId, DateTimeOffset? Expires);

/// <summary>The socket's token was refused; the connection answers <c>auth_error</c> and closes with 4001.</summary>
public sealed record AuthFailed(string Code, string Message);

/// <summary>The socket has closed (either side); the connection actor stops, and rooms drop it through DeathWatch.</summary>
public sealed record SocketClosed
{
    public static readonly SocketClosed Instance = new();
}

/// <summary>Asks the <see cref="ConnectionManager"/> for a new connection actor for <paramref name="Socket"/>; answered with its <see cref="IActorRef"/>.</summary>
public sealed record OpenConnection(IClientSocket Socket);

/// <summary>Asks the <see cref="ConnectionManager"/> how many connection actors are alive; answered with <see cref="ConnectionCount"/>.</summary>
public sealed record GetConnectionCount
{
    public static readonly GetConnectionCount Instance = new();
}

public sealed record ConnectionCount(int Connections);
