using System.Text;
using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Actors;

/// <summary>Room authorization inside the connection actor, where the order of a refresh and a room's answer matters.</summary>
public class RoomAuthorizationSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);

    private readonly FakeClientSocket _socket = new();
    private readonly TestProbe _rooms;
    private readonly IActorRef _connection;

    public RoomAuthorizationSpecs(ITestOutputHelper output) : base(output: output)
    {
        _rooms = CreateTestProbe();
        var claim = new RoomAuthorizer(new RoomAuthorizationSettings(RoomAuthorizationMode.Claim, "bullPens", null,
            TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.Zero, 1, 1), "unused-secret-unused-secret-unused-secret");
        _connection = Sys.ActorOf(ConnectionActor.Props(_socket, _rooms.Ref, ShippedSettings.Connections with { Authorizer = claim }));
    }

    [Fact]
    public void A_room_revoked_before_it_answered_is_left_and_its_answer_and_events_never_reach_the_client()
    {
        _connection.Tell(new AuthSucceeded("u1", null, ["a", "b"]));
        _socket.NextFrame("auth_success");
        _connection.Tell(new SubscribeRoomMessage("a"));
        _rooms.ExpectMsg<Subscribe>();

        _connection.Tell(new AuthSucceeded("u1", null, ["b"]));
        _socket.NextFrame("auth_success");
        var error = _socket.NextFrame("error");
        Assert.Equal((ErrorCodes.Forbidden, "a"), (error.Code, error.Data.GetProperty("bullPenId").GetString()));
        Assert.Equal("a", _rooms.ExpectMsg<Unsubscribe>().BullPenId);

        // The room answers the subscribe it had, with a replay, then the unsubscribe.
        _connection.Tell(new SubscribeAck("a", 1, "e0", true, "{}"u8.ToArray(), Replayed: 1));
        _connection.Tell(new RoomEvent("a", 1, "ranking_changed", null, ServerFrames.Event("ranking_changed", "a", 1, "{}"u8)));
        _connection.Tell(new UnsubscribeAck("a"));
        Assert.Equal("unsubscribed", _socket.NextFrame().Type);
        _socket.ExpectNoFrame(Short);
    }

    [Fact]
    public void Claim_patterns_match_exact_ids_and_prefixes_only()
    {
        string[] patterns = ["final-2026", "league-*"];

        Assert.True(RoomPatterns.Allows(patterns, "final-2026"));
        Assert.True(RoomPatterns.Allows(patterns, "league-"));
        Assert.True(RoomPatterns.Allows(patterns, "league-east"));
        Assert.False(RoomPatterns.Allows(patterns, "final-2026x"));
        Assert.False(RoomPatterns.Allows(patterns, "leagu"));
        Assert.False(RoomPatterns.Allows(patterns, "League-east"));
        Assert.True(RoomPatterns.Allows(["*"], "anything"));
        Assert.False(RoomPatterns.Allows([], "anything"));
    }
}
