using System.Buffers.Binary;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;

namespace TradeRoom.Contracts;

/// <summary>
/// The wire form of <see cref="PublishEvent"/>, <see cref="EventPublished"/> and <see cref="PublishRejected"/> between a
/// publisher's process and the server (serializer id <see cref="Id"/>, bound in hocon/akka.conf on the server and by
/// <see cref="ContractsConfig.Serialization"/> on a publisher). Hand-written and versioned: a version byte, then
/// each field in order. A string or byte array is its length + 1 as a 7-bit varint (0: null) and its bytes (strings
/// in UTF-8); a seq is 8 bytes little-endian. The manifest names the message, never a CLR type.
/// </summary>
public sealed class PublishSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>The serializer id (the rooms' <c>RoomSerializer</c> is 7301).</summary>
    public const int Id = 7302;

    internal const string PublishEventManifest = "PE";
    internal const string EventPublishedManifest = "EP";
    internal const string PublishRejectedManifest = "PR";
    private const byte Version = 1;

    // Strict both ways: a string with a lone surrogate cannot be sent (it would arrive as another string, e.g. another
    // room id), and bytes that are not UTF-8 are refused rather than read as U+FFFD.
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        PublishEvent => PublishEventManifest,
        EventPublished => EventPublishedManifest,
        PublishRejected => PublishRejectedManifest,
        _ => throw new ArgumentException($"PublishSerializer cannot serialize {o.GetType()}"),
    };

    public override byte[] ToBinary(object obj)
    {
        switch (obj)
        {
            case PublishEvent e:
                {
                    var bytes = new byte[1 + StringSize(e.BullPenId) + StringSize(e.Type) + BytesSize(e.Data)];
                    var at = WriteVersion(bytes);
                    at += WriteString(bytes.AsSpan(at), e.BullPenId);
                    at += WriteString(bytes.AsSpan(at), e.Type);
                    WriteBytes(bytes.AsSpan(at), e.Data);
                    return bytes;
                }
            case EventPublished p:
                {
                    var bytes = new byte[1 + StringSize(p.BullPenId) + sizeof(long)];
                    var at = WriteVersion(bytes);
                    at += WriteString(bytes.AsSpan(at), p.BullPenId);
                    BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at), p.Seq);
                    return bytes;
                }
            case PublishRejected r:
                {
                    var bytes = new byte[1 + StringSize(r.BullPenId) + StringSize(r.Code) + StringSize(r.Message)];
                    var at = WriteVersion(bytes);
                    at += WriteString(bytes.AsSpan(at), r.BullPenId);
                    at += WriteString(bytes.AsSpan(at), r.Code);
                    WriteString(bytes.AsSpan(at), r.Message);
                    return bytes;
                }
            default:
                throw new ArgumentException($"PublishSerializer cannot serialize {obj.GetType()}");
        }
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        try
        {
            ReadOnlySpan<byte> span = bytes;
            if (span.IsEmpty || span[0] != Version)
                throw new SerializationException(
                    $"publish message has format version {(span.IsEmpty ? "(none)" : span[0].ToString(System.Globalization.CultureInfo.InvariantCulture))}; this side reads version {Version}");
            span = span[1..];
            object message = manifest switch
            {
                PublishEventManifest => new PublishEvent(ReadString(ref span)!, ReadString(ref span)!, ReadBytes(ref span)!),
                EventPublishedManifest => new EventPublished(ReadString(ref span)!, ReadInt64(ref span)),
                PublishRejectedManifest => new PublishRejected(ReadString(ref span)!, ReadString(ref span)!, ReadString(ref span)!),
                _ => throw new SerializationException($"PublishSerializer does not know the manifest \"{manifest}\""),
            };
            if (!span.IsEmpty)
                throw new SerializationException($"publish message \"{manifest}\" has {span.Length} bytes after its last field");
            return message;
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException)
        {
            // A length past the end, a varint too long, bytes that are not UTF-8: a broken message, said as such.
            throw new SerializationException($"publish message \"{manifest}\" is malformed: {e.Message}", e);
        }
    }

    private static int WriteVersion(Span<byte> bytes)
    {
        bytes[0] = Version;
        return 1;
    }

    private static int StringSize(string? value)
    {
        if (value is null)
            return 1;
        var length = Utf8.GetByteCount(value);
        return LengthSize(length) + length;
    }

    private static int BytesSize(byte[]? value) => value is null ? 1 : LengthSize(value.Length) + value.Length;

    private static int LengthSize(int length)
    {
        var size = 1;
        for (var v = (uint)length + 1; v >= 0x80; v >>= 7)
            size++;
        return size;
    }

    private static int WriteString(Span<byte> to, string? value)
    {
        if (value is null)
            return WriteLength(to, -1);
        var at = WriteLength(to, Utf8.GetByteCount(value));
        return at + Utf8.GetBytes(value, to[at..]);
    }

    private static int WriteBytes(Span<byte> to, byte[]? value)
    {
        if (value is null)
            return WriteLength(to, -1);
        var at = WriteLength(to, value.Length);
        value.CopyTo(to[at..]);
        return at + value.Length;
    }

    /// <summary>Writes length + 1 as a 7-bit varint, so that -1 (null) is the single byte 0.</summary>
    private static int WriteLength(Span<byte> to, int length)
    {
        var v = (uint)(length + 1);
        var at = 0;
        for (; v >= 0x80; v >>= 7)
            to[at++] = (byte)(v | 0x80);
        to[at++] = (byte)v;
        return at;
    }

    /// <summary>The length written by <see cref="WriteLength"/>: -1 for null.</summary>
    private static int ReadLength(ref ReadOnlySpan<byte> from)
    {
        uint v = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = from[0];
            from = from[1..];
            v |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                if (v > int.MaxValue)
                    throw new ArgumentException("a length is out of range");
                return (int)v - 1;
            }
        }
        throw new ArgumentException("a length has more than 5 bytes");
    }

    private static string? ReadString(ref ReadOnlySpan<byte> from)
    {
        var length = ReadLength(ref from);
        if (length < 0)
            return null;
        var value = Utf8.GetString(from[..length]);
        from = from[length..];
        return value;
    }

    private static byte[]? ReadBytes(ref ReadOnlySpan<byte> from)
    {
        var length = ReadLength(ref from);
        if (length < 0)
            return null;
        var value = from[..length].ToArray();
        from = from[length..];
        return value;
    }

    private static long ReadInt64(ref ReadOnlySpan<byte> from)
    {
        var value = BinaryPrimitives.ReadInt64LittleEndian(from);
        from = from[sizeof(long)..];
        return value;
    }
}
