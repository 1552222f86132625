using System.Runtime.InteropServices;

namespace TradeRoom.LoadTest;

/// <summary>
/// Reads the plaintext connections the way an efficient C client does: one thread per core, each waiting on its own
/// epoll set (level-triggered) for the connections it was given, and one read per connection per wake-up, parsed on
/// that thread. .NET's own path for <c>ReceiveAsync</c> costs per frame a second <c>recv</c> that finds nothing
/// (the next receive tries at once before it waits) and an async state machine's run; at 100,000 frames a second on
/// this 2-core machine that was a share of the cores the server under test then did not get (bench/analysis.md).
/// A connection given here must never have had an asynchronous operation (<see cref="LoadConnection"/> opens it
/// with synchronous calls): else .NET's own epoll thread is registered for it too and wakes for every frame as well.
/// Linux on x86-64 only (<see cref="Supported"/>); elsewhere connections keep <see cref="LoadConnection.ReceiveLoopAsync"/>.
/// </summary>
internal sealed class EpollReceivers : IDisposable
{
    private const int EpollCtlAdd = 1, EpollCtlDel = 2, EpollIn = 0x001, EpollRdHup = 0x2000, EIntr = 4;
    private const int MaxEvents = 256;
    private const int WaitMilliseconds = 50; // how soon a thread sees Stop

    private readonly int[] _epolls;
    private readonly Thread[] _threads;
    private readonly LoadConnection?[] _connections;
    private volatile bool _stopping;

    /// <summary>The packed 12-byte <c>struct epoll_event</c> of x86-64.</summary>
    public static bool Supported => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    /// <param name="capacity">Connections are known by their <see cref="LoadConnection.Index"/>, below this.</param>
    public EpollReceivers(int capacity)
    {
        _connections = new LoadConnection?[capacity];
        var count = Environment.ProcessorCount;
        _epolls = new int[count];
        _threads = new Thread[count];
        for (var i = 0; i < count; i++)
        {
            _epolls[i] = epoll_create1(0);
            if (_epolls[i] < 0)
                throw new LoadTestException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
            var epoll = _epolls[i];
            _threads[i] = new Thread(() => Run(epoll)) { IsBackground = true, Name = $"load-receiver-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Starts reading <paramref name="connection"/> (open, subscribed, its socket non-blocking) on one of the threads.</summary>
    public void Add(LoadConnection connection)
    {
        // What came with `subscribed` now, while no thread reads it yet: the epoll set only wakes for new bytes.
        if (!connection.HandleBufferedFrames())
            return;
        Volatile.Write(ref _connections[connection.Index], connection);
        var ev = new EpollEvent { Events = EpollIn | EpollRdHup, Data = (ulong)connection.Index };
        if (epoll_ctl(_epolls[connection.Index % _epolls.Length], EpollCtlAdd, connection.Fd, ref ev) != 0)
            connection.Finish($"epoll_ctl failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Stops the threads and waits for them: after this no connection is read, so its socket may be closed.</summary>
    public void Stop()
    {
        _stopping = true;
        foreach (var thread in _threads)
            thread.Join();
    }

    public void Dispose()
    {
        Stop();
        foreach (var epoll in _epolls)
            close(epoll);
    }

    private void Run(int epoll)
    {
        var events = new EpollEvent[MaxEvents];
        while (!_stopping)
        {
            var ready = epoll_wait(epoll, events, MaxEvents, WaitMilliseconds);
            if (ready < 0)
            {
                if (Marshal.GetLastPInvokeError() == EIntr)
                    continue;
                throw new LoadTestException($"epoll_wait failed: errno {Marshal.GetLastPInvokeError()}");
            }
            for (var i = 0; i < ready; i++)
            {
                var connection = Volatile.Read(ref _connections[(int)events[i].Data])!;
                if (!connection.ReadOnce())
                {
                    var none = default(EpollEvent);
                    epoll_ctl(epoll, EpollCtlDel, connection.Fd, ref none);
                }
            }
        }
    }

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct EpollEvent
    {
        public int Events;
        public ulong Data;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int epoll_create1(int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int epoll_ctl(int epfd, int op, int fd, ref EpollEvent ev);

    [DllImport("libc", SetLastError = true)]
    private static extern int epoll_wait(int epfd, [Out] EpollEvent[] events, int maxEvents, int timeout);

    [DllImport("libc")]
    private static extern int close(int fd);
}
