// Type declarations for traderoom-client.js, written by hand: keep them in step with the module (its API, README.md)
// and with docs/protocol.md (frames, the 14 event types, the subscribe snapshot). Checked by
// tests/TradeRoom.Tests/Integration/JsTypesTests.cs, which compiles examples/*.ts against the packed package.

// ------------------------------------------------------------------ events and their data

/** The 14 event types of the Trade Room (docs/protocol.md). The server refuses any other type (`unknown_type`). */
export type EventType =
  | "order_executed" | "order_failed" | "order_cancelled"
  | "leaderboard_update" | "ranking_changed" | "snapshot_created"
  | "position_update" | "position_closed" | "portfolio_update"
  | "room_state_changed" | "room_started" | "room_ended" | "member_joined" | "member_left";

/** The 14 event types, in the order of docs/protocol.md. */
export declare const EVENT_TYPES: readonly EventType[];

/**
 * An event's `data` is exactly what the publisher sent (docs/protocol.md): the server checks only that it is a JSON
 * object and that private events carry a string `userId`. So every field below that the server does not check is
 * optional: it is the convention of the Trade Room's publishers (the demo trade room publishes all of them), and a
 * publisher may add others.
 */
export interface EventData {
  readonly [field: string]: unknown;
}

/** `"buy"` or `"sell"` by convention; any string a publisher sends comes through. */
export type OrderSide = "buy" | "sell" | (string & {});

/** Common to the private events (orders, positions, portfolios): only the connections of `userId` receive them. */
export interface PrivateEventData extends EventData {
  /** The trader the event belongs to. The server refuses a private event without a string `userId` (`missing_user`). */
  readonly userId: string;
}

export interface OrderExecutedData extends PrivateEventData {
  readonly orderId?: string;
  readonly symbol?: string;
  readonly side?: OrderSide;
  readonly qty?: number;
  readonly price?: number;
  /** ISO 8601 time. */
  readonly executedAt?: string;
}

export interface OrderFailedData extends PrivateEventData {
  readonly orderId?: string;
  readonly symbol?: string;
  readonly side?: OrderSide;
  readonly qty?: number;
  readonly price?: number;
  /** E.g. `insufficient_buying_power`, `price_moved`, `market_halted`, `risk_limit`. */
  readonly reason?: string;
  readonly at?: string;
}

export interface OrderCancelledData extends PrivateEventData {
  readonly orderId?: string;
  readonly symbol?: string;
  readonly side?: OrderSide;
  readonly qty?: number;
  readonly reason?: string;
  readonly at?: string;
}

export interface LeaderboardEntry extends EventData {
  readonly userId?: string;
  readonly rank?: number;
  readonly pnl?: number;
  readonly name?: string;
  readonly returnPct?: number;
  readonly equity?: number;
  readonly trades?: number;
}

/** `leaderboard_update` and `snapshot_created`: the standings. */
export interface LeaderboardData extends EventData {
  readonly entries?: readonly LeaderboardEntry[];
  readonly round?: number;
  readonly asOf?: string;
  /** The snapshot's id on `snapshot_created`; `null` on a plain `leaderboard_update` (as the demo sends it). */
  readonly snapshotId?: string | null;
}

export interface RankingChangedData extends EventData {
  readonly userId?: string;
  readonly name?: string;
  /** The rank before and after. */
  readonly from?: number;
  readonly to?: number;
  readonly round?: number;
  readonly at?: string;
}

export interface PositionUpdateData extends PrivateEventData {
  readonly symbol?: string;
  readonly qty?: number;
  readonly avgPrice?: number;
  readonly marketPrice?: number;
  readonly unrealizedPnl?: number;
  readonly at?: string;
}

export interface PositionClosedData extends PrivateEventData {
  readonly symbol?: string;
  readonly realizedPnl?: number;
  readonly closedAt?: string;
}

export interface PortfolioUpdateData extends PrivateEventData {
  readonly cash?: number;
  readonly equity?: number;
  readonly pnl?: number;
  readonly returnPct?: number;
  /** The number of open positions. */
  readonly positions?: number;
  readonly at?: string;
}

/** `"waiting"`, `"active"` or `"ended"` by convention; the server itself sets `"active"` / `"ended"` in the snapshot. */
export type RoomStatus = "waiting" | "active" | "ended" | (string & {});

export interface RoomStateChangedData extends EventData {
  readonly status?: RoomStatus;
  readonly round?: number;
  readonly name?: string;
  readonly startsAt?: string;
  readonly secondsLeft?: number;
}

export interface RoomStartedData extends EventData {
  readonly round?: number;
  readonly name?: string;
  readonly startsAt?: string;
  readonly endsAt?: string;
  readonly startingCash?: number;
  readonly symbols?: readonly string[];
}

export interface RoomEndedData extends EventData {
  readonly round?: number;
  readonly endedAt?: string;
  readonly winner?: { readonly userId?: string; readonly name?: string; readonly pnl?: number };
}

/** `member_joined` / `member_left`: the snapshot's `members` follows their string `userId`s. */
export interface MemberJoinedData extends EventData {
  readonly userId?: string;
  readonly name?: string;
  readonly joinedAt?: string;
}

export interface MemberLeftData extends EventData {
  readonly userId?: string;
  readonly name?: string;
  readonly leftAt?: string;
}

/** The `data` of each event type. A platform with stricter payloads passes its own map to `TradeRoomClient<P>`. */
export interface EventPayloads {
  order_executed: OrderExecutedData;
  order_failed: OrderFailedData;
  order_cancelled: OrderCancelledData;
  leaderboard_update: LeaderboardData;
  ranking_changed: RankingChangedData;
  snapshot_created: LeaderboardData;
  position_update: PositionUpdateData;
  position_closed: PositionClosedData;
  portfolio_update: PortfolioUpdateData;
  room_state_changed: RoomStateChangedData;
  room_started: RoomStartedData;
  room_ended: RoomEndedData;
  member_joined: MemberJoinedData;
  member_left: MemberLeftData;
}

/** What `TradeRoomClient<P>` accepts as its payload map: a data type per event type. */
export type PayloadMap = { [K in EventType]: object };

/** One event frame: `{"type","bullPenId","seq","data"}`. */
export interface EventFrame<K extends EventType = EventType, D = EventPayloads[K]> {
  readonly type: K;
  /** Always a string on the wire (an integer id is sent as its decimal string). */
  readonly bullPenId: string;
  /** The event's number in its room: from 1, one more per event of the room (private events of others leave gaps). */
  readonly seq: number;
  readonly data: D;
}

/** Any of the 14 event frames, discriminated by `type`. */
export type TradeRoomEvent<P extends PayloadMap = EventPayloads> = { [K in EventType]: EventFrame<K, P[K]> }[EventType];

/**
 * The room's state in `subscribed` (docs/protocol.md, "State on subscribe"): each part is `null` until an event of
 * its kind has been published.
 */
export interface RoomSnapshot<P extends PayloadMap = EventPayloads> {
  /** The data of the latest `leaderboard_update` or `snapshot_created`. */
  readonly leaderboard: P["leaderboard_update"] | P["snapshot_created"] | null;
  /** The data of the latest `room_state_changed`, `room_started` or `room_ended`; the server sets `status` after the last two. */
  readonly room:
    | P["room_state_changed"]
    | (P["room_started"] & { readonly status: "active" })
    | (P["room_ended"] & { readonly status: "ended" })
    | null;
  /** The `userId`s of `member_joined` minus those of `member_left`, in join order. */
  readonly members: readonly string[];
}

/** What `onSubscribed` gets after every `subscribed` (the first one and the one after each reconnect). */
export interface SubscribedInfo<P extends PayloadMap = EventPayloads> {
  readonly bullPenId: string;
  /** The room's last seq when the client was added. */
  readonly seq: number;
  readonly epoch: string;
  /** `true`: the missed events follow, nothing to do. `false`: redraw from `state` (the first subscribe is always `false`). */
  readonly recovered: boolean;
  readonly state: RoomSnapshot<P>;
}

// ------------------------------------------------------------------ errors

/** Codes of the server's `error` and `auth_error` frames (docs/protocol.md, "Errors"). */
export type ServerErrorCode =
  | "invalid_json" | "invalid_message" | "unknown_type" | "not_authenticated" | "invalid_room" | "user_mismatch"
  | "too_many_subscriptions" | "room_limit" | "rate_limited" | "forbidden" | "authorization_unavailable"
  | "storage_unavailable" | "room_unavailable"
  | "invalid_token" | "token_expired" | "too_many_connections";

/** Codes of the client's own errors (README.md, "API"). */
export type ClientErrorCode =
  | "transport_error" | "connect_timeout" | "ping_timeout" | "token_error" | "invalid_url" | "invalid_frame"
  | "callback_error" | "no_websocket" | "not_connected" | "closed";

/** Every error the client reports (on `"error"`, in `room.refused`, as a rejection): an `Error` with a `code`. */
export interface TradeRoomError extends Error {
  /** A server or client code; a newer server may send codes not listed here. */
  readonly code: ServerErrorCode | ClientErrorCode | (string & {});
  /** Which frame brought a server error. */
  readonly frame?: "error" | "auth_error";
  /** The room a refused subscribe named. */
  readonly bullPenId?: string;
  /** The close code, when `connect()` rejects because the server closed and the client stops. */
  readonly closeCode?: number;
  /** The URL the WebSocket constructor refused (`invalid_url`). */
  readonly url?: string;
  /** What one of your callbacks threw (`callback_error`). */
  readonly cause?: unknown;
}

// ------------------------------------------------------------------ the client

/** `"idle"` before `connect()`, then `"connecting"`, `"connected"`, `"reconnecting"` and `"closed"` after `close()` or a stop. */
export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export interface StateChange {
  readonly state: ConnectionState;
  /** The reconnect attempt (1, 2, …), 0 when connected. */
  readonly attempt: number;
  /** The backoff before that attempt, in ms. */
  readonly delay: number;
  /** The URL of the connection, or of the attempt about to start. */
  readonly url: string;
  readonly node: string | undefined;
}

/** An `auth_success`: the user and the server node (undefined against a server that does not name it). */
export interface AuthInfo {
  readonly userId: string;
  readonly node: string | undefined;
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  readonly willReconnect: boolean;
  readonly url: string;
  /** The node the connection was on; undefined if it never got `auth_success`. */
  readonly node: string | undefined;
}

/** The client's events and what their listeners get. */
export interface ClientEvents {
  state: StateChange;
  auth: AuthInfo;
  error: TradeRoomError;
  close: CloseInfo;
}

/** Removes a listener; `true` if it was still there. */
export type Remove = () => boolean;

/** A URL string or a `URL` object. */
export type UrlLike = string | { readonly href: string; toString(): string };

/** A JWT, or a (possibly async) function returning one, called on every (re)connect and refresh. */
export type TokenSource = string | (() => string | PromiseLike<string>);

/** What the client needs of a WebSocket: browsers' and Node's `WebSocket`, or e.g. the `ws` package. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ReconnectOptions {
  /** ms; default 500. */
  readonly initialDelay?: number;
  /** ms; default 15000. */
  readonly maxDelay?: number;
  /** default 2. */
  readonly multiplier?: number;
}

export interface RateLimitOptions {
  /** default 15. */
  readonly perSecond?: number;
  /** default 40. */
  readonly burst?: number;
}

export interface CommonOptions {
  readonly token: TokenSource;
  /** default `globalThis.WebSocket`. */
  readonly WebSocket?: WebSocketConstructor;
  /** ms between app-level pings while connected; default 15000, 0: none. */
  readonly pingInterval?: number;
  /** ms without any frame after a ping before the link is taken for dead; default 10000. */
  readonly pingTimeout?: number;
  /** ms from opening to `auth_success`; default 10000. */
  readonly connectTimeout?: number;
  readonly reconnect?: ReconnectOptions;
  readonly rateLimit?: RateLimitOptions;
  /** The jitter's random source, in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** With a token function: refresh this many ms before the token's `exp`; default 30000, `false`: off. */
  readonly refreshBeforeExpiry?: number | false;
}

/** `url` (one server) or `urls` (a cluster's nodes, one more per reconnect), never both. */
export type TradeRoomClientOptions = CommonOptions & (
  | { readonly url: UrlLike; readonly urls?: never }
  | { readonly urls: readonly UrlLike[]; readonly url?: never }
);

export interface RoomHandlers<P extends PayloadMap = EventPayloads> {
  onSubscribed?(info: SubscribedInfo<P>): void;
  /** Every event of the room, once and in order. */
  onEvent?(frame: TradeRoomEvent<P>): void;
}

/** One followed bull pen, made by `client.subscribe()`; keeps its epoch and position across reconnects. */
export declare class Room<P extends PayloadMap = EventPayloads> {
  private constructor();
  readonly bullPenId: string;
  /** The last seq seen; undefined before the first `subscribed`. */
  readonly position: number | undefined;
  /** The epoch from the last `subscribed`; undefined before it. */
  readonly epoch: string | undefined;
  /** Whether the room is subscribed on the current connection. */
  readonly subscribed: boolean;
  /** The server's error if it refused the subscribe (`too_many_subscriptions`, `room_limit`, `forbidden`, …), else null. */
  readonly refused: TradeRoomError | null;
  /** Calls `fn(data, frame)` for every event of this type. */
  on<K extends EventType>(type: K, fn: (data: P[K], frame: EventFrame<K, P[K]>) => void): Remove;
  /** Stops following the room; resolves on the server's `unsubscribed` (or at once when closed or refused). */
  unsubscribe(): Promise<void>;
}

export declare class TradeRoomClient<P extends PayloadMap = EventPayloads> {
  /** @throws TypeError without a token, without a URL, or with both `url` and `urls`. */
  constructor(options: TradeRoomClientOptions);
  readonly state: ConnectionState;
  /** The authenticated user, from the last `auth_success`. */
  readonly userId: string | undefined;
  /** The server node the connection is on (a cluster address, or host:port); undefined while not connected. */
  readonly node: string | undefined;
  /** The URL of the current connection, or of the attempt under way or next. */
  readonly url: string;
  /** A copy of the URLs, in the order they are tried. */
  readonly urls: string[];
  on<E extends keyof ClientEvents>(event: E, fn: (payload: ClientEvents[E]) => void): Remove;
  /** Resolves on the first `auth_success`; rejects (a `TradeRoomError`) only if the client stops first. */
  connect(): Promise<AuthInfo>;
  /** Sends `auth` again: `newToken`, or (with a token function and no argument) a fresh one from it. */
  refreshToken(newToken?: string): Promise<AuthInfo>;
  /** Follows a bull pen (1–128 characters, or an integer); the same `Room` for an id already followed. @throws TypeError for another id. */
  subscribe(bullPenId: string | number, handlers?: RoomHandlers<P>): Room<P>;
  /** The `Room` of a followed bull pen. */
  room(bullPenId: string | number): Room<P> | undefined;
  /** Closes with 1000 and does not reconnect. */
  close(): void;
}

/** The delay before reconnect attempt `attempt` (1 for the first): random(0, min(maxDelay, initialDelay × multiplier^(attempt−1))). */
export declare function backoffDelay(attempt: number, reconnect?: ReconnectOptions, random?: () => number): number;

/** What the client does after a connection ends (README.md, "Reconnect policy"). */
export declare function closePolicy(
  code: number,
  options?: { readonly clientClosed?: boolean; readonly authError?: string | null; readonly tokenIsFunction?: boolean },
): "stop" | "reconnect";
