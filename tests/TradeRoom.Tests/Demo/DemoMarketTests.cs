using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using TradeRoom.Server;
using TradeRoom.Server.Demo;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Demo;

/// <summary>The demo's simulated market, step by step, without a server.</summary>
public class DemoMarketTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    /// <summary>The events of <paramref name="ticks"/> steps, each with its step number and its data as JSON (as the facade serializes it).</summary>
    private static List<(int Tick, string Type, JsonElement Data)> Run(DemoMarket market, int ticks) =>
        Enumerable.Range(0, ticks)
            .SelectMany(t => market.Tick(Start.AddSeconds(t)).Select(e => (t, e.Type, JsonDocument.Parse(TradeRoomIntegration.ToJson(e.Data)).RootElement.Clone())))
            .ToList();

    [Fact]
    public void The_first_step_brings_members_the_room_start_and_a_full_leaderboard()
    {
        var first = Run(new DemoMarket(traders: 5, roundTicks: 20, TimeSpan.FromSeconds(1)), 1);

        Assert.Equal(Enumerable.Repeat(EventTypes.MemberJoined, 5), first.Take(5).Select(e => e.Type));
        Assert.Equal(EventTypes.RoomStarted, first[5].Type);
        Assert.Equal(1, first[5].Data.GetProperty("round").GetInt32());
        var board = first.Single(e => e.Type == EventTypes.LeaderboardUpdate).Data;
        Assert.Equal([1, 2, 3, 4, 5], board.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("rank").GetInt32()));
        Assert.Contains(first, e => e.Type == EventTypes.OrderExecuted && e.Data.GetProperty("userId").GetString() == "demo-user");
    }

    [Fact]
    public void Every_event_is_valid_for_the_integration_layer_and_private_ones_name_their_trader()
    {
        var events = Run(new DemoMarket(traders: 8, roundTicks: 30, TimeSpan.FromSeconds(1)), 100);

        foreach (var (_, type, data) in events)
        {
            var rejected = EventValidator.Validate(new PublishEvent("demo", type, JsonSerializer.SerializeToUtf8Bytes(data)), ShippedSettings.Rooms.PrivateEventTypes, out _);
            Assert.Null(rejected);
        }
        // 100 steps cover every one of the 14 types.
        Assert.Equal(EventTypes.All.OrderBy(t => t), events.Select(e => e.Type).Distinct().OrderBy(t => t));
    }

    [Fact]
    public void Ranks_reshuffle_as_prices_move()
    {
        var leaders = Run(new DemoMarket(traders: 8, roundTicks: 1000, TimeSpan.FromSeconds(1)), 60)
            .Where(e => e.Type == EventTypes.LeaderboardUpdate)
            .Select(e => string.Join(",", e.Data.GetProperty("entries").EnumerateArray().Select(x => x.GetProperty("userId").GetString())))
            .ToList();

        Assert.Equal(60, leaders.Count);
        Assert.True(leaders.Distinct().Count() > 10, $"only {leaders.Distinct().Count()} distinct orderings in 60 steps");
    }

    [Fact]
    public void A_round_ends_after_its_steps_and_the_next_one_starts_after_a_pause()
    {
        const int roundTicks = 10;
        var events = Run(new DemoMarket(traders: 4, roundTicks, TimeSpan.FromSeconds(1)), roundTicks + DemoMarket.PauseTicks + 1);

        var ended = events.Single(e => e.Type == EventTypes.RoomEnded);
        Assert.Equal(roundTicks - 1, ended.Tick);
        Assert.Equal(1, ended.Data.GetProperty("round").GetInt32());
        Assert.Equal(JsonValueKind.Object, ended.Data.GetProperty("winner").ValueKind);
        Assert.All(events.Where(e => e.Tick > ended.Tick && e.Tick < ended.Tick + 1 + DemoMarket.PauseTicks), e => Assert.Equal(EventTypes.RoomStateChanged, e.Type));
        var restarted = events.Where(e => e.Type == EventTypes.RoomStarted).ToList();
        Assert.Equal([0, roundTicks + DemoMarket.PauseTicks], restarted.Select(e => e.Tick));
        Assert.Equal(2, restarted[1].Data.GetProperty("round").GetInt32());
    }

    [Fact]
    public void The_same_settings_give_the_same_run()
    {
        static string Types(DemoMarket m) => string.Join(" ", Enumerable.Range(0, 50).SelectMany(_ => m.Tick(Start).Select(e => e.Type + JsonSerializer.Serialize(e.Data))));

        Assert.Equal(Types(new DemoMarket(8, 20, TimeSpan.FromSeconds(1))), Types(new DemoMarket(8, 20, TimeSpan.FromSeconds(1))));
    }
}

/// <summary>How <c>traderoom.demo</c> is switched on and checked. Sets TRADEROOM_DEMO, so runs alone.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public class DemoSettingsTests
{
    [Fact]
    public void The_demo_is_off_by_default_in_bull_pen_demo()
    {
        using var _ = new EnvironmentScope(("TRADEROOM_DEMO", null), ("TRADEROOM_CONFIG", null));

        var demo = DemoSettings.FromConfig(ServerConfig.Load());

        Assert.Equal((false, "demo", 8, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(2)), (demo.Enabled, demo.BullPenId, demo.Traders, demo.TickInterval, demo.RoundLength));
    }

    [Theory]
    [InlineData("1")]
    [InlineData("true")]
    [InlineData("on")]
    public void TRADEROOM_DEMO_switches_it_on(string value)
    {
        using var _ = new EnvironmentScope(("TRADEROOM_DEMO", value), ("TRADEROOM_CONFIG", null));

        Assert.True(DemoSettings.FromConfig(ServerConfig.Load()).Enabled);
    }

    [Fact]
    public async Task The_demo_switch_argument_switches_it_on_and_is_not_taken_for_a_configuration_key()
    {
        using var _ = new EnvironmentScope(("TRADEROOM_DEMO", null), ("TRADEROOM_CONFIG", null));

        // "--demo" before "--environment": were it a key, it would swallow "--environment" as its value.
        await using var app = TradeRoomHost.Build([TradeRoomHost.DemoSwitch, "--environment", "Testing"], $"traderoom.jwt.secret = \"{TestServer.Secret}\"\ntraderoom.persistence.provider = memory");

        Assert.True(app.Services.GetRequiredService<DemoSettings>().Enabled);
        Assert.Equal("Testing", app.Environment.EnvironmentName);
    }

    [Fact]
    public void A_TRADEROOM_DEMO_that_is_not_a_switch_value_is_refused_at_startup()
    {
        using var _ = new EnvironmentScope(("TRADEROOM_DEMO", "please"), ("TRADEROOM_CONFIG", null));

        var e = Assert.Throws<StartupException>(() => ServerConfig.Load());

        Assert.Contains("TRADEROOM_DEMO", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("traderoom.demo.traders = 1", "traders must be between 2 and 16")]
    [InlineData("traderoom.demo.bull-pen-id = \"\"", "bull-pen-id is invalid")]
    [InlineData("traderoom.demo.tick-interval = 1ms", "tick-interval must be at least 10ms")]
    [InlineData("traderoom.demo { tick-interval = 1s, round-length = 2s }", "round-length must be at least 5 tick-intervals")]
    public void Invalid_demo_settings_are_refused_naming_the_setting(string hocon, string message)
    {
        using var _ = new EnvironmentScope(("TRADEROOM_DEMO", null), ("TRADEROOM_CONFIG", null));

        var e = Assert.Throws<StartupException>(() => DemoSettings.FromConfig(ServerConfig.Load(hocon)));

        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }
}
