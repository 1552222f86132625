using Akka.Actor;

namespace TradeRoom.Actors.Connections;

/// <summary>The socket's token (from an <c>auth</c> message or <c>?token=</c>) checked out: it names <paramref name="UserId"/>.</summary>
/// <param name="Rooms">The rooms the token lets the user follow (claim authorization); null: none listed.</param>
public sealed record AuthSucceeded(string UserId, DateTimeOffset? Expires, IReadOnlyList<string>? Rooms = null);

/// <summary>The socket's token was refused (or its user has too many connections); the connection answers <c>auth_error</c> and closes with <paramref name="CloseCode"/>.</summary>
public sealed record AuthFailed(string Code, string Message, int CloseCode = Protocol.CloseCodes.AuthenticationFailed);

/// <summary>
/// The receive loop found a protocol violation (binary frame, message too big, flood): the connection closes the
/// socket with <paramref name="Code"/> after the answers it has already queued, so they keep their order.
/// </summary>
public sealed record CloseConnection(int Code, string Reason);

/// <summary>The socket has closed (either side); the connection actor stops, and tells its relays and its parent so (see <see cref="ConnectionActor"/>'s PostStop).</summary>
public sealed record SocketClosed
{
    public static readonly SocketClosed Instance = new();
}

/// <summary>Asks the <see cref="ConnectionManager"/> for a new connection actor for <paramref name="Socket"/>; answered with its <see cref="IActorRef"/>.</summary>
public sealed record OpenConnection(IClientSocket Socket);

/// <summary>Timer messages of a <see cref="ConnectionActor"/>.</summary>
internal sealed record AuthTimeoutElapsed
{
    public static readonly AuthTimeoutElapsed Instance = new();
}

internal sealed record TokenExpiryDue
{
    public static readonly TokenExpiryDue Instance = new();
}

/// <summary>The room authorization callback answered for a subscribe that waited for it.</summary>
internal sealed record RoomAuthorized(string BullPenId, Auth.RoomDecision Decision);

/// <summary>A connection's own reminder to write the events it has queued (see ConnectionActor.FlushAfterWaitingMessages).</summary>
internal sealed record FlushSocket
{
    public static readonly FlushSocket Instance = new();
}

/// <summary>The socket's queue has room again for the backlog.</summary>
internal sealed record SocketDrained
{
    public static readonly SocketDrained Instance = new();
}

/// <summary>
/// Asks the <see cref="ConnectionManager"/> (only when a per-user connection limit is set) whether
/// <paramref name="Connection"/> may be one of <paramref name="UserId"/>'s connections; answered with <see cref="UserAdmission"/>.
/// </summary>
public sealed record AdmitUser(string UserId, IActorRef Connection);

public sealed record UserAdmission(bool Admitted);

/// <summary>Asks the <see cref="ConnectionManager"/> how many connection actors are alive; answered with <see cref="ConnectionCount"/>.</summary>
public sealed record GetConnectionCount
{
    public static readonly GetConnectionCount Instance = new();
}

public sealed record ConnectionCount(int Connections);

/// <summary>
/// Told by a <see cref="ConnectionActor"/> to its parent from its PostStop (which runs also when the supervisor stops it
/// after a failure): the <see cref="ConnectionManager"/> counts it out without watching it.
/// </summary>
internal sealed record ConnectionStopped
{
    public static readonly ConnectionStopped Instance = new();
}
