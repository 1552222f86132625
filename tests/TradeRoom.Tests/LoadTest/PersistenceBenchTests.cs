using System.Text.Json;
using TradeRoom.LoadTest;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.LoadTest;

/// <summary>Short runs of the load tester's <c>--persist</c> scenarios (docs/benchmarks.md, durable rooms) against the real server, so they cannot rot.</summary>
public class PersistenceBenchTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    /// <summary>One run, against <paramref name="server"/> (null for <c>disk</c>, which reads the stopped server's store).</summary>
    private static async Task<(int Exit, PersistResult Result, string Output)> RunAsync(TestServer? server, params string[] args)
    {
        string[] target = server is null ? [] : ["--ws", server.WsUri.ToString(), "--api", $"http://127.0.0.1:{server.ApiPort}", "--secret", TestServer.Secret];
        var json = Path.Combine(Path.GetTempPath(), $"persist-{Guid.NewGuid():N}.json");
        var output = new StringWriter();
        try
        {
            var exit = await PersistenceBench.RunAsync(
                [.. args, .. target, "--json", json],
                output);
            Assert.True(File.Exists(json), output.ToString());
            return (exit, JsonSerializer.Deserialize<PersistResult>(await File.ReadAllTextAsync(json), Web)!, output.ToString());
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task Throughput_counts_accepted_events_and_finds_their_numbering_gap_free()
    {
        await using var server = await TestServer.StartAsync();
        var (exit, result, output) = await RunAsync(server, "--persist", "throughput", "--rooms", "3", "--publishers", "2", "--batch", "10",
            // A warm-up: on a fresh server the first requests (the journal's first writes, JIT) can outlast a short window.
            "--warmup", "3", "--duration", "3", "--server-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(0, exit);
        Assert.True(result.Accepted > 0, output);
        Assert.Equal(0, result.NumberingGaps);
        Assert.Equal(0, result.NumberingDuplicates);
        Assert.Empty(result.Refused!);
        // Every accepted event was stored by the journal before its 202 (the server's own count).
        Assert.True(result.EventsPersisted >= result.Accepted, output);
        Assert.NotNull(result.ServerCpuMicrosPerEvent);
        Assert.Contains("every accepted event numbered 1..n without gap", output);
    }

    [Fact]
    public async Task Fill_then_a_restart_on_the_same_file_recovers_every_room_and_disk_counts_every_event_kept()
    {
        var folder = TestDatabase.NewSqliteFolder();
        var file = Path.Combine(folder, "bench.db");
        var hocon = $"traderoom.persistence.sqlite.file = \"{file}\"";
        var state = Path.Combine(folder, "rooms.state");
        try
        {
            (int WsPort, int ApiPort) ports;
            await using (var first = await TestServer.StartAsync(hocon))
            {
                ports = (first.WsPort, first.ApiPort);
                var (fillExit, fill, fillOutput) = await RunAsync(first, "--persist", "fill", "--rooms", "3", "--events", "30", "--state", state);
                Assert.Equal(0, fillExit);
                Assert.True(fill.FillComplete, fillOutput);
            }

            await using (var second = await TestServer.StartAsync(hocon, ports: ports))
            {
                var (historyExit, history, historyOutput) = await RunAsync(second, "--persist", "history", "--state", state);
                Assert.Equal(0, historyExit);
                Assert.True(history.Recovered, historyOutput);
                Assert.Equal(30, history.HistoryEvents);
                Assert.Equal(30, history.Replayed);
                Assert.Equal(0, history.ReplayOutOfOrder);
                Assert.NotNull(history.RoomRecoveryMs);
                Assert.NotNull(history.WarmRoomRecoveryMs);

                var (subscribeExit, subscribe, subscribeOutput) = await RunAsync(second, "--persist", "first-subscribe", "--state", state);
                Assert.Equal(0, subscribeExit);
                Assert.Equal(3, subscribe.Rooms);
                Assert.Equal(0, subscribe.WrongState);
                Assert.True(subscribe.SubscribeMaxMs >= subscribe.SubscribeP50Ms, subscribeOutput);
            }

            // The server is stopped: the file holds all 3 × 30 events (below snapshot-every, so all in the journal).
            var (diskExit, disk, diskOutput) = await RunAsync(null, "--persist", "disk", "--state", state, "--sqlite", file);
            Assert.Equal(0, diskExit);
            Assert.Equal(90, disk.EventsKept);
            Assert.Equal(90, disk.JournalEventsKept);
            Assert.True(disk.StoreBytes > 0 && disk.BytesPerEvent > 0, diskOutput);
        }
        finally
        {
            TestDatabase.Delete(folder);
        }
    }
}
