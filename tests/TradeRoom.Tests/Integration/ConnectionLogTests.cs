using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>The structured log lines of a connection's life: one when it opens, one when it closes, and refused auths.</summary>
public class ConnectionLogTests
{
    private static async Task<(TestServer Server, CapturingLoggerProvider Logs)> StartAsync(string? hocon = null)
    {
        var logs = new CapturingLoggerProvider();
        // The test clients do not answer a server's close frame: a short close timeout ends those sockets sooner.
        var server = await TestServer.StartAsync("traderoom.websocket.close-timeout = 300ms\n" + hocon, configure: builder => builder.Logging.AddProvider(logs));
        return (server, logs);
    }

    private static IReadOnlyList<LogLine> Opened(CapturingLoggerProvider logs) =>
        logs.Lines.Where(l => l.Values.ContainsKey("{OriginalFormat}") && l["{OriginalFormat}"]!.Contains(" opened from ")).ToArray();

    private static IReadOnlyList<LogLine> Closed(CapturingLoggerProvider logs) =>
        logs.Lines.Where(l => l["{OriginalFormat}"]?.Contains(" closed by ") == true).ToArray();

    private static async Task<LogLine> ClosedLineAsync(CapturingLoggerProvider logs, string connectionId)
    {
        var lines = await Eventually.MatchAsync(() => Task.FromResult(Closed(logs).Where(l => l["ConnectionId"] == connectionId).ToArray()),
            lines => lines.Length > 0, "the close line");
        return Assert.Single(lines);
    }

    [Fact]
    public async Task A_connection_logs_one_line_when_it_opens_and_one_when_the_client_closes_it_with_user_code_and_duration()
    {
        var (server, logs) = await StartAsync();
        await using (server)
        {
            await using (var client = await server.ConnectAsync("logged-user"))
            {
                var opened = Assert.Single(Opened(logs));
                Assert.Equal(LogLevel.Information, opened.Level);
                Assert.StartsWith("127.0.0.1:", opened["RemoteAddress"]);
                Assert.False(string.IsNullOrEmpty(opened["ConnectionId"]));
            }

            var connectionId = Assert.Single(Opened(logs))["ConnectionId"]!;
            var closed = await ClosedLineAsync(logs, connectionId);
            Assert.Equal(LogLevel.Information, closed.Level);
            Assert.Equal("client", closed["ClosedBy"]);
            Assert.Equal("1000", closed["CloseCode"]);
            Assert.Equal("normal", closed["CloseName"]);
            Assert.Equal("bye", closed["CloseReason"]); // what WsClient sends
            Assert.Equal("logged-user", closed["UserId"]);
            Assert.True(double.Parse(closed["DurationSeconds"]!, System.Globalization.CultureInfo.InvariantCulture) > 0);
            Assert.Single(Closed(logs));
        }
    }

    [Fact]
    public async Task A_server_close_of_a_connection_that_never_authenticated_logs_the_server_the_code_and_no_user()
    {
        var (server, logs) = await StartAsync("traderoom.websocket.auth-timeout = 200ms");
        await using (server)
        {
            await using var client = await WsClient.ConnectAsync(server.WsUri);
            Assert.Equal(4001, await client.ReceiveCloseAsync());

            var connectionId = Assert.Single(Opened(logs))["ConnectionId"]!;
            var closed = await ClosedLineAsync(logs, connectionId);
            Assert.Equal(("server", "4001", "auth_failed", "authentication timeout", "none"),
                (closed["ClosedBy"], closed["CloseCode"], closed["CloseName"], closed["CloseReason"], closed["UserId"]));
        }
    }

    [Fact]
    public async Task A_refused_token_is_logged_with_its_reason_and_never_the_token()
    {
        var (server, logs) = await StartAsync();
        await using (server)
        {
            var token = server.Tokens.UserToken("expired-user", TimeSpan.FromSeconds(-30));
            await using var client = await WsClient.ConnectAsync(server.WsUri);
            await client.SendAuthAsync(token);
            Assert.Equal(4001, await client.ReceiveCloseAsync());

            var connectionId = Assert.Single(Opened(logs))["ConnectionId"]!;
            var refused = Assert.Single(logs.Lines, l => l["AuthError"] is not null);
            Assert.True(refused.Level >= LogLevel.Information);
            Assert.Equal(("token_expired", connectionId), (refused["AuthError"], refused["ConnectionId"]));
            await ClosedLineAsync(logs, connectionId);
            Assert.DoesNotContain(logs.Lines, l => l.Message.Contains(token, StringComparison.Ordinal)
                                                   || l.Message.Contains(token.Split('.')[2], StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_close_reason_with_newlines_and_bidi_marks_is_logged_escaped_on_one_line()
    {
        var (server, logs) = await StartAsync();
        await using (server)
        {
            var client = await server.ConnectAsync("escaped-user");
            var connectionId = Assert.Single(Opened(logs))["ConnectionId"]!;
            using (var timeout = new CancellationTokenSource(WsClient.DefaultTimeout))
                await client.Socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure,
                    "bye\r\n2026-01-01 INFO forged line\u202Eexe.txt", timeout.Token);

            var closed = await ClosedLineAsync(logs, connectionId);
            Assert.Equal("bye\\u000d\\u000a2026-01-01 INFO forged line\\u202eexe.txt", closed["CloseReason"]);
            Assert.DoesNotContain('\n', closed.Message);
            Assert.DoesNotContain('\u202E', closed.Message);
            await client.DisposeAsync();
        }
    }
}
