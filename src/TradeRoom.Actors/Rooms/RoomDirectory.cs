using Akka.Actor;
using Akka.Cluster;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// Room queries in cluster mode, where rooms are shard entities spread over the nodes: every node runs one directory
/// (at <see cref="Path"/>), which the rooms started on that node tell of themselves (<see cref="RoomStarted"/>) and
/// watches. A query from this node's HTTP API (<see cref="GetRooms"/>, <see cref="GetRoomDetails"/>,
/// <see cref="GetRoomCount"/>, the same messages the local <see cref="RoomRegistry"/> answers in single-node mode)
/// asks the directory of every member that hosts rooms and merges their answers; so no room is started or kept
/// alive by looking at it, and no room is asked unless it runs and is on the page.
/// </summary>
public sealed class RoomDirectory : ReceiveActor
{
    /// <summary>Where each node's directory runs, so the others find it.</summary>
    public const string Name = "room-directory";
    public const string Path = "/user/" + Name;

    private readonly SortedDictionary<string, IActorRef> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _ids = new();

    public RoomDirectory(TimeSpan queryTimeout)
    {
        // The HTTP caller waits queryTimeout: a node that has not answered by half of it is left out, so the answer
        // (from the nodes that did answer) still reaches the caller in time.
        var gatherTimeout = queryTimeout / 2;
        Receive<RoomStarted>(r =>
        {
            _rooms[r.BullPenId] = Sender;
            _ids[Sender] = r.BullPenId;
            Context.Watch(Sender);
        });
        Receive<Terminated>(t =>
        {
            if (_ids.Remove(t.ActorRef, out var id) && _rooms.TryGetValue(id, out var room) && room.Equals(t.ActorRef))
                _rooms.Remove(id);
        });

        // This node's part of a cluster-wide query.
        Receive<GetLocalRooms>(q =>
        {
            var page = _rooms.Where(r => q.After is null || string.CompareOrdinal(r.Key, q.After) > 0).Take(q.Limit).Select(r => r.Value).ToArray();
            Context.ActorOf(RoomListQuery.Props(page, Sender, next: null));
        });
        Receive<GetLocalRoomDetails>(q =>
        {
            if (_rooms.TryGetValue(q.BullPenId, out var room))
                room.Forward(new GetRoomDetails(q.BullPenId));
            else
                Sender.Tell(new RoomNotFound(q.BullPenId));
        });
        Receive<GetLocalRoomCount>(_ => Sender.Tell(new RoomCount(_rooms.Count)));

        // The cluster-wide queries, asked of every member's directory.
        Receive<GetRooms>(q => AskAll(new GetLocalRooms(q.Limit + 1, q.After), Sender, gatherTimeout, answers =>
        {
            var rooms = answers.OfType<RoomList>().SelectMany(l => l.Rooms)
                .DistinctBy(r => r.BullPenId).OrderBy(r => r.BullPenId, StringComparer.Ordinal).Take(q.Limit + 1).ToList();
            string? next = null;
            if (rooms.Count > q.Limit)
            {
                rooms.RemoveAt(q.Limit);
                next = rooms[^1].BullPenId;
            }
            return new RoomList(rooms, next);
        }));
        Receive<GetRoomDetails>(q => AskAll(new GetLocalRoomDetails(q.BullPenId), Sender, gatherTimeout,
            answers => answers.OfType<RoomDetails>().FirstOrDefault() ?? (object)new RoomNotFound(q.BullPenId)));
        Receive<GetRoomCount>(_ => AskAll(GetLocalRoomCount.Instance, Sender, gatherTimeout,
            answers => new RoomCount(answers.OfType<RoomCount>().Sum(c => c.Rooms))));
    }

    public static Props Props(TimeSpan queryTimeout) => Akka.Actor.Props.Create(() => new RoomDirectory(queryTimeout));

    /// <summary>
    /// Asks the directory of every reachable member that hosts rooms (up or leaving, with the server role), then
    /// answers with <paramref name="merge"/> of what came back in time.
    /// </summary>
    private void AskAll(object question, IActorRef replyTo, TimeSpan timeout, Func<IReadOnlyList<object>, object> merge)
    {
        var state = Akka.Cluster.Cluster.Get(Context.System).State;
        var members = state.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving && m.HasRole(Cluster.ClusterSettings.ServerRole)
                        && !state.Unreachable.Contains(m))
            .Select(m => Context.ActorSelection(new RootActorPath(m.Address) / "user" / Name))
            .ToArray();
        Context.ActorOf(Akka.Actor.Props.Create(() => new Gather(members, question, replyTo, timeout, merge)));
    }

    /// <summary>One cluster-wide query: asks each directory once and answers when all have answered or the time is up.</summary>
    private sealed class Gather : ReceiveActor
    {
        private readonly List<object> _answers = [];
        private readonly ActorSelection[] _directories;
        private readonly object _question;
        private readonly IActorRef _replyTo;
        private readonly Func<IReadOnlyList<object>, object> _merge;

        public Gather(ActorSelection[] directories, object question, IActorRef replyTo, TimeSpan timeout, Func<IReadOnlyList<object>, object> merge)
        {
            (_directories, _question, _replyTo, _merge) = (directories, question, replyTo, merge);
            SetReceiveTimeout(timeout);
            Receive<ReceiveTimeout>(_ => Reply()); // a node that does not answer in time is left out
            ReceiveAny(answer =>
            {
                _answers.Add(answer);
                if (_answers.Count >= _directories.Length)
                    Reply();
            });
        }

        protected override void PreStart()
        {
            foreach (var directory in _directories)
                directory.Tell(_question);
            if (_directories.Length == 0)
                Reply();
        }

        private void Reply()
        {
            _replyTo.Tell(_merge(_answers));
            Context.Stop(Self);
        }
    }
}

/// <summary>A sharded room tells its node's <see cref="RoomDirectory"/> it runs (it is watched from then on).</summary>
public sealed record RoomStarted(string BullPenId);

/// <summary>One node's rooms after <paramref name="After"/>, at most <paramref name="Limit"/>: answered with <see cref="RoomList"/>.</summary>
public sealed record GetLocalRooms(int Limit, string? After);

/// <summary>One node's room, if it runs there: <see cref="RoomDetails"/> or <see cref="RoomNotFound"/>.</summary>
public sealed record GetLocalRoomDetails(string BullPenId);

/// <summary>How many rooms run on one node: <see cref="RoomCount"/>.</summary>
public sealed record GetLocalRoomCount
{
    public static readonly GetLocalRoomCount Instance = new();
}
