using System.Collections;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Actors.Serialization;
using TradeRoom.Server;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Cluster;

/// <summary>
/// Every message hocon/akka.conf binds to <see cref="RoomWireSerializer"/> goes through Akka's own serialization of a
/// system with the server's HOCON loaded and remoting on (so actor refs travel as full remote paths, as between
/// nodes), and comes back equal field by field.
/// </summary>
public sealed class RoomWireSerializerSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(Config(), output: output)
{
    private static Config Config() => ServerConfig.Load("""
        akka.actor.provider = remote
        akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
        """);

    private static readonly byte[] State = Encoding.UTF8.GetBytes("""{"leaderboard":null,"room":{"phase":"open"},"members":["alice"]}""");

    private static byte[] Frame(long seq) => Encoding.UTF8.GetBytes("{\"type\":\"ranking_changed\",\"seq\":" + seq + ",\"data\":{\"é\":\"ü\"}}");

    /// <summary>At least one sample of each bound message, with every optional field both set and unset.</summary>
    private object[] Samples()
    {
        var relay = CreateTestProbe().Ref;
        var connection = CreateTestProbe().Ref;
        var other = TestActor;
        var ev = new RoomEvent("pen-1", 41, "ranking_changed", null, Frame(41));
        var privateEv = new RoomEvent("pen-1", 42, "order_executed", "alice", Frame(42));
        return
        [
            ev,
            privateEv,
            new RoutedEvent("pen-1", "order_executed", Encoding.UTF8.GetBytes("""{"userId":"alice"}"""), "alice", true),
            new RoutedEvent("pen-1", "ranking_changed", Encoding.UTF8.GetBytes("{}"), null, false),
            new RelaySubscribe("pen-1", relay, connection, "alice", 17, "epoch-a"),
            new RelaySubscribe("pen-1", relay, connection, "alice", null, null),
            new RelaySubscribe("pen-1", relay, connection, "alice", null, null, MayStart: false),
            new RelaySubscribed(connection, new SubscribeAck("pen-1", 42, "epoch-a", true, State, 2), [ev, privateEv]),
            new RelaySubscribed(connection, new SubscribeAck("pen-1", 0, "epoch-a", false, State), []),
            new RelaySubscribed(connection, new SubscribeAck("pen-1", 0, "epoch-a", false, State, Started: true), []),
            new RelayUnsubscribe("pen-1", connection),
            new RelayJoin("pen-1", relay, [new RelayMember(connection, "alice"), new RelayMember(other, "bob")], 40, "epoch-a"),
            new RelayJoin("pen-1", relay, [], 0, null),
            new RelayJoined("pen-1", 42, "epoch-a", true, State, [ev, privateEv]),
            new RelayJoined("pen-1", 42, "epoch-b", false, State, []),
            new RelayRefused("pen-1", connection, "room_limit", "too many rooms"),
            new RelayRefused("pen-1", null, "storage_unavailable", "store down"),
            new GetRooms(50, "pen-0"),
            new GetRooms(1000),
            new RoomList([new RoomSummary("pen-1", 3, 42, "epoch-a", "akka.tcp://traderoom@127.0.0.1:4053"), new RoomSummary("pen-2", 0, 0, "epoch-b")], "pen-2"),
            new RoomList([]),
            new GetRoomDetails("pen-1"),
            new RoomDetails("pen-1", 2, 42, "epoch-a", State, ["alice", "bob"], "akka.tcp://traderoom@127.0.0.1:4053"),
            new RoomDetails("pen-1", 0, 0, "epoch-a", State, []),
            new RoomNotFound("pen-1"),
            GetRoomCount.Instance,
            new RoomCount(7),
            new GetLocalRooms(51, "pen-0"),
            new GetLocalRooms(1, null),
            new GetLocalRoomDetails("pen-1"),
            GetLocalRoomCount.Instance,
            new PurgeIfStale("pen-1", 42),
            new RetentionChecked("pen-1", Purged: true),
            new RetentionChecked("pen-1", Purged: false),
        ];
    }

    [Fact]
    public void The_samples_cover_every_message_bound_to_the_wire_serializer()
    {
        var bound = Sys.Settings.Config.GetConfig("akka.actor.serialization-bindings").AsEnumerable()
            .Where(b => b.Value.GetString() == "traderoom-wire")
            .Select(b => Type.GetType(b.Key, throwOnError: true)!)
            .ToHashSet();

        Assert.Equal(20, bound.Count); // a new binding needs samples above
        Assert.Equal(bound.OrderBy(t => t.Name), Samples().Select(s => s.GetType()).Distinct().OrderBy(t => t.Name));
    }

    [Fact]
    public void Every_bound_message_round_trips_through_akka_serialization_field_by_field()
    {
        foreach (var message in Samples())
        {
            var serializer = Sys.Serialization.FindSerializerFor(message);
            Assert.IsType<RoomWireSerializer>(serializer);
            Assert.Equal(RoomWireSerializer.Id, serializer.Identifier);

            var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
            var bytes = serializer.ToBinary(message);
            var back = Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);

            AssertSameFields(message, back, message.GetType().Name);
        }
    }

    [Fact]
    public void An_event_travels_without_its_local_publish_time()
    {
        var stamped = new RoomEvent("pen-1", 5, "ranking_changed", null, Frame(5), PublishedAt: 123_456);
        var serializer = Sys.Serialization.FindSerializerFor(stamped);

        var back = (RoomEvent)Sys.Serialization.Deserialize(serializer.ToBinary(stamped), serializer.Identifier,
            Akka.Serialization.Serialization.ManifestFor(serializer, stamped));

        AssertSameFields(stamped with { PublishedAt = 0 }, back, nameof(RoomEvent));
    }

    [Fact]
    public void Actor_refs_travel_as_their_remote_paths_and_resolve_to_the_same_actor()
    {
        var connection = CreateTestProbe();
        var message = new RelayUnsubscribe("pen-1", connection.Ref);
        var serializer = Sys.Serialization.FindSerializerFor(message);

        var bytes = serializer.ToBinary(message);

        var address = ((ExtendedActorSystem)Sys).Provider.DefaultAddress.ToString();
        Assert.StartsWith("akka.tcp://", address);
        Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(address + "/")) >= 0, $"the ref travels with its node's address {address}");
        var back = (RelayUnsubscribe)Sys.Serialization.Deserialize(bytes, serializer.Identifier, "unsub");
        back.Connection.Tell("hello");
        connection.ExpectMsg("hello");
    }

    /// <summary>
    /// Compares two values field by field: byte arrays by content, lists element by element, actor refs by path,
    /// records and other objects by each public property (so a field the serializer forgets fails here).
    /// </summary>
    private static void AssertSameFields(object? expected, object? actual, string path)
    {
        if (expected is null || actual is null)
        {
            Assert.True(expected is null && actual is null, $"{path}: expected {expected ?? "null"}, got {actual ?? "null"}");
            return;
        }
        switch (expected)
        {
            case byte[] bytes:
                Assert.Equal(bytes, Assert.IsType<byte[]>(actual));
                return;
            case string or bool or int or long:
                Assert.True(expected.Equals(actual), $"{path}: expected {expected}, got {actual}");
                return;
            case IActorRef actor:
                Assert.Equal(actor.Path.ToSerializationFormat(), Assert.IsAssignableFrom<IActorRef>(actual).Path.ToSerializationFormat());
                Assert.Equal(actor, actual);
                return;
            case IEnumerable list:
                var expectedItems = list.Cast<object?>().ToList();
                var actualItems = Assert.IsAssignableFrom<IEnumerable>(actual).Cast<object?>().ToList();
                Assert.True(expectedItems.Count == actualItems.Count, $"{path}: expected {expectedItems.Count} items, got {actualItems.Count}");
                for (var i = 0; i < expectedItems.Count; i++)
                    AssertSameFields(expectedItems[i], actualItems[i], $"{path}[{i}]");
                return;
        }
        Assert.Equal(expected.GetType(), actual.GetType());
        var properties = expected.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0);
        foreach (var property in properties)
            AssertSameFields(property.GetValue(expected), property.GetValue(actual), $"{path}.{property.Name}");
    }
}
