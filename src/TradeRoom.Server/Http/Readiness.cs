using Akka.Actor;
using Akka.Hosting;
using TradeRoom.Actors;
using TradeRoom.Actors.Cluster;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Server.Http;

/// <summary>
/// <c>GET /api/ready</c>, for load balancers: 200 <c>{"ready":true,"node":…}</c> while this node should get traffic,
/// 503 <c>not_ready</c> saying why otherwise. One process: once its actors run, until it starts shutting down. Cluster
/// mode: only while this node is Up in the cluster (not before it joined, not while it leaves, not once downed).
/// </summary>
internal static class Readiness
{
    public const string NotReady = "not_ready";

    public static void MapReadiness(this IEndpointRouteBuilder app, TradeRoomSettings settings, string node)
    {
        app.MapGet("/api/ready", (IHostApplicationLifetime lifetime, ActorSystem system, ActorRegistry registry) =>
        {
            var why = WhyNotReady(settings, lifetime, system, registry);
            return why is null
                ? Results.Json(new ReadyBody(true, node))
                : ApiErrors.Error(503, NotReady, why);
        })
            .WithName("GetReady")
            .WithSummary("Readiness for load balancers")
            .WithDescription("200 while this node should get traffic; 503 not_ready, saying why, while it starts, leaves the cluster or shuts down.")
            .WithTags("Operations")
            .Produces<ReadyBody>()
            .ProducesErrors(503, NotReady);
    }

    private static string? WhyNotReady(TradeRoomSettings settings, IHostApplicationLifetime lifetime, ActorSystem system, ActorRegistry registry)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested || system.WhenTerminated.IsCompleted)
            return "the server is shutting down";
        if (!lifetime.ApplicationStarted.IsCancellationRequested || !registry.TryGet<RoomRegistry>(out _))
            return "the server is starting";
        if (!settings.Cluster.Enabled)
            return null;
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (!cluster.State.Members.Any(m => m.UniqueAddress.Equals(cluster.SelfUniqueAddress)))
            return $"this node has not joined the cluster yet (seeds: {string.Join(", ", settings.Cluster.Seeds)})";
        var status = cluster.SelfMember.Status;
        return status == Akka.Cluster.MemberStatus.Up ? null : $"this node is {ClusterView.StatusName(status)} in the cluster, not up";
    }
}
