// The TradeRoom live dashboard: one bull pen's leaderboard, room, members and events over the JavaScript client,
// plus the server's figures from /api/health. No build step; served by the server at /.
import { TradeRoomClient } from "./traderoom-client.js";

const FEED_SIZE = 60;
const LOG_SIZE = 30;
const HEALTH_EVERY_MS = 3000;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// Until /api/dashboard/config answers: a page served over https can only open wss://.
let config = { wsUrl: `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:4001/ws`, development: false, demo: { enabled: false, bullPenId: "demo" } };
// All the server's WebSocket URLs (a cluster's nodes): the client moves to the next one on every reconnect.
const wsUrls = () => (Array.isArray(config.wsUrls) && config.wsUrls.length > 0 ? config.wsUrls : [config.wsUrl]);
let client = null;
let room = null;
let minted = null;          // { token, userId, expiresAt } from /api/dev/token
let ranks = new Map();      // userId -> rank at the last leaderboard drawn
let members = [];
let feedCount = 0;
let lastEpoch = null;

// ------------------------------------------------------------------ formatting

const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const clock = (date = new Date()) =>
  date.toLocaleTimeString("en-GB", { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
const signed = (value) => (isNumber(value) ? (value > 0 ? "+" : "") + money.format(value) : "—");
const text = (value) => (value === undefined || value === null || value === "" ? "—" : String(value));

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(text(child)));
  return node;
}

function formatDuration(seconds) {
  if (!isNumber(seconds)) return "—";
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`;
}

function notice(message, kind = "") {
  const node = $("notice");
  node.hidden = !message;
  node.textContent = message ?? "";
  node.className = "notice " + kind;
}

function log(message) {
  const list = $("conn-log");
  list.prepend(el("li", {}, el("time", {}, clock()), message));
  while (list.children.length > LOG_SIZE) list.lastElementChild.remove();
}

// ------------------------------------------------------------------ connection state

function showState({ state, attempt, delay, url, node }) {
  const badge = $("conn-state");
  badge.dataset.state = state;
  let label = state;
  if (state === "reconnecting") {
    label = "reconnecting";
    if (isNumber(attempt)) label += ` (attempt ${attempt}`;
    if (isNumber(delay)) label += `, retry in ${(delay / 1000).toFixed(1)} s`;
    if (isNumber(attempt)) label += ")";
  } else if (state === "connecting") {
    label = "connecting…";
  }
  badge.textContent = label;
  $("conn-detail").textContent = label;
  // The node is the one this page is connected to: none while it is not.
  $("conn-node").textContent = text(node);
  $("conn-url").textContent = text(url);
  log(state === "connected" ? `${label} to node ${text(node)} via ${url}` : state === "reconnecting" ? `${label}, next ${url}` : label);
}

function showSubscribed({ bullPenId, seq, epoch, recovered, state }) {
  const sub = $("sub-state");
  sub.dataset.count = String(Number(sub.dataset.count) + 1);
  if (recovered) {
    sub.dataset.outcome = "resumed";
    sub.textContent = `resumed: missed events replayed (head ${seq})`;
    log(`resumed ${bullPenId}: nothing lost, replaying up to seq ${seq}`);
  } else {
    sub.dataset.outcome = "snapshot";
    sub.textContent = `snapshot applied (seq ${seq})`;
    log(`snapshot applied for ${bullPenId} at seq ${seq}`);
    // The events below came before: a new epoch (e.g. a server restart) numbers from 1 again.
    if (feedCount > 0) {
      addFeedNote(epoch !== lastEpoch
        ? `snapshot applied · new epoch ${epoch}: the room started afresh and its seq restarts here`
        : "snapshot applied · the missed events were no longer in the room's history");
    }
    applySnapshot(state ?? {}, seq);
  }
  lastEpoch = epoch;
  $("sub-epoch").textContent = text(epoch);
  $("sub-position").textContent = text(recovered ? room?.position : seq);
}

// ------------------------------------------------------------------ the room

function applySnapshot(state, seq) {
  ranks = new Map();
  if (state.leaderboard) drawLeaderboard(state.leaderboard, seq, "snapshot");
  else clearLeaderboard();
  drawRoom(state.room ?? null);
  members = Array.isArray(state.members) ? [...state.members] : [];
  drawMembers();
}

function leaderboardEntries(data) {
  const entries = Array.isArray(data) ? data : Array.isArray(data?.entries) ? data.entries : Array.isArray(data?.leaderboard) ? data.leaderboard : [];
  return entries
    .filter((e) => e && typeof e === "object")
    .map((e, i) => ({ ...e, rank: isNumber(e.rank) ? e.rank : i + 1 }))
    .sort((a, b) => a.rank - b.rank);
}

function clearLeaderboard() {
  $("leaderboard").querySelector("tbody").replaceChildren();
  $("leaderboard-empty").hidden = false;
  $("leaderboard-meta").textContent = "waiting for data…";
}

function drawLeaderboard(data, seq, source) {
  const table = $("leaderboard");
  const entries = leaderboardEntries(data);
  const me = $("conn-user").textContent;
  const rows = entries.map((entry) => {
    const before = ranks.get(entry.userId);
    const moved = before === undefined ? 0 : before - entry.rank;
    const row = el("tr", { dataset: { userId: text(entry.userId), rank: String(entry.rank) } },
      el("td", { className: "num" }, entry.rank),
      el("td", { className: "num move " + (moved > 0 ? "up" : moved < 0 ? "down" : "") }, moved > 0 ? `▲${moved}` : moved < 0 ? `▼${-moved}` : ""),
      el("td", {}, text(entry.name ?? entry.userId), entry.name ? el("span", { className: "trader-id" }, entry.userId) : ""),
      el("td", { className: "num " + (entry.pnl > 0 ? "pos" : entry.pnl < 0 ? "neg" : "") }, signed(entry.pnl)),
      el("td", { className: "num" }, isNumber(entry.returnPct) ? `${entry.returnPct.toFixed(2)} %` : "—"),
      el("td", { className: "num" }, isNumber(entry.equity) ? money.format(entry.equity) : "—"),
      el("td", { className: "num" }, isNumber(entry.trades) ? entry.trades : "—"));
    if (moved !== 0) row.classList.add(moved > 0 ? "moved-up" : "moved-down");
    if (entry.userId === me) row.classList.add("me");
    return row;
  });
  table.querySelector("tbody").replaceChildren(...rows);
  // Let the highlight fade: drop the class on the next frame, and the row's transition eases it out.
  requestAnimationFrame(() => requestAnimationFrame(() => rows.forEach((r) => r.classList.remove("moved-up", "moved-down"))));

  ranks = new Map(entries.map((e) => [e.userId, e.rank]));
  table.dataset.seq = String(seq ?? 0);
  table.dataset.updates = String(Number(table.dataset.updates) + 1);
  $("leaderboard-empty").hidden = rows.length > 0;
  const round = isNumber(data?.round) ? ` · round ${data.round}` : "";
  $("leaderboard-meta").textContent = `${entries.length} traders${round} · ${source} at seq ${seq ?? "—"} · ${clock()}`;
}

function drawRoom(data) {
  const status = $("room-status");
  status.dataset.status = data?.status ?? "";
  status.textContent = text(data?.status);
  $("room-round").textContent = text(data?.round ?? data?.name);
  // The simple fields of the room's data (whatever its publisher sent); times shown as local clock times.
  const detail = data ? Object.entries(data)
    .filter(([key, value]) => !["status", "round"].includes(key) && value !== null && typeof value !== "object")
    .map(([key, value]) => `${key}: ${typeof value === "string" && ISO_TIME.test(value) ? new Date(value).toLocaleTimeString("en-GB", { hour12: false }) : value}`)
    .join(" · ") : "";
  $("room-detail").textContent = text(detail);
}

function drawMembers() {
  $("members").replaceChildren(...members.map((id) => el("li", {}, id)));
  $("member-count").textContent = String(members.length);
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
const ROOM_TYPES = new Set(["room_state_changed", "room_started", "room_ended"]);

function onEvent(frame) {
  const { type, data = {}, seq } = frame;
  if (type === "leaderboard_update" || type === "snapshot_created") drawLeaderboard(data, seq, type === "snapshot_created" ? "snapshot_created" : "update");
  else if (ROOM_TYPES.has(type)) {
    const status = type === "room_started" ? "active" : type === "room_ended" ? "ended" : data.status;
    drawRoom({ ...data, status });
  } else if (type === "member_joined" && typeof data.userId === "string") {
    if (!members.includes(data.userId)) members.push(data.userId);
    drawMembers();
  } else if (type === "member_left" && typeof data.userId === "string") {
    members = members.filter((id) => id !== data.userId);
    drawMembers();
  }
  $("sub-position").textContent = text(seq);
  addToFeed(frame);
}

// ------------------------------------------------------------------ the event feed

const GROUPS = {
  order_executed: "orders", order_failed: "orders", order_cancelled: "orders",
  leaderboard_update: "leaderboard", ranking_changed: "leaderboard", snapshot_created: "leaderboard",
  position_update: "positions", position_closed: "positions", portfolio_update: "positions",
  room_state_changed: "room", room_started: "room", room_ended: "room", member_joined: "room", member_left: "room",
};

function summary(type, d) {
  const who = d.name ?? d.userId;
  switch (type) {
    case "order_executed": return `${d.userId} ${d.side ?? ""} ${d.qty ?? ""} ${d.symbol ?? ""} @ ${d.price ?? "?"}`;
    case "order_failed": return `${d.userId} ${d.side ?? ""} ${d.qty ?? ""} ${d.symbol ?? ""} failed: ${d.reason ?? "?"}`;
    case "order_cancelled": return `${d.userId} cancelled ${d.orderId ?? ""} ${d.symbol ?? ""}`;
    case "leaderboard_update":
    case "snapshot_created": {
      const entries = leaderboardEntries(d);
      const top = entries[0];
      return `${entries.length} traders` + (top ? ` · leader ${top.name ?? top.userId} ${signed(top.pnl)}` : "");
    }
    case "ranking_changed": return `${who} ${d.from ?? "?"} → ${d.to ?? "?"}`;
    case "position_update": return `${d.userId} ${d.symbol ?? ""} ${d.qty ?? ""} @ ${d.avgPrice ?? "?"} · unrealized ${signed(d.unrealizedPnl)}`;
    case "position_closed": return `${d.userId} closed ${d.symbol ?? ""} · realized ${signed(d.realizedPnl)}`;
    case "portfolio_update": return `${d.userId} equity ${isNumber(d.equity) ? money.format(d.equity) : "?"} (${signed(d.pnl)})`;
    case "room_started": return `round ${d.round ?? "?"} started`;
    case "room_state_changed": return [d.status, d.name, isNumber(d.secondsLeft) ? `${d.secondsLeft} s left` : null].filter(Boolean).join(" · ") || JSON.stringify(d).slice(0, 160);
    case "room_ended": return `round ${d.round ?? "?"} ended` + (d.winner ? ` · winner ${d.winner.name ?? d.winner.userId}` : "");
    case "member_joined": return `${who} joined`;
    case "member_left": return `${who} left`;
    default: return JSON.stringify(d).slice(0, 160);
  }
}

function addFeedNote(message) {
  const body = $("feed").querySelector("tbody");
  body.prepend(el("tr", { className: "note" }, el("td", {}, clock()), el("td", {}, ""), el("td", { colspan: "2" }, message)));
}

function addToFeed({ type, seq, data = {} }) {
  const body = $("feed").querySelector("tbody");
  body.prepend(el("tr", { dataset: { type } },
    el("td", {}, clock()),
    el("td", { className: "num" }, seq),
    el("td", {}, el("span", { className: "tag " + (GROUPS[type] ?? "") }, type)),
    el("td", {}, summary(type, data))));
  while (body.children.length > FEED_SIZE) body.lastElementChild.remove();
  feedCount++;
  $("feed-meta").textContent = `${feedCount} events received · latest ${Math.min(feedCount, FEED_SIZE)} shown, newest first`;
}

// ------------------------------------------------------------------ tokens and connecting

async function mintToken() {
  const userId = $("user-id").value.trim();
  const response = await fetch(`/api/dev/token?userId=${encodeURIComponent(userId)}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  minted = body;
  $("token").value = body.token;
  log(`minted a development token for ${body.userId}`);
  return body.token;
}

// Called by the client on every (re)connect. A minted token close to its expiry is minted afresh; if the server
// cannot be reached for that, the old one is tried (and refused at auth if really expired).
async function currentToken() {
  if (minted && minted.token === $("token").value && Date.parse(minted.expiresAt) - Date.now() < 10 * 60 * 1000) {
    try { return await mintToken(); } catch { /* keep the old one */ }
  }
  return $("token").value.trim();
}

function disconnect() {
  if (client) {
    client.close();
    client = null;
    room = null;
  }
}

async function connect() {
  disconnect();
  notice("");
  const bullPenId = $("bull-pen").value.trim();
  if (!bullPenId) return notice("Enter a bull pen id.", "error");
  if (!$("token").value.trim()) {
    if (!config.development) return notice("Enter a token: a JWT signed with the server's JWT_SECRET.", "error");
    try { await mintToken(); } catch (e) { return notice(`Could not mint a development token: ${e.message}`, "error"); }
  }

  $("room-title").textContent = `· ${bullPenId}`;
  $("members").replaceChildren();
  $("feed").querySelector("tbody").replaceChildren();
  feedCount = 0;
  lastEpoch = null;
  ranks = new Map();
  clearLeaderboard();
  const sub = $("sub-state");
  sub.dataset.outcome = "";
  sub.dataset.count = "0";
  sub.textContent = "subscribing…";

  const current = new TradeRoomClient({
    urls: wsUrls(),
    token: currentToken,
    // A dashboard should be back quickly after a server restart.
    reconnect: { initialDelay: 250, maxDelay: 4000, multiplier: 2 },
  });
  client = current;
  current.on("state", (s) => { if (client === current) showState(s); });
  current.on("auth", ({ userId }) => {
    if (client !== current) return;
    $("conn-user").textContent = userId;
    log(`authenticated as ${userId}`);
  });
  current.on("error", (err) => {
    if (client !== current) return;
    const message = err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? err);
    // A failed (re)connect attempt also ends in a close, which the log shows: no second line for it.
    if (err?.code !== "transport_error") log(`error ${message}`);
    if (err?.code === "invalid_token" || err?.code === "token_expired") notice(`The server refused the token (${message}).`, "error");
  });
  current.on("close", ({ code, reason, willReconnect }) => {
    if (client !== current) return;
    const what = code === 1006 ? "no connection (1006)" : `socket closed ${code ?? ""} ${reason ?? ""}`;
    log(`${what}${willReconnect ? " · will reconnect" : ""}`);
  });

  room = current.subscribe(bullPenId, {
    onSubscribed: (info) => { if (client === current) showSubscribed(info); },
    onEvent: (frame) => { if (client === current) onEvent(frame); },
  });
  const url = new URL(location.href);
  url.searchParams.set("room", bullPenId);
  history.replaceState(null, "", url);
  try {
    await current.connect();
  } catch (e) {
    if (client === current) notice(`Could not connect: ${e?.message ?? e?.code ?? e}`, "error");
  }
}

// ------------------------------------------------------------------ server figures

let lastHealth = null;

function rate(field, health, previous) {
  if (!previous || !isNumber(health[field]) || !isNumber(previous.body[field])) return "—";
  const seconds = (health.at - previous.at) / 1000;
  if (seconds <= 0) return "—";
  return (Math.max(0, health[field] - previous.body[field]) / seconds).toFixed(1);
}

async function refreshHealth() {
  try {
    const response = await fetch("/api/health", { cache: "no-store" });
    const body = await response.json();
    const health = { ...body, at: Date.now() };
    $("health-status").textContent = `${text(body.status)} · ${clock()}`;
    $("health-connections").textContent = text(body.connections);
    $("health-rooms").textContent = text(body.rooms);
    $("health-uptime").textContent = formatDuration(body.uptimeSeconds);
    $("health-events-rate").textContent = rate("eventsPublished", health, lastHealth);
    $("health-frames-rate").textContent = rate("framesDelivered", health, lastHealth);
    lastHealth = { body, at: health.at };
  } catch {
    $("health-status").textContent = `unreachable · ${clock()}`;
    lastHealth = null;
  }
}

// ------------------------------------------------------------------ start

async function start() {
  try {
    const response = await fetch("/api/dashboard/config", { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch { /* the defaults above */ }

  $("bull-pen").value = params.get("room") ?? config.demo?.bullPenId ?? "demo";
  if (params.get("user")) $("user-id").value = params.get("user");
  if (params.get("token")) $("token").value = params.get("token");
  $("dev-mint").hidden = !config.development;

  $("connect-form").addEventListener("submit", (e) => { e.preventDefault(); connect(); });
  $("disconnect").addEventListener("click", () => disconnect());
  $("mint").addEventListener("click", async () => {
    try { await mintToken(); notice(""); } catch (e) { notice(`Could not mint a development token: ${e.message}`, "error"); }
  });

  refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);

  // Come alive at once where that needs no input: a token in the address, or Development (mint one).
  if ($("token").value || config.development) connect();
  else notice("Enter a token and press Connect.");
}

start();
