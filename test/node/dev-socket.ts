/**
 * Raw HTTP over a loopback socket to the Worker as `npm start` runs it: wrangler's dev server
 * (`unstable_startWorker`: Miniflare, workerd, and wrangler's proxy Worker in front), for the
 * socket tests (test/node/http-socket.test.ts, test/node/refused-body.test.ts). Every exchange is
 * bounded in time; the server is stopped after the file that called `useDevWorker()`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { unstable_startWorker } from "wrangler";

type DevWorker = Awaited<ReturnType<typeof unstable_startWorker>>;

let worker: DevWorker | undefined;
let registry: string | undefined;
let port = 0;

/** Starts the Worker as `npm start` does for the calling test file (stopped after it). */
export function useDevWorker(): void {
  beforeAll(async () => {
    // No `Request.cf` download: the machine has no network, and the tests do not read `cf`.
    process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
    registry = mkdtempSync(path.join(tmpdir(), "edge-inference-registry-"));
    worker = await unstable_startWorker({
      config: "wrangler.toml",
      sendMetrics: false,
      // Auth is not what these tests are about: predict's body handling is reached without a token.
      bindings: {
        ASAP_AUTH: { type: "plain_text", value: "off" },
        LOG_LEVEL: { type: "plain_text", value: "error" },
      },
      dev: {
        server: { hostname: "127.0.0.1", port: 0 },
        inspector: false,
        watch: false,
        persist: false,
        liveReload: false,
        logLevel: "error",
        // A dev registry of its own: the main Worker's BYOM service binding (uploaded models, which
        // these tests do not use) resolves through it instead of failing the runtime's start.
        registry,
      },
    });
    await worker.ready;
    port = Number((await worker.url).port);
  });

  afterAll(async () => {
    await worker?.dispose();
    if (registry) rmSync(registry, { recursive: true, force: true });
  });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Why the exchange ended: a complete response, the server closing, or our time limit. */
  end: "complete" | "closed" | "timeout";
}

/**
 * Sends `head` (and whatever `send` writes) on a new connection; resolves with the first response,
 * or with status 0 after `timeoutMs`. The socket is always destroyed at the end.
 */
export function exchange(
  head: string,
  send?: (socket: net.Socket) => void,
  timeoutMs = 10_000,
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (end: RawResponse["end"]) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parse(data.toString("latin1")), end });
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      const parsed = parse(data.toString("latin1"));
      const length = Number(parsed.headers["content-length"] ?? Number.NaN);
      if (parsed.status > 0 && Number.isFinite(length) && Buffer.byteLength(parsed.body) >= length) {
        finish("complete");
      }
    });
    socket.on("error", () => finish("closed"));
    socket.on("close", () => finish("closed"));
    socket.write(head);
    send?.(socket);
  });
}

export function parse(text: string): Omit<RawResponse, "end"> {
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) return { status: 0, headers: {}, body: "" };
  const [statusLine = "", ...lines] = text.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body: text.slice(split + 4) };
}

export const PREDICT =
  "POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";

/** A small POST on a new connection that the Worker itself answers (400 invalid_json). */
export async function expectWorkerAnswersPost(): Promise<void> {
  const res = await exchange(`${PREDICT}Content-Length: 3\r\nConnection: close\r\n\r\n{x}`);
  expect(res.status, res.body).toBe(400);
  expect(JSON.parse(res.body).code).toBe("invalid_json");
}

/** Writes 64 KiB chunks of a chunked body, `count` of them, then the last chunk (unless cut off). */
export function chunked(count: number) {
  const chunk = `${(64 * 1024).toString(16)}\r\n${"a".repeat(64 * 1024)}\r\n`;
  return (socket: net.Socket) => {
    let sent = 0;
    const write = () => {
      while (!socket.destroyed && sent < count) {
        sent++;
        if (!socket.write(chunk)) return void socket.once("drain", write);
      }
      if (!socket.destroyed) socket.write("0\r\n\r\n");
    };
    socket.on("error", () => undefined);
    write();
  };
}
