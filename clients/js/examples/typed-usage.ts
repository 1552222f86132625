// A typed use of the package, compiled with `tsc --noEmit --strict` against the packed package by
// clients/js/typecheck.sh (run from the test suite). It type-checks only; nothing here runs.
import {
  EVENT_TYPES,
  TradeRoomClient,
  backoffDelay,
  closePolicy,
  type EventType,
  type LeaderboardData,
  type PayloadMap,
  type Room,
  type RoomSnapshot,
  type TradeRoomError,
  type TradeRoomEvent,
} from "traderoom-client";

const client = new TradeRoomClient({
  url: "ws://localhost:4001/ws",
  token: () => fetch("/api/realtime-token").then((r) => r.text()),
  WebSocket, // the DOM's WebSocket fits the client's WebSocketLike
  reconnect: { initialDelay: 250, maxDelay: 10_000 },
  refreshBeforeExpiry: false,
});

client.on("state", ({ state, attempt, delay, url, node }) => {
  const label: string = state === "reconnecting" ? `retry ${attempt} in ${delay} ms to ${url}` : state;
  console.log(label, node ?? "no node yet");
});
client.on("error", (error: TradeRoomError) => {
  if (error.code === "too_many_subscriptions" && error.bullPenId !== undefined) console.warn(`refused ${error.bullPenId}`);
  if (error.frame === "auth_error") console.warn(error.message);
});
const removeClose = client.on("close", ({ code, reason, willReconnect }) => console.log(code, reason, willReconnect));
removeClose();

function drawLeaderboard(board: LeaderboardData): void {
  for (const entry of board.entries ?? []) console.log(entry.rank ?? "-", entry.userId ?? "?", (entry.pnl ?? 0).toFixed(2));
}

function drawSnapshot(state: RoomSnapshot): void {
  if (state.leaderboard !== null) drawLeaderboard(state.leaderboard);
  if (state.room !== null && state.room.status === "ended") console.log("ended");
  const members: readonly string[] = state.members;
  console.log(members.length);
}

const room: Room = client.subscribe("bp-1", {
  onSubscribed({ recovered, state, seq, epoch }) {
    if (!recovered) drawSnapshot(state);
    console.log(seq + 1, epoch.length);
  },
  onEvent(frame: TradeRoomEvent) {
    // The frame is a union discriminated by type: each branch sees its own data.
    switch (frame.type) {
      case "order_executed":
        console.log(frame.data.userId.toUpperCase(), frame.data.symbol ?? "", frame.data.qty ?? 0);
        break;
      case "room_ended":
        console.log(frame.data.winner?.name ?? "no winner", frame.seq);
        break;
      default:
        console.log(frame.type, frame.bullPenId);
    }
  },
});
room.on("leaderboard_update", (data, frame) => {
  drawLeaderboard(data);
  const seq: number = frame.seq;
  console.log(seq, data.snapshotId === null ? "live" : data.snapshotId);
});
room.on("portfolio_update", (data) => console.log(data.userId, data.equity?.toFixed(2)));
room.on("member_left", (data) => console.log(data.userId ?? "someone", "left"));
const position: number | undefined = room.position;
console.log(position, room.epoch, room.subscribed, room.refused?.code);

const same: Room | undefined = client.room(42);
void same?.unsubscribe().then(() => console.log("unsubscribed"));

const types: readonly EventType[] = EVENT_TYPES;
console.log(types.length, backoffDelay(3, { initialDelay: 100 }), closePolicy(4001, { authError: "invalid_token" }) === "stop");

void client.connect().then(({ userId, node }) => console.log(userId, node));
void client.refreshToken().catch((error: TradeRoomError) => console.warn(error.code));

// A cluster: several URLs, a static token and Node's or the ws package's WebSocket.
const cluster = new TradeRoomClient({ urls: ["wss://a.example.com/ws", new URL("wss://b.example.com/ws")], token: "eyJ…" });
console.log(cluster.urls, cluster.url, cluster.state, cluster.userId);
cluster.close();

// A platform with stricter payloads passes its own map: every handler sees those types.
interface StrictPayloads extends PayloadMap {
  order_executed: { userId: string; symbol: string; qty: number; price: number };
}
const strict = new TradeRoomClient<StrictPayloads>({ url: "ws://localhost:4001/ws", token: "eyJ…" });
strict.subscribe("bp-2").on("order_executed", (order) => console.log(order.symbol.toLowerCase(), order.qty * order.price));
