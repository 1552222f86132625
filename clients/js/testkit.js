// Test kit for test/*.test.js: the real server as a child process, HS256 tokens, HTTP publishing, a cuttable TCP proxy.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Against a server you run yourself: TRADEROOM_WS_URL (e.g. ws://localhost:4001/ws), TRADEROOM_API_URL
 * (http://localhost:4000) and TRADEROOM_JWT_SECRET (default: the server's development secret). Room ids then get a
 * suffix unique to the run, and the tests that need a server of their own (restart, settings) are skipped.
 */
export const EXTERNAL = process.env.TRADEROOM_WS_URL
  ? { wsUrl: process.env.TRADEROOM_WS_URL, apiUrl: process.env.TRADEROOM_API_URL ?? "http://localhost:4000" }
  : null;

export const SECRET = EXTERNAL
  ? process.env.TRADEROOM_JWT_SECRET ?? "traderoom-development-secret-not-for-production"
  : "js-client-test-secret-of-at-least-32-bytes";

const RUN = EXTERNAL ? `-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}` : "";

/** A room id of this test run (the name itself unless the tests use a server that outlives them). */
export const R = (name) => `${name}${RUN}`;

const here = dirname(fileURLToPath(import.meta.url));

/** The server DLL: $TRADEROOM_SERVER_DLL, else the Debug build beside the sources. */
export function serverDll() {
  const dll = process.env.TRADEROOM_SERVER_DLL
    ?? resolve(here, "../../src/TradeRoom.Server/bin/Debug/net10.0/TradeRoom.Server.dll");
  if (!existsSync(dll)) {
    throw new Error(`server DLL not found at ${dll}: run \`dotnet build TradeRoom.Actors.sln\` or set TRADEROOM_SERVER_DLL`);
  }
  return dll;
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/**
 * Starts the real server on free ports (or the given ones). `hocon` is written to a TRADEROOM_CONFIG file.
 * Each server keeps its rooms in a SQLite file of its own, unless `database` names one (a restarted server's,
 * `server.database`, to start again where it stopped).
 * Returns { wsUrl, apiUrl, wsHost, wsPort, apiPort, node, database, stop(), output() }, where `node` is how its
 * auth_success names it (undefined for a server you run yourself). With TRADEROOM_WS_URL set (and no `own: true`),
 * returns that server instead, and stop() leaves it running.
 */
export async function startServer({ wsPort, apiPort, hocon, database, own = false } = {}) {
  if (EXTERNAL && !own && !hocon) {
    const url = new URL(EXTERNAL.wsUrl);
    return { ...EXTERNAL, wsHost: url.hostname, wsPort: Number(url.port || 80), output: () => "", stop: async () => {} };
  }
  // A free port can be taken by another process before the server binds it (the machine is shared): pick new ones.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOn({ wsPort: wsPort ?? await freePort(), apiPort: apiPort ?? await freePort(), hocon, database });
    } catch (e) {
      const portsPicked = wsPort === undefined || apiPort === undefined;
      if (!(portsPicked && attempt < 3 && /address already in use/i.test(e.message))) throw e;
    }
  }
}

async function startServerOn({ wsPort, apiPort, hocon, database }) {
  const dll = serverDll();
  const env = { ...process.env };
  for (const name of ["TRADEROOM_CONFIG", "ASPNETCORE_URLS", "ASPNETCORE_HTTP_PORTS", "ASPNETCORE_HTTPS_PORTS", "DOTNET_ENVIRONMENT",
    "TRADEROOM_PERSISTENCE", "TRADEROOM_DB", "TRADEROOM_DB_FILE"]) delete env[name];
  database ??= join(mkdtempSync(join(tmpdir(), "traderoom-js-db-")), "traderoom.db");
  Object.assign(env, {
    TRADEROOM_DB_FILE: database,
    ASPNETCORE_ENVIRONMENT: "Testing",
    JWT_SECRET: SECRET,
    WS_PORT: String(wsPort),
    API_PORT: String(apiPort),
    BIND_ADDRESS: "127.0.0.1",
  });
  if (hocon) {
    const file = join(mkdtempSync(join(tmpdir(), "traderoom-js-")), "test.conf");
    writeFileSync(file, hocon);
    env.TRADEROOM_CONFIG = file;
  }
  const child = spawn("dotnet", [dll], { cwd: dirname(dll), env, stdio: ["ignore", "pipe", "pipe"] });
  // Never leave a server behind, even when a test file crashes before its after() hooks.
  const reap = () => child.kill("SIGKILL");
  process.on("exit", reap);
  child.on("exit", () => process.off("exit", reap));
  let output = "";
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
  await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start within 30 s:\n${output}`)), 30000);
    child.stdout.on("data", (chunk) => {
      output += chunk;
      if (output.includes("TradeRoom listening")) {
        clearTimeout(timer);
        res();
      }
    });
    child.stderr.on("data", (chunk) => { output += chunk; });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`server exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
  return {
    wsHost: "127.0.0.1",
    wsPort,
    apiPort,
    wsUrl: `ws://127.0.0.1:${wsPort}/ws`,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    node: `127.0.0.1:${wsPort}`, // a single server names itself by its bind address and WebSocket port
    database,
    output: () => output,
    /** SIGTERM (graceful: sockets get 1001), then SIGKILL after 10 s. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(killer);
    },
  };
}

// ---------------------------------------------------------------- tokens

const b64url = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** An HS256 JWT; `claims` are merged over iat/exp (lifetime in seconds). */
export function sign(claims, { secret = SECRET, lifetime = 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ iat: now, exp: now + lifetime, ...claims })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

export const userToken = (userId, options) => sign({ userId, sub: userId }, options);
export const serviceToken = () => sign({ userId: "js-tests", sub: "js-tests", role: "service" });

// ---------------------------------------------------------------- publishing

export async function publish(server, bullPenId, type, data = {}) {
  const response = await fetch(`${server.apiUrl}/api/rooms/${encodeURIComponent(bullPenId)}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${serviceToken()}`, "content-type": "application/json" },
    body: JSON.stringify({ type, data }),
  });
  const body = await response.json();
  if (response.status !== 202) throw new Error(`publish answered ${response.status}: ${JSON.stringify(body)}`);
  return body.seq;
}

export async function publishBatch(server, events) {
  const response = await fetch(`${server.apiUrl}/api/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${serviceToken()}`, "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  const body = await response.json();
  if (response.status !== 202) throw new Error(`publish answered ${response.status}: ${JSON.stringify(body)}`);
  return body.seqs;
}

// ---------------------------------------------------------------- a TCP proxy that can cut or black-hole links

/**
 * Forwards 127.0.0.1:<port> to the target port. kill() destroys every open link; blackhole() stops forwarding on
 * every open link but keeps the sockets open (a dead link only an application ping can notice); `mode` decides
 * what happens to new links; cutWhen(marker) cuts a link when the server sends something; onAccept(fn) sees each
 * new link. Without a target port (a server that is not started yet) new links are refused until `target` is set.
 */
export async function startProxy(targetPort, targetHost = "127.0.0.1") {
  const links = new Set();
  const acceptHooks = new Set();
  const cuts = [];
  let accepted = 0;
  let mode = "forward";
  const server = net.createServer((client) => {
    accepted++;
    if (mode === "refuse" || targetPort === undefined) {
      // What a load balancer in front of a stopped server answers.
      client.on("error", () => {});
      client.once("data", () => client.end("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const link = { client, upstream, holed: mode === "blackhole" };
    links.add(link);
    client.on("data", (chunk) => { if (!link.holed) upstream.write(chunk); });
    upstream.on("data", (chunk) => {
      if (link.holed) return;
      client.write(chunk);
      // Server frames are not masked: their JSON is readable in the stream.
      const text = chunk.toString("latin1");
      for (const cut of cuts) {
        if (cut.count > 0 && text.includes(cut.marker)) {
          cut.count--;
          // Deliver what was forwarded, then close both sides without a WebSocket close frame.
          link.cut = true;
          link.holed = true;
          client.end();
          upstream.destroy();
          break;
        }
      }
    });
    const end = () => {
      links.delete(link);
      if (link.cut) client.end();
      else client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", () => {});
    upstream.on("error", () => {});
    for (const hook of acceptHooks) hook(link);
  });
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  const port = server.address().port;
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    get accepted() { return accepted; },
    get open() { return links.size; },
    kill() {
      for (const link of [...links]) {
        link.client.destroy();
        link.upstream.destroy();
      }
    },
    blackhole() {
      for (const link of links) link.holed = true;
    },
    /** The server port new links go to. */
    set target(port) { targetPort = port; },
    /** "forward" (default), "refuse" (new links get HTTP 503) or "blackhole" (new links forward nothing). */
    set mode(value) { mode = value; },
    get mode() { return mode; },
    /** Cuts the next `count` links on which the server sends a chunk containing `marker` (after forwarding it). */
    cutWhen(marker, count = 1) {
      const cut = { marker, count };
      cuts.push(cut);
      return cut;
    },
    /** Back to forwarding everything: mode "forward", no planned cuts. */
    reset() {
      mode = "forward";
      cuts.length = 0;
    },
    onAccept(fn) {
      acceptHooks.add(fn);
      return () => acceptHooks.delete(fn);
    },
    close() {
      this.kill();
      return new Promise((res) => server.close(() => res()));
    },
  };
}

// ---------------------------------------------------------------- waiting

/** Resolves with the first value of `emitter.on(event)` that `match` accepts, or rejects after `timeout` ms. */
export function once(emitter, event, match = () => true, timeout = 10000) {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => { off(); rej(new Error(`no "${event}" within ${timeout} ms`)); }, timeout);
    const off = emitter.on(event, (value) => {
      if (!match(value)) return;
      clearTimeout(timer);
      off();
      res(value);
    });
  });
}

/** Polls `condition` until true, or rejects after `timeout` ms with `what`. */
export async function until(condition, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
