using Akka.Configuration;

namespace TradeRoom.Server.Demo;

/// <summary>The simulated trade room: <c>traderoom.demo</c> in the HOCON.</summary>
/// <param name="Enabled">Run the demo feed (also switched on by <c>--demo</c> or <c>TRADEROOM_DEMO=1</c>).</param>
/// <param name="BullPenId">The bull pen it trades in.</param>
/// <param name="Traders">How many simulated traders take part.</param>
/// <param name="TickInterval">One market step: prices move, orders execute or fail, a leaderboard_update goes out.</param>
/// <param name="RoundLength">How long a round trades before room_ended and the next round.</param>
public sealed record DemoSettings(bool Enabled, string BullPenId, int Traders, TimeSpan TickInterval, TimeSpan RoundLength)
{
    public const int MaxTraders = 16;

    /// <summary>Ticks in one round (at least 5).</summary>
    public int RoundTicks => Math.Max(5, (int)(RoundLength / TickInterval));

    /// <summary>Reads <c>traderoom.demo</c>; a wrong value is a <see cref="StartupException"/> that names it.</summary>
    public static DemoSettings FromConfig(Config config)
    {
        var c = config.GetConfig("traderoom.demo") ?? throw new StartupException("the HOCON has no traderoom.demo section");
        DemoSettings settings;
        try
        {
            settings = new DemoSettings(
                c.GetBoolean("enabled"),
                c.GetString("bull-pen-id") ?? "",
                c.GetInt("traders"),
                c.GetTimeSpan("tick-interval"),
                c.GetTimeSpan("round-length"));
        }
        catch (Exception e) when (e is ConfigurationException or FormatException or OverflowException)
        {
            throw new StartupException($"the settings are invalid: traderoom.demo: {e.Message}");
        }

        if (!Protocol.BullPenId.TryValidate(settings.BullPenId, out _, out var roomError))
            throw new StartupException($"traderoom.demo.bull-pen-id is invalid: {roomError}");
        if (settings.Traders is < 2 or > MaxTraders)
            throw new StartupException($"traderoom.demo.traders must be between 2 and {MaxTraders}, not {settings.Traders}");
        if (settings.TickInterval < TimeSpan.FromMilliseconds(10))
            throw new StartupException($"traderoom.demo.tick-interval must be at least 10ms, not {settings.TickInterval}");
        if (settings.RoundLength < settings.TickInterval * 5)
            throw new StartupException("traderoom.demo.round-length must be at least 5 tick-intervals");
        return settings;
    }
}
