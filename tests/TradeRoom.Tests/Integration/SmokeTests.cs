using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

public class SmokeTests
{
    [Fact]
    public async Task Published_event_reaches_a_subscriber_over_a_real_socket()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await server.ConnectAndSubscribeAsync("u1", "r1");

        var seq = await server.PublishAsync("r1", "leaderboard_update", new { entries = new[] { new { userId = "u1", rank = 1 } } });

        var frame = await client.ReceiveAsync();
        Assert.Equal("leaderboard_update", frame.Type);
        Assert.Equal("r1", frame.BullPenId);
        Assert.Equal(seq, frame.Seq);
        Assert.Equal(1, frame.Data.GetProperty("entries")[0].GetProperty("rank").GetInt32());
    }
}
