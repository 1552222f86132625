using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using TradeRoom.Contracts;

namespace TradeRoom.Tests.Contracts;

/// <summary>
/// The publish messages on the wire: written by one actor system and read by another, each configured as in
/// production: the server with its own hocon/akka.conf, the publisher with <see cref="ContractsConfig.Serialization"/>
/// only. Both ways, every message, with empty, null, non-ASCII and large fields.
/// </summary>
public sealed class PublishSerializerTests : IDisposable
{
    private readonly ActorSystem _server = ActorSystem.Create("server",
        ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "hocon", "akka.conf"))));

    private readonly ActorSystem _publisher = ActorSystem.Create("publisher", ConfigurationFactory.ParseString(ContractsConfig.Serialization));

    public void Dispose()
    {
        _server.Dispose();
        _publisher.Dispose();
    }

    /// <summary>Serialized by <paramref name="from"/>, deserialized by <paramref name="to"/> from the bytes, id and manifest alone.</summary>
    private static T Cross<T>(ActorSystem from, ActorSystem to, T message) where T : notnull
    {
        var serializer = from.Serialization.FindSerializerFor(message);
        Assert.IsType<PublishSerializer>(serializer);
        Assert.Equal(7302, serializer.Identifier);
        var bytes = serializer.ToBinary(message);
        return Assert.IsType<T>(to.Serialization.Deserialize(bytes, serializer.Identifier, Serialization.ManifestFor(serializer, message)));
    }

    public static TheoryData<string?, string?, byte[]?> Events()
    {
        var large = new byte[3 * 1024 * 1024];
        new Random(12).NextBytes(large);
        return new()
        {
            { "r1", "order_executed", "{\"userId\":\"u1\",\"qty\":10}"u8.ToArray() },
            { "", "", [] },
            { null, null, null },
            { "ligue-été-中文-🐂", "leaderboard_update", Encoding.UTF8.GetBytes("{\"name\":\"Zoë 🚀 ñ\"}") },
            { new string('x', 126), new string('y', 127), new byte[128] },
            { new string('é', 8191), new string('z', 16383), new byte[16384] },
            { "big", "snapshot_created", large },
        };
    }

    [Theory]
    [MemberData(nameof(Events))]
    public void Publish_events_cross_from_publisher_to_server_field_for_field(string? bullPenId, string? type, byte[]? data)
    {
        var back = Cross(_publisher, _server, new PublishEvent(bullPenId!, type!, data!));
        Assert.Equal(bullPenId, back.BullPenId);
        Assert.Equal(type, back.Type);
        Assert.Equal(data, back.Data);
    }

    [Theory]
    [InlineData("r1", 1L)]
    [InlineData("", 0L)]
    [InlineData(null, -1L)]
    [InlineData("ligue-été-🐂", long.MaxValue)]
    [InlineData("r2", long.MinValue)]
    public void Acknowledgements_cross_from_server_to_publisher(string? bullPenId, long seq)
    {
        var back = Cross(_server, _publisher, new EventPublished(bullPenId!, seq));
        Assert.Equal(bullPenId, back.BullPenId);
        Assert.Equal(seq, back.Seq);
        Assert.True(back.Accepted);
    }

    [Theory]
    [InlineData("r1", "unknown_type", "unknown event type \"order_placed\"")]
    [InlineData("", "", "")]
    [InlineData(null, null, null)]
    [InlineData("中文", "invalid_room", "« pas de salle » 🚫")]
    public void Rejections_cross_from_server_to_publisher(string? bullPenId, string? code, string? message)
    {
        var back = Cross(_server, _publisher, new PublishRejected(bullPenId!, code!, message!));
        Assert.Equal((bullPenId, code, message), (back.BullPenId, back.Code, back.Message));
        Assert.False(back.Accepted);
    }

    [Fact]
    public void A_long_rejection_message_crosses_whole()
    {
        var message = string.Concat(Enumerable.Repeat("données invalides ✗ ", 20_000));
        Assert.Equal(message, Cross(_server, _publisher, new PublishRejected("r1", "invalid_message", message)).Message);
    }

    [Fact]
    public void The_wire_form_is_compact_and_names_no_clr_type()
    {
        var serializer = (SerializerWithStringManifest)_server.Serialization.FindSerializerFor(new EventPublished("r1", 5));
        // version, length of "r1" + 1, "r1", 8 bytes of seq
        Assert.Equal(new byte[] { 1, 3, (byte)'r', (byte)'1', 5, 0, 0, 0, 0, 0, 0, 0 }, serializer.ToBinary(new EventPublished("r1", 5)));
        var data = "{\"a\":1}"u8.ToArray();
        Assert.Equal(1 + 3 + 15 + 1 + data.Length, serializer.ToBinary(new PublishEvent("r1", "order_executed", data)).Length);
        Assert.Equal(["PE", "EP", "PR"], new object[] { new PublishEvent("r", "t", []), new EventPublished("r", 1), new PublishRejected("r", "c", "m") }
            .Select(serializer.Manifest));
    }

    [Fact]
    public void A_string_that_is_not_text_is_refused_when_sending_rather_than_altered()
    {
        var serializer = _publisher.Serialization.FindSerializerFor(new PublishEvent("r1", "t", []));
        // A lone surrogate would arrive as U+FFFD: another room id than the one meant.
        Assert.ThrowsAny<ArgumentException>(() => serializer.ToBinary(new PublishEvent("r\ud800", "order_executed", [])));
    }

    [Fact]
    public void Broken_bytes_are_refused_with_a_serialization_error()
    {
        var serializer = (SerializerWithStringManifest)_server.Serialization.FindSerializerFor(new PublishEvent("r1", "t", []));
        var good = serializer.ToBinary(new PublishEvent("room", "order_executed", "{}"u8.ToArray()));

        for (var cut = 0; cut < good.Length; cut++)
            Assert.Throws<SerializationException>(() => serializer.FromBinary(good[..cut], "PE"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([.. good, 0], "PE"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary(good, "XX"));

        var otherVersion = (byte[])good.Clone();
        otherVersion[0] = 2;
        Assert.Contains("version 2", Assert.Throws<SerializationException>(() => serializer.FromBinary(otherVersion, "PE")).Message);

        // "room" with an invalid UTF-8 byte in it.
        var notUtf8 = (byte[])good.Clone();
        notUtf8[3] = 0xFF;
        Assert.Throws<SerializationException>(() => serializer.FromBinary(notUtf8, "PE"));

        // A length that claims more than int.MaxValue, and one of six varint bytes.
        Assert.Throws<SerializationException>(() => serializer.FromBinary([1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], "EP"));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "EP"));
    }
}
