using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Rooms;

/// <summary>
/// What a room stores: the events and snapshots through <see cref="RoomSerializer"/> (bound in hocon/akka.conf), and a
/// state rebuilt from a snapshot plus the events after it being the state that saw them all.
/// </summary>
public sealed class RoomStorageTests : IDisposable
{
    private static readonly RoomSettings Settings = ShippedSettings.Rooms with { HistorySize = 5, HistoryTtl = TimeSpan.FromMinutes(1) };

    // The server's own Akka settings, so the test checks the binding the server runs with.
    private readonly ActorSystem _system = ActorSystem.Create("storage",
        ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "hocon", "akka.conf"))));

    public void Dispose() => _system.Dispose();

    private static RoutedEvent Event(string type, object data)
    {
        var e = new PublishEvent("r1", type, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(data)));
        Assert.Null(EventValidator.Validate(e, ShippedSettings.Rooms.PrivateEventTypes, out var routed));
        return routed;
    }

    private T RoundTrip<T>(T value) where T : notnull
    {
        var serializer = _system.Serialization.FindSerializerFor(value);
        Assert.IsType<RoomSerializer>(serializer);
        var bytes = serializer.ToBinary(value);
        return (T)_system.Serialization.Deserialize(bytes, serializer.Identifier, Serialization.ManifestFor(serializer, value));
    }

    [Fact]
    public void Stored_events_round_trip_through_the_bound_serializer_with_every_field()
    {
        var first = new StoredEvent("order_executed", "{\"userId\":\"ü-1\",\"q\":\"中\"}"u8.ToArray(), "ü-1", true, 1_790_000_000_123, "9f2c4e1a7b3d5e60");
        var later = new StoredEvent("ranking_changed", "{}"u8.ToArray(), null, false, 42, null);

        foreach (var e in new[] { first, later })
        {
            var back = RoundTrip(e);
            Assert.Equal((e.Type, e.UserId, e.IsPrivate, e.AtMs, e.Epoch), (back.Type, back.UserId, back.IsPrivate, back.AtMs, back.Epoch));
            Assert.Equal(e.Data, back.Data);
        }
    }

    [Fact]
    public void Snapshots_round_trip_with_state_members_and_history_frames()
    {
        var snapshot = new RoomSnapshot("epoch-1", "{\"entries\":[]}"u8.ToArray(), null, ["u1", "ü2"],
        [
            new HistoryEntry(7, "order_executed", "u1", 100, "{\"type\":\"order_executed\",\"seq\":7}"u8.ToArray()),
            new HistoryEntry(8, "ranking_changed", null, 200, "{\"type\":\"ranking_changed\",\"seq\":8}"u8.ToArray()),
        ]);
        var back = RoundTrip(snapshot);
        Assert.Equal(snapshot.Epoch, back.Epoch);
        Assert.Equal(snapshot.Leaderboard, back.Leaderboard);
        Assert.Null(back.Room);
        Assert.Equal(snapshot.Members, back.Members);
        Assert.Equal(snapshot.History.Select(h => (h.Seq, h.Type, h.VisibleTo, h.AtMs)), back.History.Select(h => (h.Seq, h.Type, h.VisibleTo, h.AtMs)));
        Assert.Equal(snapshot.History.Select(h => h.Frame), back.History.Select(h => h.Frame));
    }

    [Fact]
    public void An_unknown_format_version_is_refused_rather_than_misread()
    {
        var serializer = (RoomSerializer)_system.Serialization.FindSerializerFor(new StoredEvent("t", [], null, false, 0, null));
        var bytes = serializer.ToBinary(new StoredEvent("t", [], null, false, 0, null));
        bytes[0] = 99;
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary(bytes, "E"));
    }

    [Fact]
    public void A_state_rebuilt_from_its_snapshot_and_the_later_events_equals_the_state_that_saw_every_event()
    {
        var live = new RoomState("r1", Settings);
        var stored = new List<StoredEvent>();
        void Publish(string type, object data, long at)
        {
            var record = live.Record(Event(type, data), at);
            stored.Add(record);
            live.Apply(record);
        }

        Publish(EventTypes.RoomStarted, new { name = "Cup" }, 1_000);
        Publish(EventTypes.MemberJoined, new { userId = "u1" }, 1_001);
        Publish(EventTypes.MemberJoined, new { userId = "u2" }, 1_002);
        Publish(EventTypes.OrderExecuted, new { userId = "u1", q = 1 }, 1_003);
        var snapshotSeq = live.Seq;
        var snapshot = RoundTrip(live.ToSnapshot(1_004));
        Publish(EventTypes.LeaderboardUpdate, new { top = "u1" }, 1_005);
        Publish(EventTypes.MemberLeft, new { userId = "u2" }, 1_006);
        Publish(EventTypes.RankingChanged, new { n = 7 }, 1_007);

        // Only the room's first event carries the epoch: the snapshot carries it on.
        Assert.Equal(live.Epoch, stored[0].Epoch);
        Assert.All(stored.Skip(1), e => Assert.Null(e.Epoch));

        var recovered = new RoomState("r1", Settings, snapshot, snapshotSeq);
        foreach (var e in stored.Skip((int)snapshotSeq))
            recovered.Apply(RoundTrip(e));

        Assert.Equal((live.Epoch, live.Seq), (recovered.Epoch, recovered.Seq));
        Assert.Equal(live.StateJson(), recovered.StateJson());
        // History: the last 5 events, from both the snapshot's history and the replayed tail, byte for byte.
        Assert.Equal(Frames(live.TryReplay(2, live.Epoch, 1_008)), Frames(recovered.TryReplay(2, recovered.Epoch, 1_008)));
        Assert.Equal([3L, 4, 5, 6, 7], recovered.TryReplay(2, recovered.Epoch, 1_008)!.Select(e => e.Seq));
        Assert.Equal("u1", recovered.TryReplay(3, recovered.Epoch, 1_008)!.First().VisibleTo);
    }

    [Fact]
    public void A_state_rebuilt_from_events_alone_takes_the_epoch_of_the_first_event()
    {
        var live = new RoomState("r1", Settings);
        var stored = new[] { live.Record(Event(EventTypes.RankingChanged, new { n = 1 }), 5) };
        live.Apply(stored[0]);

        var recovered = new RoomState("r1", Settings);
        Assert.NotEqual(live.Epoch, recovered.Epoch);
        recovered.Apply(RoundTrip(stored[0]));
        Assert.Equal(live.Epoch, recovered.Epoch);
    }

    private static IEnumerable<string> Frames(IEnumerable<RoomEvent>? events) =>
        Assert.IsAssignableFrom<IEnumerable<RoomEvent>>(events).Select(e => Encoding.UTF8.GetString(e.Frame));
}
