// TradeRoom JavaScript client: one small, dependency-free ES module for browsers and Node.
// Keeps each bull pen's epoch and position, resumes after every reconnect (docs/protocol.md "Resume"),
// reconnects with exponential backoff and full jitter, and notices dead links with an app-level ping.
// Given several server URLs (`urls`: the nodes of a cluster), it moves to the next one on every reconnect.
// API and reconnect policy: clients/js/README.md.

/** The 14 event types of the Trade Room (docs/protocol.md). Other types are delivered too (forward compatible). */
export const EVENT_TYPES = Object.freeze([
  "order_executed", "order_failed", "order_cancelled",
  "leaderboard_update", "ranking_changed", "snapshot_created",
  "position_update", "position_closed", "portfolio_update",
  "room_state_changed", "room_started", "room_ended", "member_joined", "member_left",
]);

const DEFAULTS = Object.freeze({
  pingInterval: 15000,
  pingTimeout: 10000,
  connectTimeout: 10000,
  refreshBeforeExpiry: 30000,
  reconnect: Object.freeze({ initialDelay: 500, maxDelay: 15000, multiplier: 2 }),
  // Below the server's default limit (20 messages/s, bursts of 50), so a resubscribe of many rooms is never dropped.
  rateLimit: Object.freeze({ perSecond: 15, burst: 40 }),
});

const OPEN = 1;

/**
 * The delay before reconnect attempt `attempt` (1 for the first): full jitter,
 * random(0, min(maxDelay, initialDelay * multiplier^(attempt-1))).
 */
export function backoffDelay(attempt, reconnect = DEFAULTS.reconnect, random = Math.random) {
  const { initialDelay, maxDelay, multiplier } = { ...DEFAULTS.reconnect, ...reconnect };
  const cap = Math.min(maxDelay, initialDelay * Math.pow(multiplier, Math.max(0, attempt - 1)));
  const r = Math.min(Math.max(Number(random()) || 0, 0), 1);
  return Math.floor(r * cap);
}

/**
 * What the client does after a connection ends: "stop" or "reconnect". `authError` is the code of an `auth_error`
 * frame received on that connection (if any); `tokenIsFunction` whether a token function can supply a new token.
 */
export function closePolicy(code, { clientClosed = false, authError = null, tokenIsFunction = false } = {}) {
  if (clientClosed) return "stop";
  if (code === 4001 && authError && authError !== "too_many_connections" && !tokenIsFunction) return "stop";
  return "reconnect";
}

function validRoomId(bullPenId) {
  if (typeof bullPenId === "number" && Number.isSafeInteger(bullPenId)) return String(bullPenId);
  if (typeof bullPenId === "string" && bullPenId.length > 0 && bullPenId.length <= 128) return bullPenId;
  throw new TypeError(`bullPenId must be a non-empty string of at most 128 characters or an integer, got ${JSON.stringify(bullPenId)}`);
}

/** The `exp` of a JWT in milliseconds, or undefined if it has none or cannot be read. */
function jwtExpiry(token) {
  try {
    const payload = String(token).split(".")[1];
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function clientError(code, message, extra) {
  const error = new Error(message);
  error.code = code;
  if (extra) Object.assign(error, extra);
  return error;
}

/** One followed bull pen. Made by client.subscribe(); keeps its epoch and position across reconnects. */
/** Adds fn to the set under key in map; returns a function that removes it. */
function addListener(map, key, fn, call) {
  if (typeof fn !== "function") throw new TypeError(`${call}: fn must be a function`);
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(fn);
  return () => set.delete(fn);
}

export class Room {
  constructor(client, bullPenId) {
    this._client = client;
    this.bullPenId = bullPenId;
    this._epoch = undefined;
    this._position = undefined;
    this._wanted = true;         // the application follows this room
    this._link = "none";        // on the current connection: none | subscribing | subscribed | unsubscribing
    this._sent = null;           // the subscribe in flight: { sinceSeq, life }
    this._life = 0;              // +1 on every unsubscribe(): answers to older requests are not resumes
    this._refused = null;        // the server's error when it refused the subscribe; not resubscribed until subscribe()
    this._unsubscribeWaiters = [];
    this._onSubscribed = new Set();
    this._onEvent = new Set();
    this._byType = new Map();
  }

  /** The last seq seen (undefined before the first `subscribed`). */
  get position() { return this._position; }

  /** The room's epoch from the last `subscribed` (undefined before it). */
  get epoch() { return this._epoch; }

  /** Whether the room is subscribed on the current connection. */
  get subscribed() { return this._wanted && this._link === "subscribed"; }

  /**
   * The server's error (`code` e.g. "too_many_subscriptions", `bullPenId`) if it refused this room's subscribe, else
   * null. A refused room is not subscribed again, not even after a reconnect, until client.subscribe() asks again.
   */
  get refused() { return this._refused; }

  /** Calls fn(data, frame) for every event of this type; returns a function that removes it. */
  on(type, fn) {
    return addListener(this._byType, type, fn, "room.on(type, fn)");
  }

  /** Stops following the room; resolves on the server's `unsubscribed` (or when the client is closed). */
  unsubscribe() {
    return this._client._unsubscribe(this);
  }

  _addHandlers(handlers) {
    if (!handlers) return;
    if (typeof handlers.onSubscribed === "function") this._onSubscribed.add(handlers.onSubscribed);
    if (typeof handlers.onEvent === "function") this._onEvent.add(handlers.onEvent);
  }

  _forget() {
    this._life++;
    this._refused = null;
    this._onSubscribed.clear();
    this._onEvent.clear();
    this._byType.clear();
    this._epoch = undefined;
    this._position = undefined;
  }
}

/** The server URLs of the options: `urls` (a non-empty array) or the single `url`, never both. */
function serverUrls(options) {
  if (options.urls !== undefined && options.url !== undefined) {
    throw new TypeError("TradeRoomClient: give options.url or options.urls, not both");
  }
  const urls = options.urls !== undefined ? options.urls : [options.url];
  if (!Array.isArray(urls) || urls.length === 0) {
    throw new TypeError("TradeRoomClient: options.urls must be a non-empty array of WebSocket URLs");
  }
  for (const url of urls) {
    const valid = (typeof url === "string" && url.length > 0) || url instanceof URL;
    if (!valid) throw new TypeError(`TradeRoomClient: options.url${options.urls !== undefined ? "s" : ""} is required: a WebSocket URL, got ${JSON.stringify(url)}`);
  }
  return urls.map(String);
}

export class TradeRoomClient {
  constructor(options = {}) {
    this._urls = serverUrls(options);
    if (options.token == null) throw new TypeError("TradeRoomClient: options.token (a JWT or a function returning one) is required");
    this._urlIndex = 0;          // the URL of the current connection (attempt); the next one on every reconnect
    this._node = undefined;      // auth_success's data.node on the current connection
    this._token = options.token;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._pingInterval = options.pingInterval ?? DEFAULTS.pingInterval;
    this._pingTimeout = options.pingTimeout ?? DEFAULTS.pingTimeout;
    this._connectTimeout = options.connectTimeout ?? DEFAULTS.connectTimeout;
    this._reconnect = { ...DEFAULTS.reconnect, ...options.reconnect };
    this._rate = { ...DEFAULTS.rateLimit, ...options.rateLimit };
    this._random = options.random ?? Math.random;

    this._listeners = new Map();
    this._rooms = new Map();
    this._state = "idle";
    this._userId = undefined;
    this._gen = 0;               // connection generation: callbacks of older sockets are ignored
    this._ws = null;
    this._authed = false;
    this._authSent = false;
    this._authQueue = [];        // per auth sent on this socket: { token, waiters } (the refreshes it answers)
    this._refreshWaiters = [];   // refreshes waiting for the next connection's auth
    this._lastAuthError = null;
    this._attempt = 0;
    this._stopped = true;
    this._connecting = null;     // { promise, resolve, reject } until the first auth_success
    this._outbox = [];
    this._tokens = 0;
    this._tokensAt = 0;
    this._refreshBeforeExpiry = options.refreshBeforeExpiry ?? DEFAULTS.refreshBeforeExpiry;
    this._timers = { connect: null, ping: null, pingDeadline: null, flush: null, reconnect: null, refresh: null };
  }

  /** "idle" | "connecting" | "connected" | "reconnecting" | "closed" */
  get state() { return this._state; }

  /** The authenticated user id (from the last auth_success). */
  get userId() { return this._userId; }

  /**
   * The server node the current connection is on (auth_success's `data.node`: a cluster address, or host:port on a
   * single server); undefined while not connected, or against a server that does not name it.
   */
  get node() { return this._node; }

  /** The server URL of the current connection, or of the attempt under way or about to start. */
  get url() { return this._urls[this._urlIndex]; }

  /** The server URLs, in the order the client tries them. */
  get urls() { return [...this._urls]; }

  /** Listens to "state", "auth", "error" or "close"; returns a function that removes the listener. */
  on(event, fn) {
    return addListener(this._listeners, event, fn, "client.on(event, fn)");
  }

  /** Opens the connection; resolves on the first auth_success, rejects if the client stops before (see README). */
  connect() {
    if (this._connecting) return this._connecting.promise;
    if (!this._stopped) return Promise.resolve({ userId: this._userId, node: this._node });
    if (typeof this._WebSocket !== "function") {
      return Promise.reject(clientError("no_websocket",
        "no WebSocket implementation: pass options.WebSocket, or run Node 20 with --experimental-websocket (Node 22+ has it built in)"));
    }
    this._stopped = false;
    this._clientClosed = false;
    this._fatal = null;
    this._attempt = 0;
    this._urlIndex = 0;
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    promise.catch(() => {}); // a caller that never awaits must not see an unhandled rejection
    this._connecting = { promise, resolve, reject };
    this._setState("connecting", { attempt: 0, delay: 0 });
    this._open();
    return promise;
  }

  /**
   * Re-authenticates (token refresh). With a static token, newToken replaces it for later reconnects too; with a
   * token function, refreshToken() without an argument asks the function. Resolves on auth_success; rejects on
   * auth_error or user_mismatch. While disconnected it resolves with the next connection's auth_success.
   */
  refreshToken(newToken) {
    if (newToken !== undefined && typeof this._token !== "function") this._token = newToken;
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this._stopped) {
        reject(clientError("not_connected", "the client is not connected; call connect()"));
      } else if (this._ws && this._ws.readyState === OPEN && this._authSent) {
        const gen = this._gen;
        new Promise((res) => res(newToken !== undefined ? newToken : this._currentToken())).then(
          (token) => {
            if (gen !== this._gen) this._refreshWaiters.push(waiter); // the link changed meanwhile
            else this._sendAuth(token, [waiter]);
          },
          (e) => reject(this._emitError("token_error", `the token function failed: ${e?.message ?? e}`)));
      } else {
        this._refreshWaiters.push(waiter);
      }
    });
  }

  /**
   * Follows a bull pen. Returns its Room (the same one if already followed; the handlers are added). Works while
   * disconnected: the subscribe is sent after the next auth_success, resuming from the room's position.
   */
  subscribe(bullPenId, handlers = {}) {
    const id = validRoomId(bullPenId);
    let room = this._rooms.get(id);
    if (!room) {
      room = new Room(this, id);
      this._rooms.set(id, room);
    }
    if (!room._wanted && room._link !== "unsubscribing") {
      // An unsubscribe() not sent yet is cancelled by this subscribe: it is over for the old handlers.
      for (const resolve of room._unsubscribeWaiters.splice(0)) resolve();
    }
    room._wanted = true;
    room._refused = null; // asking again after a refusal tries again
    room._addHandlers(handlers);
    this._reconcile(room);
    return room;
  }

  /** The Room for a bull pen this client follows, or undefined. */
  room(bullPenId) {
    const room = this._rooms.get(validRoomId(bullPenId));
    return room && room._wanted ? room : undefined;
  }

  /** Closes with 1000 and never reconnects; state "closed". connect() may be called again later. */
  close() {
    if (this._stopped || this._clientClosed) return;
    this._clientClosed = true;
    const ws = this._ws;
    const gen = this._gen;
    if (ws) this._detach(ws, 1000, "client closed");
    this._linkLost(gen, 1000, "client closed");
  }

  // ------------------------------------------------------------------ connection

  _currentToken() {
    return typeof this._token === "function" ? this._token() : this._token;
  }

  _open() {
    const gen = ++this._gen;
    this._authed = false;
    this._authSent = false;
    this._authQueue = [];
    this._lastAuthError = null;
    this._outbox = [];
    const url = this.url;
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (e) {
      // The constructor refuses the URL (or the implementation is broken): retrying cannot help, and a list with a
      // malformed entry is a configuration to fix, not to work around.
      this._fatal = this._emitError("invalid_url", `cannot open ${url}: ${e?.message ?? e}`, { url });
      this._linkLost(gen, 1006, "cannot open");
      return;
    }
    this._ws = ws;
    this._timers.connect = setTimeout(
      () => this._dropLink(gen, "connect_timeout", `not connected and authenticated within ${this._connectTimeout} ms`),
      this._connectTimeout);
    let opened = false;
    ws.onopen = () => { if (gen === this._gen) { opened = true; this._onOpen(gen); } };
    ws.onmessage = (e) => { if (gen === this._gen) this._onMessage(e.data); };
    ws.onerror = (e) => {
      if (gen !== this._gen) return;
      this._emitError("transport_error", `WebSocket error${e?.message ? `: ${e.message}` : ""}`);
      // A socket that never opened is lost now: some implementations (Node 20's) fire no close event after it.
      if (!opened) this._linkLost(gen, 1006, "connection failed", ws);
    };
    ws.onclose = (e) => { if (gen === this._gen) this._linkLost(gen, e.code, e.reason); };
  }

  _onOpen(gen) {
    this._tokens = this._rate.burst;
    this._tokensAt = Date.now();
    let token;
    try {
      token = this._currentToken();
    } catch (e) {
      token = Promise.reject(e);
    }
    Promise.resolve(token).then(
      (value) => {
        if (gen !== this._gen) return;
        const waiters = this._refreshWaiters;
        this._refreshWaiters = [];
        this._sendAuth(value, waiters);
      },
      (e) => {
        if (gen !== this._gen) return;
        this._dropLink(gen, "token_error", `the token function failed: ${e?.message ?? e}`);
      });
  }

  _sendAuth(token, waiters) {
    this._authSent = true;
    this._authQueue.push({ token: String(token), waiters });
    this._send({ type: "auth", data: { token: String(token) } });
  }

  _onMessage(raw) {
    this._clearTimer("pingDeadline"); // any frame shows the link is alive
    let frame;
    try {
      frame = JSON.parse(typeof raw === "string" ? raw : String(raw));
    } catch {
      this._emitError("invalid_frame", "the server sent a frame that is not JSON");
      return;
    }
    if (!frame || typeof frame !== "object") return;
    const data = frame.data ?? {};
    switch (frame.type) {
      case "auth_success":
        this._onAuthSuccess(data);
        return;
      case "auth_error": {
        this._lastAuthError = data.code ?? "auth_error";
        const error = this._emitError(data.code, data.message, { frame: "auth_error" });
        for (const w of this._authQueue.shift()?.waiters ?? []) w.reject(error);
        return;
      }
      case "error": {
        const extra = data.bullPenId != null ? { frame: "error", bullPenId: String(data.bullPenId) } : { frame: "error" };
        const error = clientError(data.code ?? "unknown_error", data.message ?? String(data.code), extra);
        // Settle the refused request first, so that an error listener already sees the room as refused.
        const room = extra.bullPenId !== undefined ? this._rooms.get(extra.bullPenId) : undefined;
        // A subscribe refused (limits, room authorization), or a followed room that a refreshed token no longer
        // allows (forbidden; the server has left it, and its "unsubscribed" that follows changes nothing here).
        const refused = room !== undefined
          && (room._link === "subscribing" || (data.code === "forbidden" && room._link === "subscribed"));
        if (refused) {
          room._link = "none";
          room._sent = null;
          if (room._wanted) room._refused = error;
        }
        this._emit("error", error);
        if (data.code === "user_mismatch") for (const w of this._authQueue.shift()?.waiters ?? []) w.reject(error);
        if (refused && room._link === "none" && !room._wanted && this._rooms.get(room.bullPenId) === room) {
          // unsubscribe() while the refused subscribe was in flight: nothing is left on the server.
          for (const resolve of room._unsubscribeWaiters.splice(0)) resolve();
          this._rooms.delete(room.bullPenId);
        }
        return;
      }
      case "pong":
        return;
      case "subscribed":
        this._onSubscribed(data);
        return;
      case "unsubscribed":
        this._onUnsubscribed(data);
        return;
      default:
        if (frame.bullPenId != null && typeof frame.seq === "number") this._onEvent(frame);
    }
  }

  _onAuthSuccess(data) {
    const first = !this._authed;
    const { token, waiters } = this._authQueue.shift() ?? { waiters: [] };
    this._authed = true;
    this._scheduleAutoRefresh(this._gen, token);
    this._userId = data.userId;
    this._node = typeof data.node === "string" && data.node.length > 0 ? data.node : undefined;
    const gen = this._gen;
    if (first) {
      this._clearTimer("connect");
      this._attempt = 0;
      this._startPing(gen);
      // Subscribe first, so that a listener below sees the rooms being (re)subscribed.
      for (const room of [...this._rooms.values()]) this._reconcile(room);
      const connecting = this._connecting;
      this._connecting = null;
      connecting?.resolve({ userId: data.userId, node: this._node });
      this._setState("connected", { attempt: 0, delay: 0 });
    }
    for (const w of waiters) w.resolve({ userId: data.userId, node: this._node });
    if (gen === this._gen) this._emit("auth", { userId: data.userId, node: this._node });
  }

  /** Abandons the current socket (dead link): stop listening to it, close it, and handle the loss now. */
  _dropLink(gen, code, message) {
    if (gen !== this._gen) return;
    this._emitError(code, message);
    if (this._ws) this._detach(this._ws, 4000, code);
    this._linkLost(gen, 1006, code);
  }

  _detach(ws, code, reason) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closing or closed
    }
  }

  _linkLost(gen, code, reason, abandon) {
    if (gen !== this._gen) return;
    if (abandon) this._detach(abandon, 1000, reason);
    this._gen++;
    for (const name of ["connect", "ping", "pingDeadline", "flush", "refresh"]) this._clearTimer(name);
    this._ws = null;
    this._outbox = [];
    const url = this.url;
    const node = this._node;
    this._node = undefined;
    const authError = this._lastAuthError;
    // Refreshes whose auth got no answer wait for the next connection's auth.
    for (const { waiters } of this._authQueue) this._refreshWaiters.push(...waiters);
    this._authQueue = [];
    this._authed = false;
    this._authSent = false;
    for (const room of [...this._rooms.values()]) {
      room._link = "none";
      room._sent = null;
      if (!room._wanted && room._unsubscribeWaiters.length === 0) this._rooms.delete(room.bullPenId);
    }

    const decision = this._fatal ? "stop" : closePolicy(code, {
      clientClosed: this._clientClosed,
      authError,
      tokenIsFunction: typeof this._token === "function",
    });
    const willReconnect = decision === "reconnect";
    // Every reconnect (after a drop or a failed connect) tries the next server: a node that is gone, draining or
    // unreachable is left behind, and any node serves any room, so the resume works there as on the same one.
    if (willReconnect) this._urlIndex = (this._urlIndex + 1) % this._urls.length;
    const current = this._gen;
    this._emit("close", { code, reason: reason ?? "", willReconnect, url, node });
    if (this._gen !== current || this._stopped) return; // a listener closed or restarted the client
    if (willReconnect) {
      this._scheduleReconnect();
      return;
    }

    this._stopped = true;
    this._clearTimer("reconnect");
    const why = this._clientClosed
      ? clientError("closed", "the client was closed")
      : this._fatal ?? clientError(authError ?? "closed", `connection closed with ${code}${reason ? ` (${reason})` : ""}; not reconnecting`, { closeCode: code });
    const connecting = this._connecting;
    this._connecting = null;
    connecting?.reject(why);
    for (const w of this._refreshWaiters.splice(0)) w.reject(why);
    for (const room of [...this._rooms.values()]) {
      for (const resolve of room._unsubscribeWaiters.splice(0)) resolve();
      if (!room._wanted) this._rooms.delete(room.bullPenId);
    }
    this._setState("closed", { attempt: this._attempt, delay: 0 });
  }

  _scheduleReconnect() {
    this._attempt++;
    const delay = backoffDelay(this._attempt, this._reconnect, this._random);
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      if (!this._stopped) this._open();
    }, delay);
    this._setState("reconnecting", { attempt: this._attempt, delay });
  }

  /**
   * With a token function, asks it for a new token before the current one expires (refreshBeforeExpiry ms before
   * its `exp`, or at half its remaining lifetime if that is sooner), so the server never closes the link with 4001.
   */
  _scheduleAutoRefresh(gen, token) {
    this._clearTimer("refresh");
    if (typeof this._token !== "function" || typeof this._refreshBeforeExpiry !== "number" || this._refreshBeforeExpiry < 0) return;
    const exp = jwtExpiry(token);
    if (exp === undefined) return;
    const left = exp - Date.now();
    const delay = Math.max(0, left - Math.min(this._refreshBeforeExpiry, left / 2));
    if (delay > 0x7fffffff) return; // beyond setTimeout's range; the next auth reschedules
    this._timers.refresh = setTimeout(() => {
      this._timers.refresh = null;
      if (gen === this._gen) this.refreshToken().catch(() => {}); // failures are reported on "error"
    }, delay);
  }

  _startPing(gen) {
    if (!(this._pingInterval > 0)) return;
    let queued = false; // at most one ping waits in the outbox (sending is paced)
    this._timers.ping = setInterval(() => {
      if (gen !== this._gen || this._timers.pingDeadline || queued) return;
      queued = true;
      this._send({ type: "ping" }, () => {
        queued = false;
        if (gen !== this._gen || this._timers.pingDeadline) return;
        this._timers.pingDeadline = setTimeout(
          () => this._dropLink(gen, "ping_timeout", `no frame within ${this._pingTimeout} ms of a ping`),
          this._pingTimeout);
      });
    }, this._pingInterval);
  }

  // ------------------------------------------------------------------ sending (paced below the server's rate limit)

  _send(message, onWritten) {
    this._outbox.push([JSON.stringify(message), onWritten]);
    this._flush();
  }

  _flush() {
    const ws = this._ws;
    if (!ws || ws.readyState !== OPEN) return;
    const now = Date.now();
    this._tokens = Math.min(this._rate.burst, this._tokens + ((now - this._tokensAt) * this._rate.perSecond) / 1000);
    this._tokensAt = now;
    while (this._outbox.length > 0 && this._tokens >= 1) {
      const [text, onWritten] = this._outbox.shift();
      this._tokens -= 1;
      try {
        ws.send(text);
      } catch (e) {
        this._emitError("transport_error", `send failed: ${e?.message ?? e}`);
        return;
      }
      onWritten?.();
    }
    if (this._outbox.length > 0 && !this._timers.flush) {
      const wait = Math.ceil(((1 - this._tokens) * 1000) / this._rate.perSecond);
      this._timers.flush = setTimeout(() => {
        this._timers.flush = null;
        this._flush();
      }, Math.max(1, wait));
    }
  }

  // ------------------------------------------------------------------ rooms

  /** Brings the room's subscription on the current connection to what the application wants, one request at a time. */
  _reconcile(room) {
    if (!this._authed) return;
    if (room._link === "subscribing" || room._link === "unsubscribing") return; // wait for the answer
    if (room._wanted && room._link === "none") {
      if (room._refused) return; // refused by the server: only a new subscribe() asks again
      const resume = room._epoch !== undefined && room._position !== undefined;
      const data = resume ? { bullPenId: room.bullPenId, sinceSeq: room._position, epoch: room._epoch } : { bullPenId: room.bullPenId };
      room._sent = { sinceSeq: data.sinceSeq, life: room._life };
      room._link = "subscribing";
      this._send({ type: "subscribe_room", data });
    } else if (!room._wanted && (room._link === "subscribed" || room._unsubscribeWaiters.length > 0)) {
      room._link = "unsubscribing";
      this._send({ type: "unsubscribe_room", data: { bullPenId: room.bullPenId } });
    } else if (!room._wanted && room._link === "none") {
      this._rooms.delete(room.bullPenId);
    }
  }

  _unsubscribe(room) {
    if (this._rooms.get(room.bullPenId) !== room) return Promise.resolve();
    // A refused room has nothing on the server to undo (it is never resubscribed while refused).
    const refused = room._refused !== null && room._wanted && room._link === "none";
    room._wanted = false;
    room._forget();
    return new Promise((resolve) => {
      room._unsubscribeWaiters.push(resolve);
      if (this._stopped || refused) {
        for (const r of room._unsubscribeWaiters.splice(0)) r();
        this._rooms.delete(room.bullPenId);
        return;
      }
      this._reconcile(room);
    });
  }

  _onSubscribed(data) {
    const room = this._rooms.get(String(data.bullPenId));
    if (!room || room._link !== "subscribing") return;
    const sent = room._sent ?? {};
    room._link = "subscribed";
    room._sent = null;
    if (room._wanted) {
      // A resume asked for by handlers since removed with unsubscribe() is a fresh start for the new ones: they
      // get recovered:false and the snapshot, and the replayed events (seq <= data.seq) are dropped as seen.
      const recovered = data.recovered === true && sent.sinceSeq !== undefined && sent.life === room._life;
      // docs/protocol.md "Resume": position = recovered ? sinceSeq : seq. Never backwards within an epoch.
      room._position = recovered ? Math.max(room._position ?? 0, sent.sinceSeq) : data.seq;
      room._epoch = data.epoch;
      const info = { bullPenId: room.bullPenId, seq: data.seq, epoch: data.epoch, recovered, state: data.state };
      const life = room._life;
      for (const fn of [...room._onSubscribed]) if (room._life === life) this._call(fn, info);
    }
    this._reconcile(room);
  }

  _onUnsubscribed(data) {
    const room = this._rooms.get(String(data.bullPenId));
    if (!room || room._link !== "unsubscribing") return;
    room._link = "none";
    for (const resolve of room._unsubscribeWaiters.splice(0)) resolve();
    this._reconcile(room);
  }

  _onEvent(frame) {
    const room = this._rooms.get(String(frame.bullPenId));
    if (!room || !room._wanted || room._link !== "subscribed") return;
    if (room._position !== undefined && frame.seq <= room._position) return; // already seen
    room._position = frame.seq;
    const life = room._life; // a callback may unsubscribe: none of the room's callbacks runs after that
    for (const fn of [...room._onEvent]) if (room._life === life) this._call(fn, frame);
    const set = room._byType.get(frame.type);
    if (set) for (const fn of [...set]) if (room._life === life) this._call(fn, frame.data, frame);
  }

  // ------------------------------------------------------------------ events

  _setState(state, { attempt, delay }) {
    this._state = state;
    this._emit("state", { state, attempt, delay, url: this.url, node: this._node });
  }

  _emitError(code, message, extra) {
    const error = clientError(code ?? "unknown_error", message ?? String(code), extra);
    this._emit("error", error);
    return error;
  }

  _emit(event, payload) {
    const set = this._listeners.get(event);
    if (set) for (const fn of [...set]) this._call(fn, payload, undefined, event === "error");
  }

  /** Runs an application callback; an exception in it is reported on "error" and never breaks the client. */
  _call(fn, a, b, isErrorListener = false) {
    try {
      fn(a, b);
    } catch (e) {
      if (isErrorListener) {
        (globalThis.console?.error ?? (() => {}))("TradeRoomClient: an error listener threw", e);
      } else {
        this._emitError("callback_error", `a listener threw: ${e?.message ?? e}`, { cause: e });
      }
    }
  }

  _clearTimer(name) {
    const t = this._timers[name];
    if (t !== null) {
      clearTimeout(t); // clearTimeout also clears intervals
      this._timers[name] = null;
    }
  }
}
