using System.Text;
using TradeRoom.Protocol;

namespace TradeRoom.Tests.Protocol;

public class ClientMessageParserTests
{
    private static ClientMessage Parse(string json) => ClientMessageParser.Parse(Encoding.UTF8.GetBytes(json));

    private static RejectedMessage Rejected(string json, string code, string? type, string? bullPenId = null)
    {
        var rejected = Assert.IsType<RejectedMessage>(Parse(json));
        Assert.Equal(code, rejected.Code);
        Assert.Equal(type, rejected.RejectedType);
        Assert.Equal(type, rejected.Type);
        Assert.Equal(bullPenId, rejected.BullPenId);
        Assert.False(string.IsNullOrEmpty(rejected.Message));
        return rejected;
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("not json")]
    [InlineData("""{"type":"ping",}""")]
    [InlineData("""{"type":"ping"} trailing""")]
    [InlineData("""{'type':'ping'}""")]
    public void Invalid_JSON_is_rejected_as_invalid_json(string json)
    {
        Rejected(json, ErrorCodes.InvalidJson, null);
    }

    [Fact]
    public void Invalid_UTF8_is_rejected_as_invalid_json()
    {
        var rejected = Assert.IsType<RejectedMessage>(ClientMessageParser.Parse(new byte[] { 0x7B, 0xFF, 0xFE, 0x7D }));

        Assert.Equal(ErrorCodes.InvalidJson, rejected.Code);
    }

    [Fact]
    public void Invalid_UTF8_inside_a_string_is_rejected_without_throwing()
    {
        var bytes = "{\"type\":\"x"u8.ToArray().Concat(new byte[] { 0xFF }).Concat("\"}"u8.ToArray()).ToArray();

        Assert.IsType<RejectedMessage>(ClientMessageParser.Parse(bytes));
    }

    [Fact]
    public void JSON_nested_beyond_the_depth_limit_is_rejected_as_invalid_json()
    {
        var deep = """{"type":"ping","data":""" + new string('[', 40) + new string(']', 40) + "}";

        Rejected(deep, ErrorCodes.InvalidJson, null);
    }

    [Fact]
    public void JSON_nested_within_the_depth_limit_is_accepted()
    {
        var nested = """{"type":"ping","data":""" + new string('[', 20) + new string(']', 20) + "}";

        Assert.IsType<PingMessage>(Parse(nested));
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"auth\"")]
    [InlineData("42")]
    [InlineData("null")]
    public void Root_that_is_not_an_object_is_rejected_as_invalid_message(string json)
    {
        Rejected(json, ErrorCodes.InvalidMessage, null);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"data":{"token":"t"}}""")]
    [InlineData("""{"type":1}""")]
    [InlineData("""{"type":null}""")]
    [InlineData("""{"type":["auth"]}""")]
    public void Missing_or_non_string_type_is_rejected_as_invalid_message(string json)
    {
        Rejected(json, ErrorCodes.InvalidMessage, null);
    }

    [Fact]
    public void Auth_with_a_token_is_parsed()
    {
        var auth = Assert.IsType<AuthenticateMessage>(Parse("""{"type":"auth","data":{"token":"abc.def.ghi"}}"""));

        Assert.Equal("abc.def.ghi", auth.Token);
        Assert.True(auth.AllowedBeforeAuth);
    }

    [Theory]
    [InlineData("""{"type":"auth"}""")]
    [InlineData("""{"type":"auth","data":{}}""")]
    [InlineData("""{"type":"auth","data":{"token":123}}""")]
    [InlineData("""{"type":"auth","data":{"token":null}}""")]
    [InlineData("""{"type":"auth","data":"abc.def.ghi"}""")]
    public void Auth_without_a_string_token_is_rejected_as_invalid_message(string json)
    {
        var rejected = Rejected(json, ErrorCodes.InvalidMessage, "auth");

        Assert.True(rejected.AllowedBeforeAuth);
    }

    [Fact]
    public void Subscribe_with_a_string_id_is_parsed()
    {
        var subscribe = Assert.IsType<SubscribeRoomMessage>(Parse("""{"type":"subscribe_room","data":{"bullPenId":"bp-7"}}"""));

        Assert.Equal("bp-7", subscribe.BullPenId);
        Assert.False(subscribe.AllowedBeforeAuth);
    }

    [Fact]
    public void Subscribe_without_resume_fields_has_no_sinceSeq_and_no_epoch()
    {
        var subscribe = Assert.IsType<SubscribeRoomMessage>(Parse("""{"type":"subscribe_room","data":{"bullPenId":"bp-7"}}"""));

        Assert.Equal(new SubscribeRoomMessage("bp-7", null, null), subscribe);
    }

    [Theory]
    [InlineData("""{"bullPenId":"r1","sinceSeq":57,"epoch":"9f2c4e1a7b3d5e60"}""", 57L, "9f2c4e1a7b3d5e60")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":0,"epoch":""}""", 0L, "")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":9223372036854775807}""", long.MaxValue, null)]
    [InlineData("""{"bullPenId":"r1","epoch":"e1"}""", null, "e1")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":null,"epoch":null}""", null, null)]
    public void Subscribe_carries_sinceSeq_and_epoch_when_given(string data, long? sinceSeq, string? epoch)
    {
        var subscribe = Assert.IsType<SubscribeRoomMessage>(Parse($$"""{"type":"subscribe_room","data":{{data}}}"""));

        Assert.Equal(new SubscribeRoomMessage("r1", sinceSeq, epoch), subscribe);
    }

    [Theory]
    [InlineData("""{"bullPenId":"r1","sinceSeq":-1,"epoch":"e1"}""")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":1.5,"epoch":"e1"}""")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":"3","epoch":"e1"}""")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":true}""")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":9223372036854775808}""")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":3,"epoch":42}""")]
    [InlineData("""{"bullPenId":"r1","sinceSeq":3,"epoch":{"id":"e1"}}""")]
    [InlineData("""{"bullPenId":"r1","epoch":false}""")]
    public void Subscribe_with_a_bad_sinceSeq_or_epoch_is_rejected_as_invalid_message_naming_the_room(string data)
    {
        Rejected($$"""{"type":"subscribe_room","data":{{data}}}""", ErrorCodes.InvalidMessage, "subscribe_room", bullPenId: "r1");
    }

    [Theory]
    [InlineData("42", "42")]
    [InlineData("-7", "-7")]
    [InlineData("0", "0")]
    [InlineData("9223372036854775807", "9223372036854775807")]
    public void Integer_id_becomes_its_decimal_string(string number, string expected)
    {
        var subscribe = Assert.IsType<SubscribeRoomMessage>(Parse($$$"""{"type":"subscribe_room","data":{"bullPenId":{{{number}}}}}"""));

        Assert.Equal(expected, subscribe.BullPenId);
    }

    [Fact]
    public void Unsubscribe_is_parsed_like_subscribe()
    {
        var unsubscribe = Assert.IsType<UnsubscribeRoomMessage>(Parse("""{"type":"unsubscribe_room","data":{"bullPenId":12}}"""));

        Assert.Equal("12", unsubscribe.BullPenId);
    }

    [Fact]
    public void Id_of_128_characters_is_accepted()
    {
        var id = new string('a', 128);

        var subscribe = Assert.IsType<SubscribeRoomMessage>(Parse($$$"""{"type":"subscribe_room","data":{"bullPenId":"{{{id}}}"}}"""));

        Assert.Equal(id, subscribe.BullPenId);
    }

    [Theory]
    [InlineData("subscribe_room")]
    [InlineData("unsubscribe_room")]
    public void Id_of_129_characters_is_rejected_as_invalid_room(string type)
    {
        var id = new string('a', 129);

        var rejected = Rejected($$$"""{"type":"{{{type}}}","data":{"bullPenId":"{{{id}}}"}}""", ErrorCodes.InvalidRoom, type);

        Assert.Contains("128", rejected.Message);
    }

    [Theory]
    [InlineData("\"\"")]
    [InlineData("1.5")]
    [InlineData("42.0")]
    [InlineData("1e3")]
    [InlineData("99999999999999999999")]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("null")]
    [InlineData("{}")]
    [InlineData("[\"a\"]")]
    public void Id_that_is_not_a_non_empty_string_or_integer_is_rejected_as_invalid_room(string id)
    {
        Rejected($$$"""{"type":"subscribe_room","data":{"bullPenId":{{{id}}}}}""", ErrorCodes.InvalidRoom, "subscribe_room");
    }

    [Fact]
    public void Missing_id_is_rejected_as_invalid_room()
    {
        Rejected("""{"type":"subscribe_room","data":{"room":"a"}}""", ErrorCodes.InvalidRoom, "subscribe_room");
    }

    [Theory]
    [InlineData("""{"type":"subscribe_room"}""")]
    [InlineData("""{"type":"subscribe_room","data":"a"}""")]
    [InlineData("""{"type":"subscribe_room","data":null}""")]
    [InlineData("""{"type":"subscribe_room","data":["a"]}""")]
    public void Missing_or_non_object_data_is_rejected_as_invalid_message(string json)
    {
        Rejected(json, ErrorCodes.InvalidMessage, "subscribe_room");
    }

    [Fact]
    public void Unknown_type_is_rejected_as_unknown_type_keeping_the_type()
    {
        var rejected = Rejected("""{"type":"bogus","data":{}}""", ErrorCodes.UnknownType, "bogus");

        Assert.Contains("\"bogus\"", rejected.Message);
        Assert.False(rejected.AllowedBeforeAuth);
    }

    [Fact]
    public void Type_is_case_sensitive()
    {
        Rejected("""{"type":"PING"}""", ErrorCodes.UnknownType, "PING");
    }

    [Fact]
    public void Long_unknown_type_is_truncated_in_the_message_but_kept_whole()
    {
        var type = new string('z', 500);

        var rejected = Rejected($$$"""{"type":"{{{type}}}"}""", ErrorCodes.UnknownType, type);

        Assert.DoesNotContain(type, rejected.Message);
        Assert.Contains(new string('z', 64), rejected.Message);
    }

    [Fact]
    public void Truncated_unknown_type_with_an_emoji_at_the_cut_still_makes_a_valid_error_frame()
    {
        var type = new string('z', 63) + "📈" + new string('z', 10);

        var rejected = Rejected($$$"""{"type":"{{{type}}}"}""", ErrorCodes.UnknownType, type);

        using var frame = System.Text.Json.JsonDocument.Parse(ServerFrames.Error(rejected.Code, rejected.Message));
        Assert.StartsWith("unknown message type", frame.RootElement.GetProperty("data").GetProperty("message").GetString());
    }

    [Fact]
    public void Ping_with_data_keeps_the_data_as_raw_JSON()
    {
        var ping = Assert.IsType<PingMessage>(Parse("""{"type":"ping","data":{"t":1,"list":[true,null,"x"]}}"""));

        Assert.Equal("""{"t":1,"list":[true,null,"x"]}""", Encoding.UTF8.GetString(ping.Data!));
        Assert.True(ping.AllowedBeforeAuth);
    }

    [Fact]
    public void Ping_with_scalar_data_keeps_it()
    {
        var ping = Assert.IsType<PingMessage>(Parse("""{"type":"ping","data":7}"""));

        Assert.Equal("7", Encoding.UTF8.GetString(ping.Data!));
    }

    [Fact]
    public void Ping_without_data_has_none()
    {
        var ping = Assert.IsType<PingMessage>(Parse("""{"type":"ping"}"""));

        Assert.Null(ping.Data);
    }

    [Theory]
    [InlineData("""{"type":"\ud800"}""")]
    [InlineData("""{"type":"subscribe_room","data":{"bullPenId":"\udc00"}}""")]
    [InlineData("""{"type":"auth","data":{"token":"\ud800x"}}""")]
    public void Lone_surrogate_escapes_are_rejected_without_throwing(string json)
    {
        var message = Parse(json);

        Assert.IsType<RejectedMessage>(message);
    }
}
