using TradeRoom.Protocol;

namespace TradeRoom.Server.Demo;

/// <summary>One event the demo publishes: its type and its <c>data</c> (serialized by the integration facade).</summary>
public readonly record struct DemoEvent(string Type, object Data);

/// <summary>
/// A small simulated market for the demo trade room: traders with cash and positions, prices on a random walk,
/// rounds that start, trade and end. Plain state, no I/O: each <see cref="Tick"/> returns the events of one step.
/// Seeded, so a run is the same every time (only the timestamps differ).
/// </summary>
public sealed class DemoMarket
{
    public const decimal StartingCash = 100_000m;

    /// <summary>Ticks of quiet between room_ended and the next room_started.</summary>
    public const int PauseTicks = 3;

    private const int SnapshotEvery = 15;
    private const int RoomStateEvery = 10;

    private static readonly (string UserId, string Name)[] Roster =
    [
        ("demo-user", "Demo User"), ("ava", "Ava Chen"), ("ben", "Ben Okafor"), ("chloe", "Chloé Martin"),
        ("dev", "Dev Patel"), ("emma", "Emma Larsen"), ("farid", "Farid Haddad"), ("gia", "Gia Romano"),
        ("hiro", "Hiro Tanaka"), ("ines", "Inès Duarte"), ("jonas", "Jonas Weber"), ("kofi", "Kofi Mensah"),
        ("lena", "Lena Novak"), ("mateo", "Mateo Silva"), ("nora", "Nora Lindqvist"), ("omar", "Omar Aziz"),
    ];

    private static readonly (string Symbol, decimal Price)[] Listing =
    [
        ("AAPL", 190m), ("MSFT", 420m), ("NVDA", 130m), ("TSLA", 250m), ("AMZN", 185m), ("META", 560m), ("JPM", 210m), ("XOM", 115m),
    ];

    private static readonly string[] FailureReasons = ["insufficient_buying_power", "price_moved", "market_halted", "risk_limit"];

    private readonly Random _random = new(2026);
    private readonly List<Trader> _traders;
    private readonly Dictionary<string, decimal> _prices = Listing.ToDictionary(l => l.Symbol, l => l.Price);
    private readonly int _roundTicks;
    private readonly TimeSpan _tickInterval;
    private Dictionary<string, int> _ranks = new(StringComparer.Ordinal);
    private int _tickInRound;
    private int _pauseLeft;
    private long _orderCounter;
    private bool _membersJoined;

    /// <param name="tickInterval">How often <see cref="Tick"/> is called: only for the times the events announce.</param>
    public DemoMarket(int traders, int roundTicks, TimeSpan tickInterval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(traders, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(traders, Roster.Length);
        ArgumentOutOfRangeException.ThrowIfLessThan(roundTicks, 5);
        _traders = Roster.Take(traders).Select(r => new Trader(r.UserId, r.Name)).ToList();
        _roundTicks = roundTicks;
        _tickInterval = tickInterval;
    }

    /// <summary>The round being traded (or, between rounds, the one that just ended).</summary>
    public int Round { get; private set; }

    /// <summary>The events of one market step, in publishing order.</summary>
    public IReadOnlyList<DemoEvent> Tick(DateTimeOffset now)
    {
        var events = new List<DemoEvent>();
        if (_pauseLeft > 0)
        {
            _pauseLeft--;
            if (_pauseLeft == PauseTicks - 1)
                events.Add(new(EventTypes.RoomStateChanged, new
                {
                    status = "waiting",
                    round = Round + 1,
                    name = $"Demo round {Round + 1}",
                    startsAt = now + _tickInterval * PauseTicks,
                }));
            return events;
        }

        if (_tickInRound == 0)
            StartRound(now, events);

        MovePrices();
        Trade(now, events);
        ChurnMembers(now, events);
        Rank(now, events);

        _tickInRound++;
        if (_tickInRound % RoomStateEvery == 0 && _tickInRound < _roundTicks)
            events.Add(new(EventTypes.RoomStateChanged, new
            {
                status = "active",
                round = Round,
                name = $"Demo round {Round}",
                secondsLeft = (int)Math.Ceiling((_tickInterval * (_roundTicks - _tickInRound)).TotalSeconds),
            }));
        if (_tickInRound % SnapshotEvery == 0 && _tickInRound < _roundTicks)
            events.Add(new(EventTypes.SnapshotCreated, Leaderboard(now, $"r{Round}-t{_tickInRound}")));
        if (_tickInRound >= _roundTicks)
            EndRound(now, events);
        return events;
    }

    private void StartRound(DateTimeOffset now, List<DemoEvent> events)
    {
        Round++;
        foreach (var trader in _traders)
            trader.Reset();
        _ranks = new Dictionary<string, int>(StringComparer.Ordinal);

        if (!_membersJoined)
        {
            // Members stay across rounds (leaving and coming back now and then); they join once, at the first round.
            _membersJoined = true;
            foreach (var trader in _traders)
            {
                trader.InRoom = true;
                events.Add(new(EventTypes.MemberJoined, new { userId = trader.UserId, name = trader.Name, joinedAt = now }));
            }
        }
        events.Add(new(EventTypes.RoomStarted, new
        {
            round = Round,
            name = $"Demo round {Round}",
            startsAt = now,
            endsAt = now + _tickInterval * _roundTicks,
            startingCash = StartingCash,
            symbols = Listing.Select(l => l.Symbol).ToArray(),
        }));

        // Everyone opens with one buy, so the leaderboard spreads out from the first tick.
        foreach (var trader in _traders.Where(t => t.InRoom))
            PlaceOrder(trader, now, events, forceBuy: true);
    }

    private void EndRound(DateTimeOffset now, List<DemoEvent> events)
    {
        var standings = Standings();
        var winner = standings[0];
        events.Add(new(EventTypes.SnapshotCreated, Leaderboard(now, $"r{Round}-final")));
        events.Add(new(EventTypes.RoomEnded, new
        {
            round = Round,
            endedAt = now,
            winner = new { userId = winner.UserId, name = winner.Name, pnl = Money(winner.Pnl(_prices)) },
        }));
        _tickInRound = 0;
        _pauseLeft = PauseTicks;
    }

    private void MovePrices()
    {
        foreach (var (symbol, _) in Listing)
        {
            // About 0.8% per step, so a minute of demo moves the standings visibly.
            var change = (decimal)(Gaussian() * 0.008);
            _prices[symbol] = Math.Max(1m, Math.Round(_prices[symbol] * (1 + change), 2));
        }
    }

    private void Trade(DateTimeOffset now, List<DemoEvent> events)
    {
        var present = _traders.Where(t => t.InRoom).ToList();
        var orders = _random.Next(1, 4);
        for (var i = 0; i < orders && present.Count > 0; i++)
            PlaceOrder(present[_random.Next(present.Count)], now, events, forceBuy: false);

        // Holders see their positions and portfolios revalued as prices move; a couple per step is plenty.
        foreach (var trader in present.Where(t => t.Positions.Count > 0).OrderBy(_ => _random.Next()).Take(2))
        {
            var (symbol, position) = trader.Positions.ElementAt(_random.Next(trader.Positions.Count));
            events.Add(new(EventTypes.PositionUpdate, PositionData(trader, symbol, position, now)));
            events.Add(new(EventTypes.PortfolioUpdate, PortfolioData(trader, now)));
        }
    }

    private void PlaceOrder(Trader trader, DateTimeOffset now, List<DemoEvent> events, bool forceBuy)
    {
        var orderId = $"d{Round}-{++_orderCounter}";
        var held = trader.Positions.Keys.ToList();
        var sell = !forceBuy && held.Count > 0 && _random.NextDouble() < 0.4;
        var symbol = sell ? held[_random.Next(held.Count)] : Listing[_random.Next(Listing.Length)].Symbol;
        var price = _prices[symbol];
        var side = sell ? "sell" : "buy";
        int qty;
        if (sell)
        {
            var owned = trader.Positions[symbol].Qty;
            qty = _random.NextDouble() < 0.5 ? owned : Math.Max(1, owned / 2);
        }
        else
        {
            qty = Math.Max(1, (int)(_random.Next(8_000, 40_000) / price));
        }

        var roll = _random.NextDouble();
        if (!forceBuy && roll < 0.05)
        {
            events.Add(new(EventTypes.OrderCancelled, new { userId = trader.UserId, orderId, symbol, side, qty, reason = "cancelled_by_trader", at = now }));
            return;
        }
        var unaffordable = !sell && qty * price > trader.Cash;
        if (unaffordable || (!forceBuy && roll < 0.17))
        {
            var reason = unaffordable ? FailureReasons[0] : FailureReasons[1 + _random.Next(FailureReasons.Length - 1)];
            events.Add(new(EventTypes.OrderFailed, new { userId = trader.UserId, orderId, symbol, side, qty, price, reason, at = now }));
            return;
        }

        trader.Trades++;
        events.Add(new(EventTypes.OrderExecuted, new { userId = trader.UserId, orderId, symbol, side, qty, price, executedAt = now }));
        if (sell)
        {
            var position = trader.Positions[symbol];
            var realized = (price - position.AvgPrice) * qty;
            trader.Cash += qty * price;
            position.Qty -= qty;
            if (position.Qty == 0)
            {
                trader.Positions.Remove(symbol);
                events.Add(new(EventTypes.PositionClosed, new { userId = trader.UserId, symbol, realizedPnl = Money(realized), closedAt = now }));
            }
            else
            {
                events.Add(new(EventTypes.PositionUpdate, PositionData(trader, symbol, position, now)));
            }
        }
        else
        {
            var position = trader.Positions.TryGetValue(symbol, out var p) ? p : trader.Positions[symbol] = new Position();
            position.AvgPrice = (position.AvgPrice * position.Qty + price * qty) / (position.Qty + qty);
            position.Qty += qty;
            trader.Cash -= qty * price;
            events.Add(new(EventTypes.PositionUpdate, PositionData(trader, symbol, position, now)));
        }
        events.Add(new(EventTypes.PortfolioUpdate, PortfolioData(trader, now)));
    }

    private void ChurnMembers(DateTimeOffset now, List<DemoEvent> events)
    {
        if (_random.NextDouble() >= 0.08)
            return;
        var away = _traders.Where(t => !t.InRoom).ToList();
        // Never the first trader ("demo-user", the dashboard's default user): its own orders keep coming.
        var present = _traders.Skip(1).Where(t => t.InRoom).ToList();
        if (away.Count > 0 && (present.Count <= _traders.Count / 2 || _random.NextDouble() < 0.5))
        {
            var back = away[_random.Next(away.Count)];
            back.InRoom = true;
            events.Add(new(EventTypes.MemberJoined, new { userId = back.UserId, name = back.Name, joinedAt = now }));
        }
        else if (present.Count > 1)
        {
            var leaving = present[_random.Next(present.Count)];
            leaving.InRoom = false;
            events.Add(new(EventTypes.MemberLeft, new { userId = leaving.UserId, name = leaving.Name, leftAt = now }));
        }
    }

    private void Rank(DateTimeOffset now, List<DemoEvent> events)
    {
        var board = Leaderboard(now, null);
        var ranks = Standings().Select((t, i) => (t.UserId, Rank: i + 1)).ToDictionary(r => r.UserId, r => r.Rank, StringComparer.Ordinal);

        // ranking_changed for the biggest climber of this step, if anyone moved up.
        var climber = ranks
            .Where(r => _ranks.TryGetValue(r.Key, out var before) && r.Value < before)
            .Select(r => (UserId: r.Key, From: _ranks[r.Key], To: r.Value))
            .OrderByDescending(r => r.From - r.To).ThenBy(r => r.To)
            .FirstOrDefault();
        _ranks = ranks;
        events.Add(new(EventTypes.LeaderboardUpdate, board));
        if (climber.UserId is not null)
        {
            var name = _traders.First(t => t.UserId == climber.UserId).Name;
            events.Add(new(EventTypes.RankingChanged, new { userId = climber.UserId, name, from = climber.From, to = climber.To, round = Round, at = now }));
        }
    }

    private List<Trader> Standings() =>
        _traders.Where(t => t.InRoom).OrderByDescending(t => t.Pnl(_prices)).ThenBy(t => t.UserId, StringComparer.Ordinal).ToList();

    private object Leaderboard(DateTimeOffset now, string? snapshotId) => new
    {
        snapshotId,
        round = Round,
        asOf = now,
        entries = Standings().Select((t, i) =>
        {
            var pnl = t.Pnl(_prices);
            return new
            {
                rank = i + 1,
                userId = t.UserId,
                name = t.Name,
                pnl = Money(pnl),
                returnPct = Math.Round(pnl / StartingCash * 100, 2),
                equity = Money(StartingCash + pnl),
                trades = t.Trades,
            };
        }).ToArray(),
    };

    private object PositionData(Trader trader, string symbol, Position position, DateTimeOffset now)
    {
        var marketPrice = _prices[symbol];
        return new
        {
            userId = trader.UserId,
            symbol,
            qty = position.Qty,
            avgPrice = Money(position.AvgPrice),
            marketPrice,
            unrealizedPnl = Money((marketPrice - position.AvgPrice) * position.Qty),
            at = now,
        };
    }

    private object PortfolioData(Trader trader, DateTimeOffset now)
    {
        var pnl = trader.Pnl(_prices);
        return new
        {
            userId = trader.UserId,
            cash = Money(trader.Cash),
            equity = Money(StartingCash + pnl),
            pnl = Money(pnl),
            returnPct = Math.Round(pnl / StartingCash * 100, 2),
            positions = trader.Positions.Count,
            at = now,
        };
    }

    private static decimal Money(decimal value) => Math.Round(value, 2);

    /// <summary>A standard normal sample (Box-Muller).</summary>
    private double Gaussian() =>
        Math.Sqrt(-2 * Math.Log(1 - _random.NextDouble())) * Math.Cos(2 * Math.PI * _random.NextDouble());

    private sealed class Position
    {
        public int Qty { get; set; }
        public decimal AvgPrice { get; set; }
    }

    private sealed class Trader(string userId, string name)
    {
        public string UserId { get; } = userId;
        public string Name { get; } = name;
        public bool InRoom { get; set; }
        public decimal Cash { get; set; } = StartingCash;
        public int Trades { get; set; }
        public Dictionary<string, Position> Positions { get; } = new(StringComparer.Ordinal);

        public decimal Pnl(IReadOnlyDictionary<string, decimal> prices) =>
            Cash + Positions.Sum(p => p.Value.Qty * prices[p.Key]) - StartingCash;

        public void Reset()
        {
            Cash = StartingCash;
            Trades = 0;
            Positions.Clear();
        }
    }
}
