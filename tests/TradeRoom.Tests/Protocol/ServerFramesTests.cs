using System.Text;
using System.Text.Json;
using TradeRoom.Protocol;

namespace TradeRoom.Tests.Protocol;

public class ServerFramesTests
{
    private static JsonElement Root(byte[] frame)
    {
        using var document = JsonDocument.Parse(frame);
        return document.RootElement.Clone();
    }

    private static string[] Names(JsonElement element) => element.EnumerateObject().Select(p => p.Name).ToArray();

    [Fact]
    public void AuthSuccess_is_type_and_data_with_userId_and_node()
    {
        var root = Root(ServerFrames.AuthSuccess("u-1", "akka.tcp://traderoom@10.0.0.7:4053"));

        Assert.Equal(["type", "data"], Names(root));
        Assert.Equal("auth_success", root.GetProperty("type").GetString());
        Assert.Equal(["userId", "node"], Names(root.GetProperty("data")));
        Assert.Equal("u-1", root.GetProperty("data").GetProperty("userId").GetString());
        Assert.Equal("akka.tcp://traderoom@10.0.0.7:4053", root.GetProperty("data").GetProperty("node").GetString());
    }

    [Fact]
    public void AuthError_and_Error_carry_code_and_message()
    {
        foreach (var (frame, type) in new[] { (ServerFrames.AuthError("token_expired", "gone"), "auth_error"), (ServerFrames.Error("invalid_room", "bad"), "error") })
        {
            var root = Root(frame);
            Assert.Equal(["type", "data"], Names(root));
            Assert.Equal(type, root.GetProperty("type").GetString());
            Assert.Equal(["code", "message"], Names(root.GetProperty("data")));
        }
        Assert.Equal("token_expired", Root(ServerFrames.AuthError("token_expired", "gone")).GetProperty("data").GetProperty("code").GetString());
        Assert.Equal("bad", Root(ServerFrames.Error("invalid_room", "bad")).GetProperty("data").GetProperty("message").GetString());
    }

    [Fact]
    public void Error_about_a_room_carries_its_bullPenId_after_code_and_message()
    {
        var data = Root(ServerFrames.Error("too_many_subscriptions", "full", "bp \"7\"")).GetProperty("data");

        Assert.Equal(["code", "message", "bullPenId"], Names(data));
        Assert.Equal(("too_many_subscriptions", "full", "bp \"7\""),
            (data.GetProperty("code").GetString(), data.GetProperty("message").GetString(), data.GetProperty("bullPenId").GetString()));
    }

    [Theory]
    [InlineData("say \"hi\"")]
    [InlineData("back\\slash")]
    [InlineData("line\nbreak\ttab\u0001")]
    [InlineData("<script>&'</script>")]
    [InlineData("ünïcødé € 📈")]
    public void Messages_with_special_characters_stay_valid_JSON_and_round_trip(string message)
    {
        var root = Root(ServerFrames.Error("unknown_type", message));

        Assert.Equal(message, root.GetProperty("data").GetProperty("message").GetString());
    }

    [Fact]
    public void Subscribed_has_bullPenId_seq_epoch_recovered_and_the_state_as_given()
    {
        const string state = """{"leaderboard":null,"room":{"status":"active"},"members":["u1"]}""";
        var root = Root(ServerFrames.Subscribed("r1", 9_000_000_000, "9f2c4e1a7b3d5e60", false, Encoding.UTF8.GetBytes(state)));

        Assert.Equal(["type", "data"], Names(root));
        Assert.Equal("subscribed", root.GetProperty("type").GetString());
        var data = root.GetProperty("data");
        Assert.Equal(["bullPenId", "seq", "epoch", "recovered", "state"], Names(data));
        Assert.Equal("r1", data.GetProperty("bullPenId").GetString());
        Assert.Equal(9_000_000_000, data.GetProperty("seq").GetInt64());
        Assert.Equal("9f2c4e1a7b3d5e60", data.GetProperty("epoch").GetString());
        Assert.Equal(JsonValueKind.False, data.GetProperty("recovered").ValueKind);
        Assert.Equal(state, data.GetProperty("state").GetRawText());
    }

    [Fact]
    public void Subscribed_writes_recovered_true()
    {
        var data = Root(ServerFrames.Subscribed("r1", 3, "e", true, "{}"u8.ToArray())).GetProperty("data");

        Assert.Equal(JsonValueKind.True, data.GetProperty("recovered").ValueKind);
    }

    [Fact]
    public void Unsubscribed_has_bullPenId()
    {
        var root = Root(ServerFrames.Unsubscribed("r \"1\""));

        Assert.Equal("unsubscribed", root.GetProperty("type").GetString());
        Assert.Equal("r \"1\"", root.GetProperty("data").GetProperty("bullPenId").GetString());
    }

    [Fact]
    public void Pong_echoes_data_or_sends_an_empty_object()
    {
        var echoed = Root(ServerFrames.Pong(Encoding.UTF8.GetBytes("""{"t":[1,2]}""")));
        var empty = Root(ServerFrames.Pong(null));

        Assert.Equal("pong", echoed.GetProperty("type").GetString());
        Assert.Equal("""{"t":[1,2]}""", echoed.GetProperty("data").GetRawText());
        Assert.Equal(["type", "data"], Names(empty));
        Assert.Equal("{}", empty.GetProperty("data").GetRawText());
    }

    [Fact]
    public void Event_is_type_bullPenId_seq_and_data_as_given()
    {
        const string data = """{"price":101.25,"side":"buy","fills":[{"q":1}]}""";

        var frame = ServerFrames.Event("order_executed", "bp/1", 3, Encoding.UTF8.GetBytes(data));

        var root = Root(frame);
        Assert.Equal(["type", "bullPenId", "seq", "data"], Names(root));
        Assert.Equal("order_executed", root.GetProperty("type").GetString());
        Assert.Equal("bp/1", root.GetProperty("bullPenId").GetString());
        Assert.Equal(3, root.GetProperty("seq").GetInt64());
        Assert.Equal(data, root.GetProperty("data").GetRawText());
        Assert.Equal($$"""{"type":"order_executed","bullPenId":"bp/1","seq":3,"data":{{data}}}""", Encoding.UTF8.GetString(frame));
    }

    [Fact]
    public void Each_call_builds_a_new_array()
    {
        Assert.NotSame(ServerFrames.Pong(null), ServerFrames.Pong(null));
    }
}
