using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Actors.Serialization;

/// <summary>
/// The binary form of every room message that crosses nodes in cluster mode (bound in hocon/akka.conf): events on
/// their way to a room and from a room to each node's relay, subscribes and their answers, relay joins, the
/// room queries, and retention's checks. Hand-written, so the hot path (a <see cref="RoomEvent"/> to every node) costs one small header and
/// the frame's bytes as they are, with no reflection and no CLR type names on the wire; the manifest names the type.
/// Actor refs travel as their full paths. <see cref="RoomEvent.PublishedAt"/> is a local clock reading, so it is not
/// sent (0 on the receiving node: not stamped).
/// </summary>
public sealed class RoomWireSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 7303;

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        RoomEvent => "ev",
        RoutedEvent => "pub",
        RelaySubscribe => "sub",
        RelaySubscribed => "subd",
        RelayUnsubscribe => "unsub",
        RelayJoin => "join",
        RelayJoined => "joined",
        RelayRefused => "refused",
        GetRooms => "rooms?",
        RoomList => "rooms",
        GetRoomDetails => "room?",
        RoomDetails => "room",
        RoomNotFound => "noroom",
        GetRoomCount => "count?",
        RoomCount => "count",
        GetLocalRooms => "local-rooms?",
        GetLocalRoomDetails => "local-room?",
        GetLocalRoomCount => "local-count?",
        PurgeIfStale => "purge?",
        RetentionChecked => "purged",
        _ => throw new ArgumentException($"{nameof(RoomWireSerializer)} cannot serialize {o.GetType()}"),
    };

    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            switch (obj)
            {
                case RoomEvent e:
                    WriteEvent(w, e);
                    break;
                case RoutedEvent e:
                    w.Write(e.BullPenId);
                    w.Write(e.Type);
                    w.WriteBytes(e.Data);
                    w.WriteNullable(e.UserId);
                    w.Write(e.IsPrivate);
                    break;
                case RelaySubscribe s:
                    w.Write(s.BullPenId);
                    WriteRef(w, s.Relay);
                    WriteRef(w, s.Connection);
                    w.Write(s.UserId);
                    w.Write(s.SinceSeq.HasValue);
                    if (s.SinceSeq is { } since)
                        w.Write(since);
                    w.WriteNullable(s.Epoch);
                    w.Write(s.MayStart);
                    break;
                case RelaySubscribed s:
                    WriteRef(w, s.Connection);
                    WriteAck(w, s.Ack);
                    WriteEvents(w, s.Replay);
                    break;
                case RelayUnsubscribe u:
                    w.Write(u.BullPenId);
                    WriteRef(w, u.Connection);
                    break;
                case RelayJoin j:
                    w.Write(j.BullPenId);
                    WriteRef(w, j.Relay);
                    w.Write(j.Members.Count);
                    foreach (var member in j.Members)
                    {
                        WriteRef(w, member.Connection);
                        w.Write(member.UserId);
                    }
                    w.Write(j.SinceSeq);
                    w.WriteNullable(j.Epoch);
                    break;
                case RelayJoined j:
                    w.Write(j.BullPenId);
                    w.Write(j.Seq);
                    w.Write(j.Epoch);
                    w.Write(j.Recovered);
                    w.WriteBytes(j.State);
                    WriteEvents(w, j.Replay);
                    break;
                case RelayRefused r:
                    w.Write(r.BullPenId);
                    w.Write(r.Connection is not null);
                    if (r.Connection is not null)
                        WriteRef(w, r.Connection);
                    w.Write(r.Code);
                    w.Write(r.Message);
                    break;
                case GetRooms q:
                    w.Write(q.Limit);
                    w.WriteNullable(q.After);
                    break;
                case RoomList list:
                    w.Write(list.Rooms.Count);
                    foreach (var room in list.Rooms)
                    {
                        w.Write(room.BullPenId);
                        w.Write(room.Subscribers);
                        w.Write(room.Seq);
                        w.Write(room.Epoch);
                        w.WriteNullable(room.Node);
                    }
                    w.WriteNullable(list.Next);
                    break;
                case GetRoomDetails q:
                    w.Write(q.BullPenId);
                    break;
                case RoomDetails d:
                    w.Write(d.BullPenId);
                    w.Write(d.Subscribers);
                    w.Write(d.Seq);
                    w.Write(d.Epoch);
                    w.WriteBytes(d.State);
                    w.Write(d.Users.Count);
                    foreach (var user in d.Users)
                        w.Write(user);
                    w.WriteNullable(d.Node);
                    break;
                case RoomNotFound n:
                    w.Write(n.BullPenId);
                    break;
                case GetRoomCount:
                    break;
                case RoomCount c:
                    w.Write(c.Rooms);
                    break;
                case GetLocalRooms q:
                    w.Write(q.Limit);
                    w.WriteNullable(q.After);
                    break;
                case GetLocalRoomDetails q:
                    w.Write(q.BullPenId);
                    break;
                case GetLocalRoomCount:
                    break;
                case PurgeIfStale p:
                    w.Write(p.BullPenId);
                    w.Write(p.Seq);
                    break;
                case RetentionChecked c:
                    w.Write(c.BullPenId);
                    w.Write(c.Purged);
                    break;
                default:
                    throw new ArgumentException($"{nameof(RoomWireSerializer)} cannot serialize {obj.GetType()}");
            }
        }
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        switch (manifest)
        {
            case "ev":
                return ReadEvent(r);
            case "pub":
                return new RoutedEvent(r.ReadString(), r.ReadString(), r.ReadBytes(), r.ReadNullable(), r.ReadBoolean());
            case "sub":
                return new RelaySubscribe(r.ReadString(), ReadRef(r), ReadRef(r), r.ReadString(), r.ReadBoolean() ? r.ReadInt64() : null, r.ReadNullable(),
                    r.ReadBoolean());
            case "subd":
                return new RelaySubscribed(ReadRef(r), ReadAck(r), ReadEvents(r));
            case "unsub":
                return new RelayUnsubscribe(r.ReadString(), ReadRef(r));
            case "join":
            {
                var id = r.ReadString();
                var relay = ReadRef(r);
                var members = new RelayMember[r.ReadInt32()];
                for (var i = 0; i < members.Length; i++)
                    members[i] = new RelayMember(ReadRef(r), r.ReadString());
                return new RelayJoin(id, relay, members, r.ReadInt64(), r.ReadNullable());
            }
            case "joined":
                return new RelayJoined(r.ReadString(), r.ReadInt64(), r.ReadString(), r.ReadBoolean(), r.ReadBytes(), ReadEvents(r));
            case "refused":
                return new RelayRefused(r.ReadString(), r.ReadBoolean() ? ReadRef(r) : null, r.ReadString(), r.ReadString());
            case "rooms?":
                return new GetRooms(r.ReadInt32(), r.ReadNullable());
            case "rooms":
            {
                var rooms = new RoomSummary[r.ReadInt32()];
                for (var i = 0; i < rooms.Length; i++)
                    rooms[i] = new RoomSummary(r.ReadString(), r.ReadInt32(), r.ReadInt64(), r.ReadString(), r.ReadNullable());
                return new RoomList(rooms, r.ReadNullable());
            }
            case "room?":
                return new GetRoomDetails(r.ReadString());
            case "room":
            {
                var id = r.ReadString();
                var subscribers = r.ReadInt32();
                var seq = r.ReadInt64();
                var epoch = r.ReadString();
                var state = r.ReadBytes();
                var users = new string[r.ReadInt32()];
                for (var i = 0; i < users.Length; i++)
                    users[i] = r.ReadString();
                return new RoomDetails(id, subscribers, seq, epoch, state, users, r.ReadNullable());
            }
            case "noroom":
                return new RoomNotFound(r.ReadString());
            case "count?":
                return GetRoomCount.Instance;
            case "count":
                return new RoomCount(r.ReadInt32());
            case "local-rooms?":
                return new GetLocalRooms(r.ReadInt32(), r.ReadNullable());
            case "local-room?":
                return new GetLocalRoomDetails(r.ReadString());
            case "local-count?":
                return GetLocalRoomCount.Instance;
            case "purge?":
                return new PurgeIfStale(r.ReadString(), r.ReadInt64());
            case "purged":
                return new RetentionChecked(r.ReadString(), r.ReadBoolean());
            default:
                throw new SerializationException($"{nameof(RoomWireSerializer)} does not know the manifest \"{manifest}\"");
        }
    }

    private static void WriteEvent(BinaryWriter w, RoomEvent e)
    {
        w.Write(e.BullPenId);
        w.Write(e.Seq);
        w.Write(e.Type);
        w.WriteNullable(e.VisibleTo);
        w.WriteBytes(e.Frame);
    }

    private static RoomEvent ReadEvent(BinaryReader r) =>
        new(r.ReadString(), r.ReadInt64(), r.ReadString(), r.ReadNullable(), r.ReadBytes());

    private static void WriteEvents(BinaryWriter w, IReadOnlyList<RoomEvent> events)
    {
        w.Write(events.Count);
        foreach (var e in events)
            WriteEvent(w, e);
    }

    private static RoomEvent[] ReadEvents(BinaryReader r)
    {
        var events = new RoomEvent[r.ReadInt32()];
        for (var i = 0; i < events.Length; i++)
            events[i] = ReadEvent(r);
        return events;
    }

    private static void WriteAck(BinaryWriter w, SubscribeAck a)
    {
        w.Write(a.BullPenId);
        w.Write(a.Seq);
        w.Write(a.Epoch);
        w.Write(a.Recovered);
        w.WriteBytes(a.State);
        w.Write(a.Replayed);
        w.Write(a.Started);
    }

    private static SubscribeAck ReadAck(BinaryReader r) =>
        new(r.ReadString(), r.ReadInt64(), r.ReadString(), r.ReadBoolean(), r.ReadBytes(), r.ReadInt32(), r.ReadBoolean());

    private static void WriteRef(BinaryWriter w, IActorRef actor) => w.Write(Akka.Serialization.Serialization.SerializedActorPath(actor));

    private IActorRef ReadRef(BinaryReader r) => system.Provider.ResolveActorRef(r.ReadString());

}
