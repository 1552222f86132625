using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using TradeRoom.Contracts;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Integration;

/// <summary>Result of an all-or-nothing batch: every event's seq, or the first invalid event and why.</summary>
public sealed record BatchPublishResult(IReadOnlyList<long> Seqs, int RejectedIndex, PublishRejected? Rejection)
{
    public bool Accepted => Rejection is null;
}

/// <summary>
/// The in-process face of the integration layer for trade services: one method per Trade Room event, mirroring
/// <c>onOrderExecuted(bullPenId, order)</c> and friends, plus a generic <see cref="PublishAsync(string,string,object,CancellationToken)"/>.
/// <c>data</c> may be any object (serialized with System.Text.Json's web defaults: camelCase), a
/// <see cref="JsonElement"/> or a <see cref="JsonNode"/>; it must serialize to a JSON object.
/// Every call goes through the <see cref="IntegrationActor"/>, so the rules are the same as for HTTP and actors.
/// </summary>
public sealed class TradeRoomIntegration(IActorRef integrationActor, IReadOnlySet<string> privateEventTypes, TimeSpan timeout)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public Task<PublishResult> OnOrderExecuted(string bullPenId, object order) => PublishAsync(bullPenId, EventTypes.OrderExecuted, order);
    public Task<PublishResult> OnOrderFailed(string bullPenId, object order) => PublishAsync(bullPenId, EventTypes.OrderFailed, order);
    public Task<PublishResult> OnOrderCancelled(string bullPenId, object order) => PublishAsync(bullPenId, EventTypes.OrderCancelled, order);
    public Task<PublishResult> OnLeaderboardUpdated(string bullPenId, object snapshot) => PublishAsync(bullPenId, EventTypes.LeaderboardUpdate, snapshot);
    public Task<PublishResult> OnRankingChanged(string bullPenId, object ranking) => PublishAsync(bullPenId, EventTypes.RankingChanged, ranking);
    public Task<PublishResult> OnSnapshotCreated(string bullPenId, object snapshot) => PublishAsync(bullPenId, EventTypes.SnapshotCreated, snapshot);
    public Task<PublishResult> OnPositionUpdated(string bullPenId, object position) => PublishAsync(bullPenId, EventTypes.PositionUpdate, position);
    public Task<PublishResult> OnPositionClosed(string bullPenId, object position) => PublishAsync(bullPenId, EventTypes.PositionClosed, position);
    public Task<PublishResult> OnPortfolioUpdated(string bullPenId, object portfolio) => PublishAsync(bullPenId, EventTypes.PortfolioUpdate, portfolio);
    public Task<PublishResult> OnRoomStateChanged(string bullPenId, object state) => PublishAsync(bullPenId, EventTypes.RoomStateChanged, state);
    public Task<PublishResult> OnRoomStarted(string bullPenId, object room) => PublishAsync(bullPenId, EventTypes.RoomStarted, room);
    public Task<PublishResult> OnRoomEnded(string bullPenId, object room) => PublishAsync(bullPenId, EventTypes.RoomEnded, room);
    public Task<PublishResult> OnMemberJoined(string bullPenId, object member) => PublishAsync(bullPenId, EventTypes.MemberJoined, member);
    public Task<PublishResult> OnMemberLeft(string bullPenId, object member) => PublishAsync(bullPenId, EventTypes.MemberLeft, member);

    public Task<PublishResult> PublishAsync(string bullPenId, string type, object data, CancellationToken cancellationToken = default) =>
        PublishAsync(new PublishEvent(bullPenId, type, ToJson(data)), cancellationToken);

    public async Task<PublishResult> PublishAsync(PublishEvent e, CancellationToken cancellationToken = default)
    {
        try
        {
            return await integrationActor.Ask<PublishResult>(e, timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            return new PublishRejected(e.BullPenId, ErrorCodes.Timeout, $"the room did not take the event within {timeout.TotalSeconds:0.#} s");
        }
    }

    /// <summary>Publishes all of <paramref name="events"/>, in order, or none of them if any is invalid.</summary>
    public async Task<BatchPublishResult> PublishBatchAsync(IReadOnlyList<PublishEvent> events, CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < events.Count; i++)
        {
            if (EventValidator.Validate(events[i], privateEventTypes, out _) is { } rejected)
                return new BatchPublishResult([], i, rejected);
        }

        var pending = new Task<PublishResult>[events.Count];
        for (var i = 0; i < events.Count; i++)
            pending[i] = PublishAsync(events[i], cancellationToken);
        var results = await Task.WhenAll(pending).ConfigureAwait(false);

        var seqs = new long[results.Length];
        for (var i = 0; i < results.Length; i++)
        {
            if (results[i] is not EventPublished published)
                return new BatchPublishResult([], i, (PublishRejected)results[i]);
            seqs[i] = published.Seq;
        }
        return new BatchPublishResult(seqs, -1, null);
    }

    /// <summary>The UTF-8 JSON of <paramref name="data"/> as it will appear in the event's <c>data</c>.</summary>
    public static byte[] ToJson(object? data) => data switch
    {
        null => "null"u8.ToArray(),
        JsonElement element => JsonSerializer.SerializeToUtf8Bytes(element),
        JsonNode node => JsonSerializer.SerializeToUtf8Bytes(node),
        _ => JsonSerializer.SerializeToUtf8Bytes(data, data.GetType(), Json),
    };
}
