// Several server URLs (the nodes of a cluster): the client moves to the next URL on every reconnect, resumes there
// as it does on the same server, and reports the node it is on.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { TradeRoomClient } from "../traderoom-client.js";
import { EXTERNAL, R, freePort, once, publish, publishBatch, startProxy, startServer, until, userToken } from "../testkit.js";

const FAST = { initialDelay: 20, maxDelay: 200, multiplier: 2 };

/** 1..n, as the seqs a subscriber that saw every event of a room from the start must have seen. */
const oneTo = (n) => Array.from({ length: n }, (_, i) => i + 1);

/** `promise`, or a rejection naming `what` if it does not settle within `ms`: a client that never gets in fails the test. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A client on `urls` following `bullPenId`, recording what an application would see. */
function recordingClient(urls, bullPenId) {
  const client = new TradeRoomClient({ urls, token: userToken("trader-1"), reconnect: FAST, connectTimeout: 2000 });
  const app = { client, seen: [], subscribed: [], connected: [], closes: [], auths: [] };
  client.on("state", (s) => { if (s.state === "connected") app.connected.push({ url: s.url, node: s.node }); });
  client.on("close", (c) => app.closes.push(c));
  client.on("auth", (a) => app.auths.push(a));
  app.room = client.subscribe(bullPenId, {
    onSubscribed: (info) => app.subscribed.push(info),
    onEvent: (frame) => app.seen.push(frame.seq),
  });
  return app;
}

describe("options", () => {
  test("urls must be a non-empty array of URLs, and not given beside url", () => {
    const token = "x";
    assert.throws(() => new TradeRoomClient({ token }), TypeError);
    assert.throws(() => new TradeRoomClient({ urls: [], token }), TypeError);
    assert.throws(() => new TradeRoomClient({ urls: "ws://a/ws", token }), TypeError);
    assert.throws(() => new TradeRoomClient({ urls: ["ws://a/ws", ""], token }), TypeError);
    assert.throws(() => new TradeRoomClient({ url: "ws://a/ws", urls: ["ws://b/ws"], token }), TypeError);

    const urls = ["ws://a/ws", new URL("ws://b/ws")];
    const client = new TradeRoomClient({ urls, token });
    assert.deepEqual(client.urls, ["ws://a/ws", "ws://b/ws"]);
    assert.equal(client.url, "ws://a/ws", "the first URL is tried first");
    client.urls.push("ws://c/ws");
    assert.equal(client.urls.length, 2, "urls is a copy");
    assert.deepEqual(new TradeRoomClient({ url: "ws://a/ws", token }).urls, ["ws://a/ws"]);
  });
});

describe("several server URLs", () => {
  let server;
  let a;
  let b;
  const apps = [];

  before(async () => {
    server = await startServer();
    // Two ways in to the same server, each of which can drop its links on its own: two "nodes" for the client.
    a = await startProxy(server.wsPort, server.wsHost);
    b = await startProxy(server.wsPort, server.wsHost);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await server?.stop();
  });
  afterEach(() => { for (const app of apps.splice(0)) app.client.close(); });

  test("past a dead URL to a live one; each drop moves to the next URL and resumes there with no gap or duplicate", async () => {
    const dead = `ws://127.0.0.1:${await freePort()}/ws`;
    const id = R("urls-room");
    const app = recordingClient([dead, a.url, b.url], id);
    apps.push(app);

    const result = await within(app.client.connect(), 15000, "connection past the dead URL");
    const node = server.node ?? result.node;
    assert.deepEqual(result, { userId: "trader-1", node });
    assert.equal(app.client.url, a.url);
    assert.equal(app.client.node, node);
    assert.deepEqual(app.closes.map((c) => [c.url, c.node, c.willReconnect]), [[dead, undefined, true]], "the dead URL failed first");
    assert.deepEqual(app.auths, [{ userId: "trader-1", node }]);
    await until(() => app.room.subscribed, "subscribed");

    const seqs = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => ({ bullPenId: id, type: "member_joined", data: { userId: `m${from + i}` } }));
    await publishBatch(server, seqs(1, 10));
    await until(() => app.seen.length === 10, "the first 10 events");

    // The link through A drops (no close frame); events go on meanwhile. The client must come back through B.
    const onB = once(app.client, "state", (s) => s.state === "connected");
    a.kill();
    await publishBatch(server, seqs(11, 20));
    assert.equal((await onB).url, b.url);
    await until(() => app.seen.length === 20, "events 11..20 after the move to B");

    // The link through B drops: the next URL is the dead one again, then A.
    const backOnA = once(app.client, "state", (s) => s.state === "connected");
    b.kill();
    await publishBatch(server, seqs(21, 30));
    assert.equal((await backOnA).url, a.url);
    await until(() => app.seen.length === 30, "events 21..30 after the move back to A");

    assert.deepEqual(app.seen, oneTo(30), "every seq once, in order, across three connections on two URLs");
    assert.deepEqual(app.connected, [{ url: a.url, node }, { url: b.url, node }, { url: a.url, node }]);
    assert.deepEqual(app.closes.map((c) => c.url), [dead, a.url, b.url, dead], "each reconnect tried the next URL");
    assert.deepEqual(app.closes.map((c) => c.node), [undefined, node, node, undefined], "close names the node that was left");
    assert.equal(app.subscribed[0].recovered, false);
    assert.deepEqual(app.subscribed.slice(1).map((i) => i.recovered), [true, true], "both moves resumed");
    assert.ok(app.subscribed.every((i) => i.epoch === app.subscribed[0].epoch));
    assert.equal(a.accepted, 2);
    assert.equal(b.accepted, 1);
  });
});

describe("another server on the same journal", { skip: EXTERNAL ? "needs servers of its own" : false }, () => {
  test("when its server stops, the client moves to the next server, resumes with recovered:true and names the new node", async () => {
    const first = await startServer();
    // The second server is in the client's list before it runs: its address is a proxy (which refuses links until
    // the server is there), so that no other process can take the port meanwhile.
    const second = await startProxy();
    const secondUrl = second.url;
    const id = R("handover-room");
    let app;
    let next;
    try {
      app = recordingClient([first.wsUrl, secondUrl], id);
      await within(app.client.connect(), 15000, "connection");
      await until(() => app.room.subscribed, "subscribed");
      assert.equal(app.client.node, first.node);
      for (let v = 1; v <= 3; v++) await publish(first, id, "leaderboard_update", { v });
      await until(() => app.room.position === 3, "position 3");

      // SIGTERM: the server closes the socket with 1001, the client moves on to the second URL (not up yet: it
      // keeps going round the list) while the second server starts on the first one's database.
      const left = once(app.client, "close");
      await first.stop();
      const close = await left;
      assert.deepEqual([close.code, close.url, close.node, close.willReconnect], [1001, first.wsUrl, first.node, true]);
      next = await startServer({ database: first.database });
      await publish(next, id, "leaderboard_update", { v: 4 });
      second.target = next.wsPort;

      await until(() => app.client.node === next.node && app.room.subscribed, "subscribed on the second server", 15000);
      await until(() => app.room.position === 4, "the event published while the client was away");
      assert.notEqual(next.node, first.node);
      assert.equal(app.client.url, secondUrl);
      assert.deepEqual(app.connected.at(-1), { url: secondUrl, node: next.node });
      assert.ok(app.subscribed.length >= 2);
      assert.ok(app.subscribed.slice(1).every((i) => i.recovered === true), "every resubscribe resumed");
      assert.ok(app.subscribed.every((i) => i.epoch === app.subscribed[0].epoch), "the room kept its epoch");
      assert.deepEqual(app.seen, [1, 2, 3, 4]);
    } finally {
      app?.client.close();
      await second.close();
      await first.stop();
      await next?.stop();
    }
  });
});
