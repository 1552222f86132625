using System.Text;
using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Actors;

public class ConnectionActorSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);

    private readonly FakeClientSocket _socket = new();
    private readonly TestProbe _rooms;
    private readonly IActorRef _connection;

    public ConnectionActorSpecs(ITestOutputHelper output) : base(output: output)
    {
        _rooms = CreateTestProbe();
        _connection = Sys.ActorOf(ConnectionActor.Props(_socket, _rooms.Ref, ShippedSettings.Connections));
    }

    private static ClientMessage Parsed(string json) => ClientMessageParser.Parse(Encoding.UTF8.GetBytes(json));

    private static RoomEvent Event(string room, long seq) =>
        new(room, seq, "leaderboard_update", null, ServerFrames.Event("leaderboard_update", room, seq, "{}"u8));

    private static RoomEvent PrivateEvent(string room, long seq, string userId) =>
        new(room, seq, "order_executed", userId, ServerFrames.Event("order_executed", room, seq, Encoding.UTF8.GetBytes($$"""{"userId":"{{userId}}"}""")));

    private void Authenticate(string userId = "u1")
    {
        _connection.Tell(new AuthSucceeded(userId, null));
        _socket.NextFrame("auth_success");
    }

    /// <summary>Subscribes and plays the room's answer: events of the room are delivered from the answer on.</summary>
    private void Subscribe(string room, string userId = "u1")
    {
        _connection.Tell(new SubscribeRoomMessage(room));
        Assert.Equal(new Subscribe(room, _connection, userId), _rooms.ExpectMsg<Subscribe>());
        _connection.Tell(new SubscribeAck(room, 0, "e0", false, "{}"u8.ToArray()));
        _socket.NextFrame("subscribed");
    }

    private void AssertError(string code)
    {
        var frame = _socket.NextFrame("error");
        Assert.Equal(code, frame.Code);
        Assert.False(string.IsNullOrEmpty(frame.Data.GetProperty("message").GetString()));
    }

    public static TheoryData<string> MessagesNeedingAuth => new()
    {
        """{"type":"subscribe_room","data":{"bullPenId":"r1"}}""",
        """{"type":"unsubscribe_room","data":{"bullPenId":"r1"}}""",
        """{"type":"bogus"}""",
        """{"type":"subscribe_room","data":{"bullPenId":""}}""",
    };

    [Theory]
    [MemberData(nameof(MessagesNeedingAuth))]
    public void Messages_other_than_auth_and_ping_are_refused_before_auth(string json)
    {
        _connection.Tell(Parsed(json));

        AssertError(ErrorCodes.NotAuthenticated);
        _rooms.ExpectNoMsg(Short);
    }

    [Fact]
    public void Ping_is_answered_before_auth_echoing_its_data()
    {
        _connection.Tell(Parsed("""{"type":"ping","data":{"t":123,"s":"x"}}"""));

        var pong = _socket.NextFrame("pong");
        Assert.Equal("""{"t":123,"s":"x"}""", pong.Data.GetRawText());
    }

    [Fact]
    public void Ping_without_data_is_answered_with_an_empty_object()
    {
        _connection.Tell(Parsed("""{"type":"ping"}"""));

        Assert.Equal("{}", _socket.NextFrame("pong").Data.GetRawText());
    }

    [Fact]
    public void Unparseable_message_before_auth_is_answered_with_its_own_code()
    {
        _connection.Tell(Parsed("{not json"));

        AssertError(ErrorCodes.InvalidJson);
    }

    [Fact]
    public void Message_without_type_before_auth_is_answered_with_invalid_message()
    {
        _connection.Tell(Parsed("""{"data":{}}"""));

        AssertError(ErrorCodes.InvalidMessage);
    }

    [Fact]
    public void Auth_without_token_is_answered_with_invalid_message_not_not_authenticated()
    {
        _connection.Tell(Parsed("""{"type":"auth","data":{}}"""));

        AssertError(ErrorCodes.InvalidMessage);
    }

    [Fact]
    public void AuthSucceeded_sends_auth_success_with_the_user()
    {
        _connection.Tell(new AuthSucceeded("user-42", DateTimeOffset.UtcNow.AddHours(1)));

        var frame = _socket.NextFrame("auth_success");
        Assert.Equal("user-42", frame.Data.GetProperty("userId").GetString());
    }

    [Fact]
    public void Second_auth_for_the_same_user_succeeds_again()
    {
        Authenticate("u1");

        _connection.Tell(new AuthSucceeded("u1", null));

        Assert.Equal("u1", _socket.NextFrame("auth_success").Data.GetProperty("userId").GetString());
    }

    [Fact]
    public void Auth_for_another_user_is_refused_and_the_identity_stays()
    {
        Authenticate("u1");

        _connection.Tell(new AuthSucceeded("u2", null));

        AssertError(ErrorCodes.UserMismatch);
        Subscribe("r1", userId: "u1");
        Assert.Empty(_socket.Closes);
    }

    [Fact]
    public void AuthFailed_sends_auth_error_then_closes_with_4001()
    {
        _connection.Tell(new AuthFailed(ErrorCodes.TokenExpired, "token has expired"));

        var frame = _socket.NextFrame("auth_error");
        Assert.Equal(ErrorCodes.TokenExpired, frame.Code);
        Assert.Equal("token has expired", frame.Data.GetProperty("message").GetString());
        Assert.Equal(CloseCodes.AuthenticationFailed, _socket.AwaitClose().Code);
        Assert.Single(_socket.Sent);
    }

    [Fact]
    public void Subscribe_after_auth_goes_to_the_rooms_with_the_connection_and_user()
    {
        Authenticate("u7");

        _connection.Tell(Parsed("""{"type":"subscribe_room","data":{"bullPenId":42}}"""));

        Assert.Equal(new Subscribe("42", _connection, "u7"), _rooms.ExpectMsg<Subscribe>());
    }

    [Fact]
    public void SubscribeAck_is_sent_as_subscribed_with_seq_epoch_recovered_and_state()
    {
        Authenticate();
        Subscribe("r1");
        const string state = """{"leaderboard":{"top":["u1"]},"room":null,"members":["u1","u2"]}""";

        _connection.Tell(new SubscribeAck("r1", 17, "0123456789abcdef", true, Encoding.UTF8.GetBytes(state)), _rooms.Ref);

        var frame = _socket.NextFrame("subscribed");
        Assert.Equal("r1", frame.Data.GetProperty("bullPenId").GetString());
        Assert.Equal(17, frame.Data.GetProperty("seq").GetInt64());
        Assert.Equal("0123456789abcdef", frame.Data.GetProperty("epoch").GetString());
        Assert.True(frame.Data.GetProperty("recovered").GetBoolean());
        Assert.Equal(state, frame.Data.GetProperty("state").GetRawText());
    }

    [Fact]
    public void Subscribe_with_sinceSeq_and_epoch_passes_the_resume_position_to_the_rooms()
    {
        Authenticate("u7");

        _connection.Tell(Parsed("""{"type":"subscribe_room","data":{"bullPenId":"r1","sinceSeq":57,"epoch":"9f2c4e1a7b3d5e60"}}"""));

        Assert.Equal(new Subscribe("r1", _connection, "u7", 57, "9f2c4e1a7b3d5e60"), _rooms.ExpectMsg<Subscribe>());
    }

    [Fact]
    public void Private_event_is_sent_only_when_it_is_for_the_connections_user()
    {
        Authenticate("u1");
        Subscribe("r1", "u1");
        var forSomeoneElse = PrivateEvent("r1", 1, "u2");
        var forMe = PrivateEvent("r1", 2, "u1");

        _connection.Tell(forSomeoneElse);
        _connection.Tell(forMe);

        Assert.Same(forMe.Frame, _socket.NextBytes());
        _socket.ExpectNoFrame(Short);
    }

    [Fact]
    public void Event_of_a_subscribed_room_is_sent_as_its_exact_frame_bytes()
    {
        Authenticate();
        Subscribe("r1");
        var e = Event("r1", 1);

        _connection.Tell(e);

        Assert.Same(e.Frame, _socket.NextBytes());
    }

    [Fact]
    public void Event_of_a_room_not_subscribed_is_dropped()
    {
        Authenticate();
        Subscribe("r1");

        _connection.Tell(Event("r2", 1));

        _socket.ExpectNoFrame(Short);
    }

    [Fact]
    public void Event_before_any_auth_is_dropped()
    {
        _connection.Tell(Event("r1", 1));

        _socket.ExpectNoFrame(Short);
    }

    [Fact]
    public void Unsubscribe_goes_to_the_rooms_and_later_events_of_that_room_are_dropped()
    {
        Authenticate();
        Subscribe("r1");
        Subscribe("r2");

        _connection.Tell(new UnsubscribeRoomMessage("r1"));

        Assert.Equal(new Unsubscribe("r1", _connection), _rooms.ExpectMsg<Unsubscribe>());
        _connection.Tell(Event("r1", 5));
        var stillWanted = Event("r2", 1);
        _connection.Tell(stillWanted);
        Assert.Same(stillWanted.Frame, _socket.NextBytes());
        _socket.ExpectNoFrame(Short);
    }

    [Fact]
    public void UnsubscribeAck_is_sent_as_unsubscribed()
    {
        Authenticate();

        _connection.Tell(new UnsubscribeAck("r1"), _rooms.Ref);

        Assert.Equal("r1", _socket.NextFrame("unsubscribed").Data.GetProperty("bullPenId").GetString());
    }

    [Theory]
    [InlineData("""{"type":"subscribe_room","data":{"bullPenId":""}}""", ErrorCodes.InvalidRoom)]
    [InlineData("""{"type":"subscribe_room","data":{"bullPenId":true}}""", ErrorCodes.InvalidRoom)]
    [InlineData("""{"type":"bogus"}""", ErrorCodes.UnknownType)]
    [InlineData("""{"type":"unsubscribe_room"}""", ErrorCodes.InvalidMessage)]
    [InlineData("""[1,2]""", ErrorCodes.InvalidMessage)]
    [InlineData("""{"type":""", ErrorCodes.InvalidJson)]
    public void Rejected_message_after_auth_is_answered_with_its_code(string json, string code)
    {
        Authenticate();

        _connection.Tell(Parsed(json));

        AssertError(code);
        _rooms.ExpectNoMsg(Short);
    }

    [Fact]
    public void SocketClosed_stops_the_actor_which_then_closes_the_socket_with_1011()
    {
        Watch(_connection);

        _connection.Tell(SocketClosed.Instance);

        ExpectTerminated(_connection);
        Assert.Equal((CloseCodes.InternalError, "internal error"), _socket.AwaitClose());
    }

    [Fact]
    public void Close_after_auth_failure_keeps_4001_as_the_first_close()
    {
        Watch(_connection);
        _connection.Tell(new AuthFailed(ErrorCodes.InvalidToken, "token is malformed"));
        _socket.AwaitClose();

        _connection.Tell(SocketClosed.Instance);

        ExpectTerminated(_connection);
        Assert.Equal([CloseCodes.AuthenticationFailed, CloseCodes.InternalError], _socket.Closes.Select(c => c.Code));
    }

    [Fact]
    public void After_unsubscribe_and_a_new_subscribe_nothing_of_the_old_subscription_arrives_before_the_new_subscribed()
    {
        Authenticate();
        _connection.Tell(Parsed("""{"type":"subscribe_room","data":{"bullPenId":"r1"}}"""));
        _rooms.ExpectMsg<Subscribe>();
        _connection.Tell(new SubscribeAck("r1", 0, "e1", false, "{}"u8.ToArray()));
        _socket.NextFrame("subscribed");
        _connection.Tell(Event("r1", 1));
        Assert.Equal(1, _socket.NextFrame("leaderboard_update").Seq);

        // The client leaves and comes back at once; the room still had events in flight to the old subscription.
        _connection.Tell(Parsed("""{"type":"unsubscribe_room","data":{"bullPenId":"r1"}}"""));
        _connection.Tell(Parsed("""{"type":"subscribe_room","data":{"bullPenId":"r1"}}"""));
        _connection.Tell(Event("r1", 2));
        _connection.Tell(Event("r1", 3));
        _connection.Tell(new UnsubscribeAck("r1"));
        _connection.Tell(new SubscribeAck("r1", 3, "e1", false, "{}"u8.ToArray()));
        _connection.Tell(Event("r1", 4));

        Assert.Equal("unsubscribed", _socket.NextFrame().Type);
        Assert.Equal(3, _socket.NextFrame("subscribed").Data.GetProperty("seq").GetInt64());
        Assert.Equal(4, _socket.NextFrame("leaderboard_update").Seq);
        _socket.ExpectNoFrame(Short);
    }
}
