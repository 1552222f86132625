using System.Collections.Immutable;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Configuration;

namespace TradeRoom.Contracts.Client;

/// <summary>
/// Publishes events to a TradeRoom cluster from another .NET process, by actor messages: a <see cref="PublishEvent"/>
/// goes through Akka's <c>ClusterClient</c> to the receptionist of one of the cluster's nodes, which hands it to that
/// node's <c>IntegrationActor</c> (<c>/user/integration</c>); its answer comes back the same way. The publisher never
/// joins the cluster: it has no vote in membership or the split brain resolver, hosts no shards, and any number of
/// publishers come and go without the cluster noticing.
/// </summary>
public sealed class TradeRoomPublisher : IAsyncDisposable
{
    /// <summary>Where the server registers its integration actor with the receptionist.</summary>
    public const string IntegrationPath = "/user/integration";

    /// <summary>
    /// The publisher's own actor system: remoting (not cluster membership) on a free port of 127.0.0.1. The cluster
    /// answers to this address, so a publisher on another machine sets <c>akka.remote.dot-netty.tcp.hostname</c> (and
    /// <c>public-hostname</c> behind NAT) through the <c>hocon</c> of <see cref="Start"/>. The frame size matches the
    /// server's (hocon/akka.conf), so an event as large as HTTP publishing takes passes here too.
    /// </summary>
    public const string DefaultHocon = """
        akka {
          actor.provider = remote
          remote.dot-netty.tcp {
            hostname = 127.0.0.1
            port = 0
            maximum-frame-size = 2MiB
          }
          loglevel = WARNING
          stdout-loglevel = WARNING
          log-dead-letters = 0
        }
        """;

    /// <summary>Bytes of a remote frame kept for everything but the event's data (paths, ids, the envelope).</summary>
    private const int EnvelopeAllowance = 16 * 1024;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly ActorSystem _system;
    private readonly IActorRef _client;
    private readonly bool _ownsSystem;
    private readonly long _maximumDataSize;

    private TradeRoomPublisher(ActorSystem system, IActorRef client, bool ownsSystem)
    {
        _system = system;
        _client = client;
        _ownsSystem = ownsSystem;
        // The remote frame holds the event and the ClusterClient's envelope around it: leave the envelope room.
        _maximumDataSize = system.Settings.Config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size", 128000) ?? 128000;
        _maximumDataSize -= EnvelopeAllowance;
    }

    /// <summary>The actor system the publisher runs in (its own, or the one it was given).</summary>
    public ActorSystem ActorSystem => _system;

    /// <summary>
    /// Starts an actor system of its own (<see cref="DefaultHocon"/>, with <paramref name="hocon"/> over it) and a
    /// <c>ClusterClient</c> to <paramref name="contactPoints"/>: the cluster nodes' addresses, e.g.
    /// <c>akka.tcp://traderoom@127.0.0.1:4053</c> (any of them is enough; it learns the others from the cluster).
    /// </summary>
    public static TradeRoomPublisher Start(IEnumerable<string> contactPoints, string? hocon = null, string systemName = "traderoom-publisher")
    {
        var contacts = ContactPaths(contactPoints);
        var config = ConfigurationFactory.ParseString(hocon ?? "")
            .WithFallback(ConfigurationFactory.ParseString(DefaultHocon))
            .WithFallback(ConfigurationFactory.ParseString(ContractsConfig.Serialization))
            .WithFallback(ClusterClientReceptionist.DefaultConfig())
            .WithFallback(DistributedPubSub.DefaultConfig());
        var system = ActorSystem.Create(systemName, config);
        return new TradeRoomPublisher(system, system.ActorOf(ClusterClient.Props(ClusterClientSettings.Create(system).WithInitialContacts(contacts)), "traderoom-client"), ownsSystem: true);
    }

    /// <summary>
    /// A publisher inside an actor system the caller owns. That system must run remoting
    /// (<c>akka.actor.provider = remote</c>, or <c>cluster</c> for one of another cluster) and bind the publish messages
    /// to their serializer (<see cref="ContractsConfig.Serialization"/> in its HOCON).
    /// </summary>
    public static TradeRoomPublisher ForSystem(ActorSystem system, IEnumerable<string> contactPoints, string clientName = "traderoom-client")
    {
        var contacts = ContactPaths(contactPoints);
        if (system.Serialization.FindSerializerForType(typeof(PublishEvent)) is not PublishSerializer
            || system.Serialization.FindSerializerForType(typeof(EventPublished)) is not PublishSerializer)
            throw new ArgumentException("the actor system does not bind the publish messages to PublishSerializer: add TradeRoom.Contracts.ContractsConfig.Serialization to its HOCON", nameof(system));
        system.Settings.InjectTopLevelFallback(ClusterClientReceptionist.DefaultConfig());
        system.Settings.InjectTopLevelFallback(DistributedPubSub.DefaultConfig());
        return new TradeRoomPublisher(system, system.ActorOf(ClusterClient.Props(ClusterClientSettings.Create(system).WithInitialContacts(contacts)), clientName), ownsSystem: false);
    }

    /// <summary>
    /// Publishes one event and waits for the room's acknowledgement: its seq. <paramref name="data"/> is the event's
    /// <c>data</c> as UTF-8 JSON (a JSON object).
    /// </summary>
    /// <exception cref="PublishRejectedException">The server refused the event (bad room, type or data, the room cap,
    /// storage down…): it was not published. <see cref="PublishRejectedException.Rejection"/> says why.</exception>
    /// <exception cref="PublishTimeoutException">No answer within <paramref name="timeout"/>: the event may or may not
    /// have been published (see the exception). Retrying is the caller's choice.</exception>
    public async Task<EventPublished> PublishAsync(string bullPenId, string type, byte[] data, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bullPenId);
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(data);
        // Remoting drops a message larger than its frame with only a log line: say so here instead of timing out.
        if (data.Length > _maximumDataSize)
            throw new ArgumentException($"data is {data.Length} bytes; a publisher sends at most {_maximumDataSize} (akka.remote.dot-netty.tcp.maximum-frame-size less {EnvelopeAllowance} bytes)", nameof(data));

        PublishResult result;
        try
        {
            result = await _client.Ask<PublishResult>(new ClusterClient.Send(IntegrationPath, new PublishEvent(bullPenId, type, data)), timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (AskTimeoutException e)
        {
            throw new PublishTimeoutException(bullPenId, type, timeout, e);
        }
        return result switch
        {
            EventPublished published => published,
            PublishRejected rejected => throw new PublishRejectedException(rejected),
            _ => throw new InvalidOperationException($"unexpected answer {result}"),
        };
    }

    /// <summary>
    /// As <see cref="PublishAsync(string,string,byte[],TimeSpan,CancellationToken)"/>, with <paramref name="data"/>
    /// serialized by System.Text.Json's web defaults (camelCase); a <see cref="JsonElement"/> or a
    /// <c>JsonNode</c> is written as it is. It must serialize to a JSON object.
    /// </summary>
    public Task<EventPublished> PublishAsync(string bullPenId, string type, object data, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        PublishAsync(bullPenId, type, JsonSerializer.SerializeToUtf8Bytes(data, Json), timeout, cancellationToken);

    /// <summary>Stops the ClusterClient, and the actor system when the publisher started it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_ownsSystem)
            await _system.Terminate().ConfigureAwait(false);
        else
            await _client.GracefulStop(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
    }

    private static ImmutableHashSet<ActorPath> ContactPaths(IEnumerable<string> contactPoints)
    {
        var paths = ImmutableHashSet.CreateBuilder<ActorPath>();
        foreach (var point in contactPoints)
        {
            var address = point.Trim().TrimEnd('/');
            if (address.Length == 0)
                continue;
            // A node's address, or already its receptionist's path.
            if (!address.EndsWith("/system/receptionist", StringComparison.Ordinal))
                address += "/system/receptionist";
            if (!ActorPath.TryParse(address, out var path) || path.Address.HasLocalScope || path.Address.Port is null)
                throw new ArgumentException($"\"{point}\" is not a node address such as akka.tcp://traderoom@127.0.0.1:4053", nameof(contactPoints));
            paths.Add(path);
        }
        if (paths.Count == 0)
            throw new ArgumentException("no contact point: give at least one node address such as akka.tcp://traderoom@127.0.0.1:4053", nameof(contactPoints));
        return paths.ToImmutable();
    }
}

/// <summary>The server refused the event; it was not published.</summary>
public sealed class PublishRejectedException(PublishRejected rejection)
    : Exception($"{rejection.BullPenId}: {rejection.Code}: {rejection.Message}")
{
    public PublishRejected Rejection { get; } = rejection;

    /// <summary>The server's error code (<c>invalid_room</c>, <c>unknown_type</c>, <c>invalid_message</c>, <c>missing_user</c>, <c>room_limit</c>, <c>storage_unavailable</c>, <c>timeout</c>…).</summary>
    public string Code => Rejection.Code;
}

/// <summary>
/// No answer within the timeout. The event may still have been published: the ClusterClient buffers a message while it
/// has no receptionist and sends it once it finds one, and an acknowledgement can be lost with the node that sent it.
/// A caller that retries may publish the event twice (subscribers then see it under two seqs); one that does not may
/// have lost it. Make events idempotent (e.g. carry an id in <c>data</c>) where it matters.
/// </summary>
public sealed class PublishTimeoutException(string bullPenId, string type, TimeSpan timeout, Exception inner)
    : TimeoutException($"no answer for {type} to {bullPenId} within {timeout.TotalSeconds:0.###} s: it may or may not have been published", inner)
{
    public string BullPenId { get; } = bullPenId;

    public string Type { get; } = type;
}
