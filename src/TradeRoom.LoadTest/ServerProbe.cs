using System.Globalization;

namespace TradeRoom.LoadTest;

/// <summary>The server's resident memory and CPU time, read from /proc (Linux; same machine).</summary>
internal sealed class ServerProbe(int pid)
{
    /// <summary>Linux reports CPU times in clock ticks of 1/100 s (USER_HZ).</summary>
    private const double MicrosecondsPerTick = 10_000;

    public int Pid { get; } = pid;

    public static ServerProbe? For(int? pid)
    {
        if (pid is not { } p)
            return null;
        if (!File.Exists($"/proc/{p}/stat"))
            throw new LoadTestException($"--server-pid {p}: no such process on this machine (reading /proc/{p})");
        return new ServerProbe(p);
    }

    public long RssBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        throw new LoadTestException($"no VmRSS in /proc/{Pid}/status");
    }

    /// <summary>User + system CPU time of the process so far, in microseconds.</summary>
    public double CpuMicroseconds()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks * MicrosecondsPerTick;
    }
}
