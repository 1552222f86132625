// Reconnect and resume against the real server, through a TCP proxy that cuts or black-holes links.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { TradeRoomClient } from "../traderoom-client.js";
import { EXTERNAL, R, once, publish, publishBatch, startProxy, startServer, until, userToken } from "../testkit.js";

const FAST = { initialDelay: 20, maxDelay: 200, multiplier: 2 };
// A link cut during its upgrade gets no event at all from Node 20's WebSocket: the connect timeout ends it.

/** A client plus what an application would keep: every event seen per room, every onSubscribed, every error. */
function recordingClient(url, rooms, options = {}) {
  const client = new TradeRoomClient({ url, token: userToken("trader-1"), reconnect: FAST, connectTimeout: 1000, ...options });
  const seen = new Map(rooms.map((id) => [id, []]));
  const subscribed = new Map(rooms.map((id) => [id, []]));
  const errors = [];
  const closes = [];
  client.on("error", (e) => errors.push(e.code));
  client.on("close", (c) => closes.push(c));
  const handles = rooms.map((id) => client.subscribe(id, {
    onSubscribed: (info) => subscribed.get(id).push(info),
    onEvent: (frame) => seen.get(id).push(frame.seq),
  }));
  return { client, seen, subscribed, errors, closes, handles };
}

/** 1..n, as the seqs a subscriber that saw every event of a room from the start must have seen. */
const oneTo = (n) => Array.from({ length: n }, (_, i) => i + 1);

describe("reconnect and resume", () => {
  let server;
  let proxy;

  before(async () => {
    server = await startServer();
    proxy = await startProxy(server.wsPort, server.wsHost);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });
  afterEach(() => {
    for (const app of apps.splice(0)) app.client.close();
    proxy.reset();
  });
  const apps = [];
  const track = (app) => { apps.push(app); return app; };

  test("a cut while events are published resumes with recovered:true and no gap or duplicate", async () => {
    const rooms = [R("cut-a"), R("cut-b")];
    const app = track(recordingClient(proxy.url, rooms));
    await app.client.connect();
    await until(() => app.handles.every((r) => r.subscribed), "both rooms subscribed");

    let published = 0;
    const publisher = (async () => {
      for (let i = 0; i < 60; i++) {
        await publishBatch(server, rooms.map((bullPenId) => ({ bullPenId, type: "member_joined", data: { userId: `m${i}` } })));
        published++;
        if (i === 15 || i === 35) proxy.kill();
      }
    })();
    await publisher;
    await until(() => rooms.every((id) => app.seen.get(id).length === 60), "all 60 events of each room", 15000);

    for (const id of rooms) {
      assert.deepEqual(app.seen.get(id), oneTo(60), `${id}: every seq once, in order`);
      const infos = app.subscribed.get(id);
      assert.equal(infos[0].recovered, false, "the first subscribe is fresh");
      assert.ok(infos.length >= 3, `${id}: resubscribed after each of the two cuts (got ${infos.length} subscribed)`);
      assert.ok(infos.slice(1).every((i) => i.recovered === true), `${id}: every resubscribe recovered`);
      assert.equal(app.handles[rooms.indexOf(id)].position, 60);
    }
    assert.equal(published, 60);
    assert.ok(app.closes.filter((c) => c.willReconnect).length >= 2);
  });

  test("fast cuts in a row, including during the resubscribe and the replay, lose and double nothing", async () => {
    const rooms = [R("fast-a"), R("fast-b"), R("fast-c")];
    const app = track(recordingClient(proxy.url, rooms));
    const states = [];
    app.client.on("state", (s) => states.push(s.state));
    await app.client.connect();
    await until(() => app.handles.every((r) => r.subscribed), "all rooms subscribed");

    // Events are published all along; each stage keeps the client out while more pile up, then cuts the next
    // link at one point: right after auth_success (the resubscribes in flight), right after a `subscribed`
    // (its replay in flight), or in the middle of the replayed events.
    let head = 0;
    let publishing = true;
    const publishSome = async (n) => {
      for (let i = 0; i < n; i++) {
        const seqs = await publishBatch(server, rooms.map((bullPenId) => ({ bullPenId, type: "member_joined", data: { userId: `x${head}` } })));
        head = seqs[0];
      }
    };
    const background = (async () => { while (publishing) await publishSome(1); })();
    const stages = ["auth_success", "auth_success", "auth_success", "\"subscribed\"", "\"subscribed\"", "member_joined", "member_joined"];
    for (const marker of stages) {
      proxy.mode = "refuse";
      proxy.kill();
      await publishSome(5);
      const cut = proxy.cutWhen(marker);
      proxy.mode = "forward";
      await until(() => cut.count === 0, `a cut at ${marker}`);
    }
    publishing = false;
    await background;
    await until(() => rooms.every((id) => app.seen.get(id).at(-1) === head), `every room at seq ${head}`);

    for (const id of rooms) {
      assert.deepEqual(app.seen.get(id), oneTo(head), `${id}: every seq once, in order`);
      assert.ok(app.subscribed.get(id).slice(1).every((i) => i.recovered === true), `${id}: every resubscribe recovered`);
    }
    assert.ok(app.closes.length >= stages.length, `expected at least ${stages.length} lost links, saw ${app.closes.length}`);
    assert.equal(states.at(-1), "connected");
  });

  test("a black-holed link is noticed by the application ping, then the client reconnects and resumes", async () => {
    const app = track(recordingClient(proxy.url, [R("hole-a")], { pingInterval: 150, pingTimeout: 300 }));
    await app.client.connect();
    await until(() => app.handles[0].subscribed, "subscribed");
    await publish(server, R("hole-a"), "member_joined", { userId: "a" });
    await until(() => app.seen.get(R("hole-a")).length === 1, "first event");

    proxy.blackhole(); // the TCP connection stays open; nothing passes any more
    const reconnected = once(app.client, "state", (s) => s.state === "connected", 10000);
    const lost = once(app.client, "close", () => true, 10000);
    await publish(server, R("hole-a"), "member_joined", { userId: "b" });
    await publish(server, R("hole-a"), "member_joined", { userId: "c" });

    const close = await lost;
    assert.equal(close.willReconnect, true);
    assert.equal(close.code, 1006);
    assert.ok(app.errors.includes("ping_timeout"), `errors: ${app.errors}`);
    await reconnected;
    await until(() => app.seen.get(R("hole-a")).length === 3, "the events published while the link was dead");
    assert.deepEqual(app.seen.get(R("hole-a")), [1, 2, 3]);
    assert.equal(app.subscribed.get(R("hole-a")).at(-1).recovered, true);
  });

  test("a connection that never completes is given up after connectTimeout and retried", async () => {
    proxy.mode = "blackhole";
    const app = track(recordingClient(proxy.url, [R("slow-open")], { connectTimeout: 300 }));
    const errors = [];
    app.client.on("error", (e) => errors.push(e.code));
    const connected = app.client.connect();
    await once(app.client, "state", (s) => s.state === "reconnecting", 5000);
    assert.ok(errors.includes("connect_timeout"), `errors: ${errors}`);
    proxy.mode = "forward";
    await connected;
    await until(() => app.handles[0].subscribed, "subscribed after the retry");
  });

  test("subscribes and unsubscribes made while disconnected are sent after the next auth_success", async () => {
    const app = track(recordingClient(proxy.url, [R("queue-keep"), R("queue-drop")]));
    await app.client.connect();
    await until(() => app.handles.every((r) => r.subscribed), "subscribed");

    proxy.mode = "refuse";
    proxy.kill();
    await once(app.client, "state", (s) => s.state === "reconnecting");
    const added = [];
    const newRoom = app.client.subscribe(R("queue-new"), { onEvent: (f) => added.push(f.seq) });
    const dropped = app.handles[1].unsubscribe();
    assert.equal(newRoom.subscribed, false);

    proxy.mode = "forward";
    await dropped; // resolves on the server's `unsubscribed`, sent after the reconnect's auth
    await until(() => newRoom.subscribed && app.handles[0].subscribed, "the queued subscribe and the resubscribe");

    await publish(server, R("queue-drop"), "member_joined", { userId: "nobody-listens" });
    await publish(server, R("queue-new"), "member_joined", { userId: "n" });
    await publish(server, R("queue-keep"), "member_joined", { userId: "k" });
    await until(() => added.length === 1 && app.seen.get(R("queue-keep")).length === 1, "events of the followed rooms");
    assert.deepEqual(app.seen.get(R("queue-drop")), []);
    assert.equal(app.client.room(R("queue-drop")), undefined);
    assert.ok(!app.errors.includes("not_authenticated"), `errors: ${app.errors}`);
  });

  test("unsubscribe and subscribe again while a resume is in flight: the new handlers get the snapshot, not the replay", async () => {
    const id = R("renew-room");
    const app = track(recordingClient(proxy.url, [id]));
    await app.client.connect();
    await until(() => app.handles[0].subscribed, "subscribed");
    await publish(server, id, "member_joined", { userId: "a" });
    await until(() => app.seen.get(id).length === 1, "first event");

    proxy.mode = "refuse";
    proxy.kill();
    await once(app.client, "state", (s) => s.state === "reconnecting");
    await publish(server, id, "member_joined", { userId: "b" }); // missed: the resume would replay it
    const fresh = { infos: [], seqs: [] };
    let unsubscribed;
    const off = app.client.on("state", ({ state }) => {
      if (state !== "connected") return;
      off();
      // The resume (sinceSeq 1) has just been sent; its answer has not arrived.
      assert.equal(app.handles[0].subscribed, false);
      unsubscribed = app.handles[0].unsubscribe();
      app.client.subscribe(id, { onSubscribed: (i) => fresh.infos.push(i), onEvent: (f) => fresh.seqs.push(f.seq) });
    });
    proxy.mode = "forward";
    await until(() => fresh.infos.length === 1, "the answer");
    await unsubscribed;
    await publish(server, id, "member_joined", { userId: "c" });
    await until(() => fresh.seqs.length === 1, "the next event");

    assert.equal(fresh.infos[0].recovered, false);
    assert.deepEqual(fresh.infos[0].state.members, ["a", "b"]);
    assert.deepEqual(fresh.seqs, [3], "seq 2 is in the snapshot, not replayed");
    assert.deepEqual(app.seen.get(id), [1], "the old handlers saw nothing after unsubscribe()");
  });

  test("a close listener that calls close() stops the client for good", async () => {
    const app = track(recordingClient(proxy.url, []));
    await app.client.connect();
    const states = [];
    app.client.on("state", (s) => states.push(s.state));
    app.client.on("close", () => app.client.close());
    proxy.kill();
    await until(() => app.client.state === "closed", "closed");
    await new Promise((r) => setTimeout(r, 300)); // longer than any reconnect delay of FAST
    assert.deepEqual(states, ["closed"]);
    assert.equal(proxy.open, 0);
  });
});

describe("server restart", { skip: EXTERNAL ? "needs a server of its own" : false }, () => {
  test("a server restarted on its database resumes: same epoch, recovered:true, the events published meanwhile", async () => {
    let server = await startServer();
    const proxy = await startProxy(server.wsPort, server.wsHost);
    const app = recordingClient(proxy.url, [R("durable-room")]);
    try {
      const infos = app.subscribed.get(R("durable-room"));
      const [room] = app.handles;
      await app.client.connect();
      await until(() => room.subscribed, "subscribed");
      for (let v = 1; v <= 3; v++) await publish(server, R("durable-room"), "leaderboard_update", { v });
      await until(() => room.position === 3, "position 3");
      const epoch = room.epoch;

      proxy.mode = "refuse";
      const closed = once(app.client, "close");
      await server.stop();
      await closed;
      server = await startServer({ wsPort: server.wsPort, apiPort: server.apiPort, database: server.database });
      await publish(server, R("durable-room"), "leaderboard_update", { v: 4 });
      proxy.mode = "forward";

      await until(() => infos.length === 2, "the resubscribe", 15000);
      assert.equal(infos[1].recovered, true);
      assert.equal(infos[1].epoch, epoch);
      await until(() => room.position === 4, "the event published while the client was away");
      assert.deepEqual(app.seen.get(R("durable-room")), [1, 2, 3, 4]);
    } finally {
      app.client.close();
      await proxy.close();
      await server.stop();
    }
  });

  test("a new epoch (a server on a new database) answers recovered:false; the snapshot is applied and the position restarts", async () => {
    let server = await startServer();
    const proxy = await startProxy(server.wsPort, server.wsHost);
    const app = recordingClient(proxy.url, []);
    try {
      const board = { leaderboard: null };
      const room = app.client.subscribe(R("restart-room"), {
        onSubscribed: ({ recovered, state }) => { if (!recovered) board.leaderboard = state.leaderboard; },
        onEvent: (frame) => app.seen.get(R("restart-room"))?.push(frame.seq),
      });
      app.seen.set(R("restart-room"), []);
      room.on("leaderboard_update", (data) => { board.leaderboard = data; });
      const infos = [];
      app.client.subscribe(R("restart-room"), { onSubscribed: (info) => infos.push(info) });
      await app.client.connect();
      await until(() => room.subscribed, "subscribed");
      for (let v = 1; v <= 5; v++) await publish(server, R("restart-room"), "leaderboard_update", { v });
      await until(() => room.position === 5, "position 5");
      const oldEpoch = room.epoch;

      // Keep the client out until the new server has a different state for the room.
      proxy.mode = "refuse";
      const closed = once(app.client, "close");
      await server.stop();
      const close = await closed;
      assert.ok(close.willReconnect, `close ${close.code} should reconnect`);
      server = await startServer({ wsPort: server.wsPort, apiPort: server.apiPort });
      await publish(server, R("restart-room"), "leaderboard_update", { v: "after-restart" });
      proxy.mode = "forward";

      await until(() => infos.length === 2, "the resubscribe", 15000);
      const info = infos[1];
      assert.equal(info.recovered, false);
      assert.notEqual(info.epoch, oldEpoch);
      assert.equal(info.seq, 1);
      assert.deepEqual(board.leaderboard, { v: "after-restart" }, "the snapshot was applied");
      assert.equal(room.epoch, info.epoch);
      assert.equal(room.position, 1, "the position restarts with the new epoch");

      // seq 2 of the new epoch is below the old position 5, and must still be delivered.
      await publish(server, R("restart-room"), "leaderboard_update", { v: "next" });
      await until(() => room.position === 2, "seq 2 of the new epoch");
      assert.deepEqual(board.leaderboard, { v: "next" });
      assert.deepEqual(app.seen.get(R("restart-room")), [1, 2, 3, 4, 5, 2]);
    } finally {
      app.client.close();
      await proxy.close();
      await server.stop();
    }
  });
});
