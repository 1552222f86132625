using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using TradeRoom.Actors.Serialization;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// One event as a room's journal keeps it. Its seq is not stored: it is the journal's sequence number.
/// </summary>
/// <param name="AtMs">When the room took it, in Unix milliseconds: history-ttl counts from it across restarts.</param>
/// <param name="Epoch">The room's epoch, on the room's first event only (null on the others).</param>
public sealed record StoredEvent(string Type, byte[] Data, string? UserId, bool IsPrivate, long AtMs, string? Epoch);

/// <summary>
/// A room's snapshot: its epoch, its state and its resume history, so that recovery needs only the events after it
/// and the journal before it can be deleted. The seq it was taken at is the snapshot's sequence number.
/// </summary>
public sealed record RoomSnapshot(string Epoch, byte[]? Leaderboard, byte[]? Room, IReadOnlyList<string> Members, IReadOnlyList<HistoryEntry> History);

/// <summary>One event of the resume history, as subscribers receive it (<paramref name="Frame"/> is the whole frame).</summary>
public sealed record HistoryEntry(long Seq, string Type, string? VisibleTo, long AtMs, byte[] Frame);

/// <summary>
/// The binary form of <see cref="StoredEvent"/> and <see cref="RoomSnapshot"/> in the journal and the snapshot store
/// (bound in hocon/akka.conf). Explicit and versioned, so stored rooms never depend on reflection-based JSON or on
/// CLR type names: each payload starts with a format version byte, and the manifest names the type.
/// </summary>
public sealed class RoomSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    private const string EventManifest = "E";
    private const string SnapshotManifest = "S";
    private const byte Version = 1;

    public override int Identifier => 7301;

    public override string Manifest(object o) => o switch
    {
        StoredEvent => EventManifest,
        RoomSnapshot => SnapshotManifest,
        _ => throw new ArgumentException($"RoomSerializer cannot serialize {o.GetType()}"),
    };

    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Version);
            switch (obj)
            {
                case StoredEvent e:
                    w.Write(e.Type);
                    w.WriteBytes(e.Data);
                    w.WriteNullable(e.UserId);
                    w.Write(e.IsPrivate);
                    w.Write(e.AtMs);
                    w.WriteNullable(e.Epoch);
                    break;
                case RoomSnapshot s:
                    w.Write(s.Epoch);
                    w.WriteNullableBytes(s.Leaderboard);
                    w.WriteNullableBytes(s.Room);
                    w.Write(s.Members.Count);
                    foreach (var member in s.Members)
                        w.Write(member);
                    w.Write(s.History.Count);
                    foreach (var h in s.History)
                    {
                        w.Write(h.Seq);
                        w.Write(h.Type);
                        w.WriteNullable(h.VisibleTo);
                        w.Write(h.AtMs);
                        w.WriteBytes(h.Frame);
                    }
                    break;
                default:
                    throw new ArgumentException($"RoomSerializer cannot serialize {obj.GetType()}");
            }
        }
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        var version = r.ReadByte();
        if (version != Version)
            throw new SerializationException($"stored room data has format version {version}; this server reads version {Version}");
        switch (manifest)
        {
            case EventManifest:
                return new StoredEvent(r.ReadString(), r.ReadBytes(), r.ReadNullable(), r.ReadBoolean(), r.ReadInt64(), r.ReadNullable());
            case SnapshotManifest:
                var epoch = r.ReadString();
                var leaderboard = r.ReadNullableBytes();
                var room = r.ReadNullableBytes();
                var members = new string[r.ReadInt32()];
                for (var i = 0; i < members.Length; i++)
                    members[i] = r.ReadString();
                var history = new HistoryEntry[r.ReadInt32()];
                for (var i = 0; i < history.Length; i++)
                    history[i] = new HistoryEntry(r.ReadInt64(), r.ReadString(), r.ReadNullable(), r.ReadInt64(), r.ReadBytes());
                return new RoomSnapshot(epoch, leaderboard, room, members, history);
            default:
                throw new SerializationException($"RoomSerializer does not know the manifest \"{manifest}\"");
        }
    }
}
