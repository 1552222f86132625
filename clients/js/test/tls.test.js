// The client over wss:// and https:// against the real server with a self-signed certificate (traderoom.tls).
// Node reads its extra trusted certificates (NODE_EXTRA_CA_CERTS) only at start, so the client runs in a child
// process that trusts the certificate; this process does not, which checks that the certificate is really verified.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startServer, userToken } from "../testkit.js";

const here = new URL(".", import.meta.url);

describe("over TLS", () => {
  let server;
  let certificate;
  let wssUrl;
  let httpsUrl;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "traderoom-js-tls-"));
    certificate = join(dir, "server.crt");
    const key = join(dir, "server.key");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", certificate],
      { stdio: "ignore" });
    server = await startServer({ own: true, hocon: `traderoom.tls { certificate = ${JSON.stringify(certificate)}, key = ${JSON.stringify(key)} }` });
    wssUrl = `wss://127.0.0.1:${server.wsPort}/ws`;
    httpsUrl = `https://127.0.0.1:${server.apiPort}`;
  });
  after(async () => { await server?.stop(); });

  test("clients that trust the certificate receive every event published over https, in order", async () => {
    const script = `
      import { TradeRoomClient } from ${JSON.stringify(new URL("../traderoom-client.js", here).href)};
      import { publish, userToken } from ${JSON.stringify(new URL("../testkit.js", here).href)};
      const received = [[], [], []];
      const clients = received.map((seqs, i) => new TradeRoomClient({ url: ${JSON.stringify(wssUrl)}, token: userToken("tls-" + i) }));
      await Promise.all(clients.map((client, i) => new Promise((resolve) => {
        client.subscribe("tls-pen", { onSubscribed: resolve, onEvent: (frame) => received[i].push(frame.seq) });
        client.connect();
      })));
      const published = [];
      for (let i = 0; i < 5; i++) published.push(await publish({ apiUrl: ${JSON.stringify(httpsUrl)} }, "tls-pen", "ranking_changed", { step: i }));
      const deadline = Date.now() + 10000;
      while (received.some((seqs) => seqs.length < published.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const client of clients) client.close();
      console.log(JSON.stringify({ published, received }));
    `;
    const output = await runNode(script, { NODE_EXTRA_CA_CERTS: certificate });
    const { published, received } = JSON.parse(output.trim().split("\n").at(-1));
    assert.equal(published.length, 5);
    for (const seqs of received) assert.deepEqual(seqs, published);
  });

  test("without trusting the certificate, the https request and the wss connection are refused", async () => {
    await assert.rejects(fetch(`${httpsUrl}/api/health`));
    const ws = new WebSocket(wssUrl + `?token=${userToken("untrusted")}`);
    const outcome = await new Promise((resolve) => {
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("error");
    });
    assert.equal(outcome, "error");
  });
});

/** Runs an ES module in a child node with the given extra environment; resolves with its stdout, rejects on a non-zero exit. */
function runNode(source, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--experimental-websocket", "--input-type=module", "-e", source],
      { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => { out += chunk; });
    child.stderr.on("data", (chunk) => { err += chunk; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`child node exited with ${code}:\n${err}\n${out}`));
    });
  });
}

