using System.Diagnostics;
using HdrHistogram;

namespace TradeRoom.LoadTest;

/// <summary>Counters and the latency histogram shared by all connections (thread-safe).</summary>
internal sealed class LoadMetrics
{
    private static readonly double TicksPerMicrosecond = Stopwatch.Frequency / 1_000_000.0;

    // Microseconds, up to 10 minutes, 3 significant digits.
    private readonly LongConcurrentHistogram _latency = new(1, 600_000_000, 3);
    private long _delivered;
    private long _lastDeliveryTimestamp;

    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary><see cref="Stopwatch.GetTimestamp"/> of the latest delivery.</summary>
    public long LastDeliveryTimestamp => Volatile.Read(ref _lastDeliveryTimestamp);

    public void Record(long stopwatchTicks)
    {
        Interlocked.Increment(ref _delivered);
        Volatile.Write(ref _lastDeliveryTimestamp, Stopwatch.GetTimestamp());
        if (stopwatchTicks >= 0)
            _latency.RecordValue(Math.Max(1, (long)(stopwatchTicks / TicksPerMicrosecond)));
    }

    /// <summary>Forgets the latencies recorded so far (after a warm-up).</summary>
    public void ResetLatency() => _latency.Reset();

    public LatencySummary Latency()
    {
        var h = _latency.Copy();
        return h.TotalCount == 0
            ? new LatencySummary(0, 0, 0, 0, 0)
            : new LatencySummary(h.TotalCount, h.GetValueAtPercentile(50) / 1000.0, h.GetValueAtPercentile(95) / 1000.0,
                h.GetValueAtPercentile(99) / 1000.0, h.GetMaxValue() / 1000.0);
    }
}

/// <summary>Publish-to-receive latency in milliseconds.</summary>
public sealed record LatencySummary(long Samples, double P50, double P95, double P99, double Max);
