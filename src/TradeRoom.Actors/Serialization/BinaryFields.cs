namespace TradeRoom.Actors.Serialization;

/// <summary>
/// The field encodings the server's binary serializers share (<see cref="Rooms.RoomSerializer"/> for the store,
/// <see cref="RoomWireSerializer"/> between nodes): a byte array as its length then its bytes, an optional value as a
/// presence flag then the value; strings are <see cref="BinaryWriter"/>'s length-prefixed UTF-8.
/// </summary>
internal static class BinaryFields
{
    public static void WriteBytes(this BinaryWriter w, byte[] bytes)
    {
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    public static byte[] ReadBytes(this BinaryReader r) => r.ReadBytes(r.ReadInt32());

    public static void WriteNullable(this BinaryWriter w, string? value)
    {
        w.Write(value is not null);
        if (value is not null)
            w.Write(value);
    }

    public static string? ReadNullable(this BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;

    public static void WriteNullableBytes(this BinaryWriter w, byte[]? bytes)
    {
        w.Write(bytes is not null);
        if (bytes is not null)
            w.WriteBytes(bytes);
    }

    public static byte[]? ReadNullableBytes(this BinaryReader r) => r.ReadBoolean() ? r.ReadBytes() : null;
}
