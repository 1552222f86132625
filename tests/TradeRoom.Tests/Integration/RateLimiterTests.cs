using TradeRoom.Server.WebSockets;

namespace TradeRoom.Tests.Integration;

/// <summary>The server lag monitor on its own, on a clock the test drives (no timer runs).</summary>
public class ServerLagTests
{
    /// <summary>Ticks on time every period from the one after <paramref name="fromMs"/> up to <paramref name="toMs"/>; returns the last tick's time.</summary>
    private static long TickOnTime(ServerLag lag, long fromMs, long toMs)
    {
        var at = fromMs;
        while (at + ServerLag.PeriodMs <= toMs)
        {
            at += ServerLag.PeriodMs;
            lag.Tick(at);
        }
        return at;
    }

    [Fact]
    public void Ticks_on_time_mean_no_lag()
    {
        var lag = new ServerLag(0);

        var last = TickOnTime(lag, 0, 3_000);

        Assert.Equal(0, lag.LagMs(last));
        Assert.Equal(0, lag.LagMs(last + ServerLag.PeriodMs)); // the next tick is due, not late
    }

    [Fact]
    public void A_stall_shows_at_once_before_the_late_tick_runs()
    {
        var lag = new ServerLag(0);
        var last = TickOnTime(lag, 0, 1_000);

        // Nothing has ticked for 5 s: the tick due 100 ms after the last one is 4.9 s overdue.
        Assert.Equal(4_900, lag.LagMs(last + 5_000));
    }

    [Fact]
    public void A_late_tick_counts_for_fifty_ticks_then_is_forgotten()
    {
        var lag = new ServerLag(0);
        var last = TickOnTime(lag, 0, 1_000);

        lag.Tick(last + 800); // due at +100: 700 ms late
        last += 800;
        Assert.Equal(700, lag.LagMs(last));

        last = TickOnTime(lag, last, last + 49 * ServerLag.PeriodMs);
        Assert.Equal(700, lag.LagMs(last)); // 50 ticks, the late one among them

        lag.Tick(last + ServerLag.PeriodMs);
        Assert.Equal(0, lag.LagMs(last + ServerLag.PeriodMs));
    }

    [Fact]
    public void Each_tick_is_late_only_by_its_own_delay_not_the_ones_before()
    {
        var lag = new ServerLag(0);
        lag.Tick(400);   // 300 late
        lag.Tick(700);   // 200 late, measured from the tick at 400
        lag.Tick(800);   // on time

        Assert.Equal(300, lag.LagMs(800));
    }
}

/// <summary>
/// The rate limiter on a clock the test drives: a plain token bucket while the server keeps up; while it runs late,
/// messages that queued for it are not refused, and the credit is bounded.
/// </summary>
public class RateLimiterTests
{
    private const int Rate = 20;
    private const int Burst = 50;
    private const int FloodAfter = 50;
    private const long MaxCreditMs = 10_000;

    /// <summary>A limiter and the server's lag monitor on one simulated clock; ticks run on time unless the server is stalled.</summary>
    private sealed class Server(long maxCreditMs = MaxCreditMs)
    {
        private long _nextTickMs = ServerLag.PeriodMs;

        public ServerLag Lag { get; } = new(0);
        public long NowMs { get; private set; }

        public RateLimiter NewLimiter() => new(Rate, Burst, FloodAfter, Lag, maxCreditMs, NowMs);

        /// <summary>The server runs (its ticks on time) until <paramref name="ms"/>.</summary>
        public void RunUntil(long ms)
        {
            while (_nextTickMs <= ms)
            {
                Lag.Tick(_nextTickMs);
                _nextTickMs += ServerLag.PeriodMs;
            }
            NowMs = ms;
        }

        /// <summary>Nothing runs until <paramref name="ms"/>: not the ticks, not the reads.</summary>
        public void StallUntil(long ms) => NowMs = ms;

        /// <summary>The late tick runs now; the ones after it are due a period later.</summary>
        public void RunLateTick()
        {
            Lag.Tick(NowMs);
            _nextTickMs = NowMs + ServerLag.PeriodMs;
        }
    }

    [Fact]
    public void On_a_server_that_keeps_up_the_burst_passes_then_the_rate_and_no_more()
    {
        var server = new Server();
        server.RunUntil(10_000);
        var limiter = server.NewLimiter();

        var passed = Enumerable.Range(0, 60).Count(_ => limiter.TryTake(server.NowMs));
        Assert.Equal(Burst, passed);

        // One second later: one second's worth.
        server.RunUntil(11_000);
        Assert.Equal(Rate, Enumerable.Range(0, 60).Count(_ => limiter.TryTake(server.NowMs)));
    }

    [Fact]
    public void A_flood_on_a_server_that_keeps_up_is_flooding_after_flood_close_after_refusals()
    {
        var server = new Server();
        server.RunUntil(10_000);
        var limiter = server.NewLimiter();

        for (var i = 0; i < Burst + FloodAfter; i++)
            limiter.TryTake(server.NowMs);
        Assert.False(limiter.Flooding);

        limiter.TryTake(server.NowMs);
        Assert.True(limiter.Flooding);
    }

    /// <summary>
    /// A client sends 15 a second; the server runs, stalls for <paramref name="stallMs"/> (the messages of the stall
    /// wait in the kernel), then reads them all at once and goes on. Returns how many of all were refused.
    /// </summary>
    private static int RefusedAcrossAStall(Server server, long stallMs, bool tickRunsFirst)
    {
        var limiter = server.NewLimiter();
        var refused = 0;
        var start = server.NowMs;
        var stallFrom = start + 10_000;
        var stallTo = stallFrom + stallMs;
        var queued = 0;
        for (var i = 0; i < 15 * 20; i++)
        {
            var sentAt = start + i * 1000L / 15;
            if (sentAt >= stallFrom && sentAt < stallTo)
            {
                queued++;
                continue;
            }
            if (queued > 0)
            {
                server.StallUntil(stallTo);
                if (tickRunsFirst)
                    server.RunLateTick();
                for (; queued > 0; queued--)
                    refused += limiter.TryTake(server.NowMs) ? 0 : 1;
                if (!tickRunsFirst)
                    server.RunLateTick();
            }
            server.RunUntil(sentAt);
            refused += limiter.TryTake(server.NowMs) ? 0 : 1;
        }
        return refused;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Fifteen_a_second_across_a_five_second_stall_is_never_refused(bool tickRunsFirst)
    {
        var server = new Server();
        server.RunUntil(1_000);

        Assert.Equal(0, RefusedAcrossAStall(server, 5_000, tickRunsFirst));
    }

    [Fact]
    public void Without_lag_credit_the_same_stall_refuses_what_the_burst_cannot_hold()
    {
        // What the limiter did before: 76 messages read at once (the 75 queued in the stall and the one sent as it
        // ends), a burst of 50.
        var server = new Server(maxCreditMs: 0);
        server.RunUntil(1_000);

        Assert.Equal(26, RefusedAcrossAStall(server, 5_000, tickRunsFirst: false));
    }

    [Fact]
    public void The_credit_counts_at_most_max_lag_credit_of_lag()
    {
        var server = new Server();
        server.RunUntil(1_000);
        var limiter = server.NewLimiter();

        // A minute's stall; then the client sends as fast as it can.
        server.StallUntil(61_000);
        var passed = Enumerable.Range(0, 1_000).Count(_ => limiter.TryTake(server.NowMs));

        Assert.Equal(Burst + Rate * MaxCreditMs / 1000, passed);
    }

    [Fact]
    public void The_credit_ends_when_the_server_has_caught_up()
    {
        var server = new Server();
        server.RunUntil(1_000);
        var limiter = server.NewLimiter();
        server.StallUntil(6_000);
        server.RunLateTick();

        // Fifty on-time ticks later the stall is out of the window: a burst gets the plain burst again.
        server.RunUntil(6_000 + 50 * ServerLag.PeriodMs);
        Assert.Equal(Burst, Enumerable.Range(0, 1_000).Count(_ => limiter.TryTake(server.NowMs)));
    }

    [Fact]
    public void The_credit_keeps_only_what_time_refilled()
    {
        var server = new Server();
        server.RunUntil(1_000);
        var limiter = server.NewLimiter();
        Assert.Equal(Burst, Enumerable.Range(0, 1_000).Count(_ => limiter.TryTake(server.NowMs)));

        // A client that spent its burst just before a 2 s stall: the lag allows more, but 2 s refilled only 40.
        server.StallUntil(3_000);
        Assert.Equal(Rate * 2, Enumerable.Range(0, 1_000).Count(_ => limiter.TryTake(server.NowMs)));
    }

    [Fact]
    public void A_client_idle_through_a_stall_gets_the_burst_and_the_lag_s_worth()
    {
        var server = new Server();
        server.RunUntil(1_000);
        var limiter = server.NewLimiter();

        server.StallUntil(3_000); // the tick due at 1,100 is 1,900 ms overdue
        var passed = Enumerable.Range(0, 1_000).Count(_ => limiter.TryTake(server.NowMs));

        Assert.Equal(Burst + Rate * 1_900 / 1000, passed);
    }
}
