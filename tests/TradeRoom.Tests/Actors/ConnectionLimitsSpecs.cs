using System.Diagnostics;
using System.Text;
using Akka.Actor;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Actors;

/// <summary>
/// What a <see cref="ConnectionActor"/> enforces itself: the auth timeout, token expiry and refresh, the subscription
/// limit, the per-user connection limit's refusal, and replay windowing against a socket that is behind.
/// </summary>
public class ConnectionLimitsSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);

    // Window = 500 bytes (half the budget); live events behind a replay may reach 2000 bytes.
    private static readonly ConnectionSettings Settings = new(TimeSpan.FromSeconds(10), MaxSubscriptions: 3, OutboundBudget: 1000, HardLimit: 2000);

    private readonly FakeClientSocket _socket = new();
    private readonly Akka.TestKit.TestProbe _rooms;

    public ConnectionLimitsSpecs(ITestOutputHelper output) : base(ShippedSettings.ActorSystem, output: output) => _rooms = CreateTestProbe();

    private IActorRef Connection(ConnectionSettings? settings = null) =>
        Sys.ActorOf(ConnectionActor.Props(_socket, _rooms.Ref, settings ?? Settings));

    private IActorRef Authenticated(string userId = "u1")
    {
        var connection = Connection();
        connection.Tell(new AuthSucceeded(userId, null));
        _socket.NextFrame("auth_success");
        return connection;
    }

    /// <summary>Subscribes and plays the room's answer: events of the room are delivered from the answer on.</summary>
    private void Subscribe(IActorRef connection, string room)
    {
        connection.Tell(new SubscribeRoomMessage(room));
        Assert.Equal(room, _rooms.ExpectMsg<Subscribe>().BullPenId);
        connection.Tell(new SubscribeAck(room, 0, "e0", false, "{}"u8.ToArray()));
        _socket.NextFrame("subscribed");
    }

    /// <summary>A public event whose frame is exactly <paramref name="size"/> bytes.</summary>
    private static RoomEvent Sized(string room, long seq, int size)
    {
        var bare = ServerFrames.Event("member_joined", room, seq, """{"p":""}"""u8).Length;
        var frame = ServerFrames.Event("member_joined", room, seq, Encoding.UTF8.GetBytes($$"""{"p":"{{new string('x', size - bare)}}"}"""));
        Assert.Equal(size, frame.Length);
        return new RoomEvent(room, seq, "member_joined", null, frame);
    }

    private static SubscribeAck ResumedAck(string room, long head, int replayed) =>
        new(room, head, "0123456789abcdef", true, """{"leaderboard":null,"room":null,"members":[]}"""u8.ToArray(), replayed);

    /// <summary>A ping answered directly (never held behind a replay): once its pong is read, the actor has handled everything told before it.</summary>
    private void Barrier(IActorRef connection)
    {
        connection.Tell(ClientMessageParser.Parse("""{"type":"ping","data":{"barrier":true}}"""u8.ToArray()));
        Assert.Equal("""{"barrier":true}""", _socket.NextFrame("pong").Data.GetRawText());
    }

    /// <summary>
    /// Stands in for the socket's send loop having written down to <paramref name="queuedBytes"/>. Like the real send
    /// loop it runs on a thread of its own, outside any actor (the test thread carries TestKit's actor context).
    /// </summary>
    private void DrainFromSendLoop(long queuedBytes)
    {
        var drain = Task.Factory.StartNew(() => _socket.Drain(queuedBytes), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(drain.Wait(FakeClientSocket.DefaultTimeout), "the drain callback did not return");
    }

    private void ExpectEvents(params RoomEvent[] events)
    {
        foreach (var e in events)
            Assert.Same(e.Frame, _socket.NextBytes());
    }

    // ---- auth timeout ----

    [Fact]
    public void Connection_not_authenticated_within_the_auth_timeout_is_closed_with_4001_authentication_timeout()
    {
        var clock = Stopwatch.StartNew();
        Connection(Settings with { AuthTimeout = TimeSpan.FromMilliseconds(300) });

        var close = _socket.AwaitClose(TimeSpan.FromSeconds(3));

        Assert.Equal((CloseCodes.AuthenticationFailed, "authentication timeout"), close);
        Assert.True(clock.ElapsedMilliseconds >= 250, $"closed after {clock.ElapsedMilliseconds} ms, before the 300 ms auth timeout");
    }

    [Fact]
    public void Connection_authenticated_before_the_auth_timeout_is_not_closed_when_it_passes()
    {
        var connection = Connection(Settings with { AuthTimeout = TimeSpan.FromMilliseconds(300) });
        connection.Tell(new AuthSucceeded("u1", null));
        _socket.NextFrame("auth_success");

        // Time passing is the point: well past the auth timeout.
        Assert.Throws<TimeoutException>(() => _socket.AwaitClose(TimeSpan.FromMilliseconds(800)));
        Barrier(connection);
        Assert.Empty(_socket.Closes);
    }

    // ---- token expiry and refresh ----

    [Fact]
    public void Token_expiry_sends_auth_error_token_expired_then_closes_with_4001_not_before_exp()
    {
        var connection = Connection();
        var expires = DateTimeOffset.UtcNow.AddMilliseconds(300);

        connection.Tell(new AuthSucceeded("u1", expires));

        _socket.NextFrame("auth_success");
        var error = _socket.NextFrame("auth_error", TimeSpan.FromSeconds(3));
        Assert.Equal(ErrorCodes.TokenExpired, error.Code);
        Assert.True(DateTimeOffset.UtcNow >= expires, "token_expired sent before the token's exp");
        Assert.Equal(CloseCodes.AuthenticationFailed, _socket.AwaitClose().Code);
        Assert.Single(_socket.Closes);
    }

    [Fact]
    public void Refresh_for_the_same_user_before_exp_moves_the_expiry_to_the_new_token()
    {
        var connection = Connection();
        var first = DateTimeOffset.UtcNow.AddSeconds(1);
        var second = first.AddSeconds(1);

        // Told back to back, so the refresh is handled long before the first exp.
        connection.Tell(new AuthSucceeded("u1", first));
        connection.Tell(new AuthSucceeded("u1", second));

        _socket.NextFrame("auth_success");
        Assert.Equal("u1", _socket.NextFrame("auth_success").Data.GetProperty("userId").GetString());
        // Past the first exp (time passing is the point), the connection is still open and answering.
        var pastFirst = first - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(250);
        Assert.Throws<TimeoutException>(() => _socket.AwaitClose(pastFirst > TimeSpan.Zero ? pastFirst : TimeSpan.Zero));
        Assert.True(DateTimeOffset.UtcNow > first);
        Barrier(connection);
        Assert.Empty(_socket.Closes);

        // ...and the refreshed token's exp closes it.
        var error = _socket.NextFrame("auth_error", TimeSpan.FromSeconds(3));
        Assert.Equal(ErrorCodes.TokenExpired, error.Code);
        Assert.True(DateTimeOffset.UtcNow >= second, "token_expired sent before the refreshed token's exp");
        Assert.Equal(CloseCodes.AuthenticationFailed, _socket.AwaitClose().Code);
    }

    [Fact]
    public void Auth_for_another_user_does_not_refresh_the_expiry()
    {
        var connection = Connection();
        // Far enough ahead that the second auth is answered first even on a loaded machine (300 ms was not, once).
        var expires = DateTimeOffset.UtcNow.AddSeconds(2);
        connection.Tell(new AuthSucceeded("u1", expires));
        _socket.NextFrame("auth_success");

        connection.Tell(new AuthSucceeded("u2", DateTimeOffset.UtcNow.AddHours(1)));

        Assert.Equal(ErrorCodes.UserMismatch, _socket.NextFrame("error").Code);
        Assert.Equal(ErrorCodes.TokenExpired, _socket.NextFrame("auth_error", TimeSpan.FromSeconds(6)).Code);
        Assert.Equal(CloseCodes.AuthenticationFailed, _socket.AwaitClose().Code);
    }

    [Fact]
    public void AuthFailed_with_4009_sends_auth_error_too_many_connections_then_closes_with_4009()
    {
        var connection = Connection();

        connection.Tell(new AuthFailed(ErrorCodes.TooManyConnections, "user u1 already has 2 connections", CloseCodes.TooManyConnections));

        var frame = _socket.NextFrame("auth_error");
        Assert.Equal(ErrorCodes.TooManyConnections, frame.Code);
        Assert.Equal("user u1 already has 2 connections", frame.Data.GetProperty("message").GetString());
        Assert.Equal(CloseCodes.TooManyConnections, _socket.AwaitClose().Code);
    }

    // ---- subscriptions ----

    [Fact]
    public void Subscribing_to_more_rooms_than_the_limit_answers_too_many_subscriptions_and_does_not_subscribe()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        Subscribe(connection, "r2");
        Subscribe(connection, "r3");

        connection.Tell(new SubscribeRoomMessage("r4"));

        var error = _socket.NextFrame("error");
        Assert.Equal(ErrorCodes.TooManySubscriptions, error.Code);
        Assert.Contains("3", error.Data.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("r4", error.Data.GetProperty("bullPenId").GetString());
        _rooms.ExpectNoMsg(Short);
        connection.Tell(Sized("r4", 1, 100));
        var r1Event = Sized("r1", 1, 100);
        connection.Tell(r1Event);
        ExpectEvents(r1Event); // r4's event was dropped: r4 is not followed
    }

    [Fact]
    public void Resubscribing_to_a_followed_room_at_the_limit_is_still_allowed()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        Subscribe(connection, "r2");
        Subscribe(connection, "r3");

        connection.Tell(new SubscribeRoomMessage("r2", 5, "0123456789abcdef"));

        Assert.Equal(new Subscribe("r2", connection, "u1", 5, "0123456789abcdef"), _rooms.ExpectMsg<Subscribe>());
        Barrier(connection);
    }

    [Fact]
    public void Unsubscribing_frees_a_place_under_the_limit()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        Subscribe(connection, "r2");
        Subscribe(connection, "r3");
        connection.Tell(new UnsubscribeRoomMessage("r1"));
        _rooms.ExpectMsg<Unsubscribe>();

        Subscribe(connection, "r4");

        connection.Tell(new SubscribeRoomMessage("r1"));
        var error = _socket.NextFrame("error");
        Assert.Equal((ErrorCodes.TooManySubscriptions, "r1"), (error.Code, error.Data.GetProperty("bullPenId").GetString()));
    }

    // ---- replay windowing ----

    [Fact]
    public void Replay_to_a_socket_that_is_behind_waits_and_is_fed_in_order_as_it_drains_with_live_events_behind_it()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        Subscribe(connection, "r2");
        _socket.QueuedBytes = 450; // 50 bytes of the 500-byte window left
        var replay = new[] { Sized("r1", 1, 100), Sized("r1", 2, 100), Sized("r1", 3, 300), Sized("r1", 4, 100), Sized("r1", 5, 100) };
        var live = new[] { Sized("r1", 6, 100), Sized("r2", 1, 100), Sized("r1", 7, 100) };

        connection.Tell(ResumedAck("r1", 5, replay.Length));
        foreach (var e in replay.Concat(live))
            connection.Tell(e);

        Assert.Equal("subscribed", _socket.NextFrame().Type);
        Barrier(connection);
        _socket.ExpectNoFrame(Short); // nothing fits yet: everything waits in the actor

        DrainFromSendLoop(300); // room for 200 bytes: replay 1 and 2, not the 300-byte replay 3
        ExpectEvents(replay[0], replay[1]);
        Barrier(connection);
        _socket.ExpectNoFrame(Short);

        DrainFromSendLoop(100); // room for 400 bytes per frame: the rest, replay first, then live in arrival order
        ExpectEvents(replay[2], replay[3], replay[4], live[0], live[1], live[2]);
        Barrier(connection);

        // The backlog is gone: a live event goes straight to the socket again, even though it is not empty.
        var after = Sized("r1", 8, 100);
        connection.Tell(after);
        ExpectEvents(after);
        Assert.Equal(new long[] { 1, 2, 3, 4, 5, 6, 1, 7, 8 }, _socket.SentEvents.Select(e => e.Seq));
        Assert.Equal(9, _socket.SentEvents.Distinct().Count());
        Assert.Empty(_socket.Closes);
    }

    [Fact]
    public void Replay_that_fits_the_window_is_sent_at_once()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        _socket.QueuedBytes = 200;
        var replay = new[] { Sized("r1", 1, 100), Sized("r1", 2, 200) };

        connection.Tell(ResumedAck("r1", 2, replay.Length));
        foreach (var e in replay)
            connection.Tell(e);

        Assert.Equal("subscribed", _socket.NextFrame().Type);
        ExpectEvents(replay);
    }

    [Fact]
    public void Empty_socket_takes_a_replayed_frame_larger_than_the_window()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        var big = Sized("r1", 1, 800);

        connection.Tell(ResumedAck("r1", 1, 1));
        connection.Tell(big);

        Assert.Equal("subscribed", _socket.NextFrame().Type);
        ExpectEvents(big);
    }

    [Fact]
    public void Replayed_frame_larger_than_the_window_waits_for_an_empty_socket_when_one_byte_is_queued()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        _socket.QueuedBytes = 1;
        var big = Sized("r1", 1, 500);

        connection.Tell(ResumedAck("r1", 1, 1));
        connection.Tell(big);

        Assert.Equal("subscribed", _socket.NextFrame().Type);
        Barrier(connection);
        _socket.ExpectNoFrame(Short);
        DrainFromSendLoop(0);
        ExpectEvents(big);
    }

    [Fact]
    public void Replay_larger_than_the_hard_limit_waiting_in_the_actor_does_not_close_the_socket()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        _socket.QueuedBytes = 450;
        var replay = Enumerable.Range(1, 30).Select(seq => Sized("r1", seq, 100)).ToArray(); // 3000 bytes > 2000

        connection.Tell(ResumedAck("r1", 30, replay.Length));
        foreach (var e in replay)
            connection.Tell(e);

        Assert.Equal("subscribed", _socket.NextFrame().Type);
        Barrier(connection);
        Assert.Empty(_socket.Closes);
        Assert.Empty(_socket.SentEvents);
    }

    [Fact]
    public void Replay_larger_than_the_hard_limit_is_delivered_in_full_once_the_socket_drains()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        _socket.QueuedBytes = 450;
        var replay = Enumerable.Range(1, 30).Select(seq => Sized("r1", seq, 100)).ToArray();
        connection.Tell(ResumedAck("r1", 30, replay.Length));
        foreach (var e in replay)
            connection.Tell(e);
        Assert.Equal("subscribed", _socket.NextFrame().Type);
        Barrier(connection);

        DrainFromSendLoop(0);

        ExpectEvents(replay);
        Barrier(connection);
        Assert.Empty(_socket.Closes);
    }

    [Fact]
    public void Live_events_waiting_behind_a_replay_beyond_the_hard_limit_close_the_socket_with_4008()
    {
        var connection = Authenticated();
        Subscribe(connection, "r1");
        _socket.QueuedBytes = 450;
        connection.Tell(ResumedAck("r1", 1, 1));
        connection.Tell(Sized("r1", 1, 100));
        Assert.Equal("subscribed", _socket.NextFrame().Type);

        for (var seq = 2; seq <= 5; seq++)
            connection.Tell(Sized("r1", seq, 500)); // 2000 bytes of live events: at the limit, not over it
        Barrier(connection);
        Assert.Empty(_socket.Closes);

        connection.Tell(Sized("r1", 6, 100));

        Assert.Equal((CloseCodes.SlowConsumer, "slow consumer"), _socket.AwaitClose());
    }

    // ---- ConnectionManager: per-user limit ----

    private IActorRef Open(IActorRef manager)
    {
        manager.Tell(new OpenConnection(new FakeClientSocket()));
        return ExpectMsg<IActorRef>();
    }

    private bool Admit(IActorRef manager, string userId, IActorRef connection)
    {
        manager.Tell(new AdmitUser(userId, connection));
        return ExpectMsg<UserAdmission>().Admitted;
    }

    [Fact]
    public void Manager_admits_at_most_max_connections_per_user_and_again_once_one_of_them_stops()
    {
        var manager = Sys.ActorOf(ConnectionManager.Props(_rooms.Ref, Settings, maxConnectionsPerUser: 2));
        var first = Open(manager);
        var second = Open(manager);
        var third = Open(manager);
        var otherUsers = Open(manager);

        Assert.True(Admit(manager, "u1", first));
        Assert.True(Admit(manager, "u1", second));
        Assert.False(Admit(manager, "u1", third));
        Assert.True(Admit(manager, "u1", first)); // a refresh on an admitted connection is not counted twice
        Assert.False(Admit(manager, "u1", third));
        Assert.True(Admit(manager, "u2", otherUsers)); // other users are unaffected

        Watch(first);
        first.Tell(SocketClosed.Instance);
        ExpectTerminated(first);
        AwaitAssert(() =>
        {
            manager.Tell(GetConnectionCount.Instance);
            Assert.Equal(3, ExpectMsg<ConnectionCount>().Connections);
        }, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(20));

        Assert.True(Admit(manager, "u1", third));
        Assert.False(Admit(manager, "u1", Open(manager)));
    }

    [Fact]
    public void Manager_without_a_limit_admits_every_connection()
    {
        var manager = Sys.ActorOf(ConnectionManager.Props(_rooms.Ref, Settings, maxConnectionsPerUser: 0));

        for (var i = 0; i < 5; i++)
            Assert.True(Admit(manager, "u1", Open(manager)));
    }
}
