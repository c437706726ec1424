/**
 * Refused bodies over real sockets (#26): after a body the Worker refuses — declared
 * `Content-Length` over the limit and sent in full, sent in part, or chunked — on every
 * body-reading route, the next requests (new connections, as other clients make them) still reach
 * the Worker. Raw HTTP over a loopback socket to the Worker as `npm start` runs it
 * (test/node/dev-socket.ts).
 */
import type net from "node:net";
import { describe, expect, it } from "vitest";
import { chunked, exchange, expectWorkerAnswersPost, type RawResponse, useDevWorker } from "./dev-socket";

useDevWorker();

/** A body of `bytes` bytes of JSON-ish filler, written in 64 KiB pieces with back-pressure. */
function sized(bytes: number) {
  return (socket: net.Socket) => {
    const piece = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const write = () => {
      while (!socket.destroyed && sent < bytes) {
        const n = Math.min(piece.length, bytes - sent);
        sent += n;
        if (!socket.write(n === piece.length ? piece : piece.subarray(0, n)))
          return void socket.once("drain", write);
      }
    };
    socket.on("error", () => undefined);
    write();
  };
}

const MiB = 1024 * 1024;

/** The Worker's answer to a GET whose body the runtime handed over as empty. */
function expectEmptyGetBody(res: RawResponse): void {
  expect(res.status, res.body).toBe(400);
  expect(JSON.parse(res.body)).toMatchObject({ code: "invalid_json", detail: "request body is empty" });
}
const routes = [
  ["POST", "/api/v1/predict"],
  ["POST", "/v2/models/toxicity/infer"],
  ["GET", "/prediction"],
  ["POST", "/api/v1/predictions"],
] as const;

describe("a refused body never breaks the next request (wrangler dev, as `npm start`)", () => {
  for (const [method, path] of routes) {
    it(`${method} ${path}: declared 2 MiB, sent in full → 413; the next requests reach the Worker`, async () => {
      const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`;
      const res = await exchange(`${head}Content-Length: ${2 * MiB}\r\n\r\n`, sized(2 * MiB));
      expect(res.end).not.toBe("timeout");
      expect(res.status, res.body).toBe(413);
      for (let i = 0; i < 3; i++) await expectWorkerAnswersPost();
    });

    it(`${method} ${path}: chunked 5 MiB → 413; the next requests reach the Worker`, async () => {
      const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`;
      const res = await exchange(`${head}Transfer-Encoding: chunked\r\n\r\n`, chunked(80));
      expect(res.end).not.toBe("timeout");
      if (method === "GET") {
        // workerd 1.20261123 (pinned in package.json) hands a GET's chunked body to the Worker
        // as empty: the Worker answers the empty body's 400 at once, and workerd then closes the
        // connection while the client is still sending; past ~2 MiB still in flight, the close
        // often resets the socket before the client has read that answer (at 5 MiB the client read
        // it in 32 and 37 of 60 tries, two runs). The 256 KiB case below always gets its answer.
        if (res.status !== 0 || res.end !== "closed") expectEmptyGetBody(res);
      } else expect(res.status, res.body).toBe(413);
      for (let i = 0; i < 3; i++) await expectWorkerAnswersPost();
    });
  }

  it("GET /prediction: a 256 KiB chunked body reaches the Worker empty → its 400, read by the client", async () => {
    const head =
      "GET /prediction HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    const res = await exchange(head, chunked(4));
    expect(res.end).toBe("complete");
    expectEmptyGetBody(res);
    for (let i = 0; i < 3; i++) await expectWorkerAnswersPost();
  });

  it("PUT /api/v1/datasets: a declared length over MAX_DATASET_BYTES → 413 at once, before the body", async () => {
    const head = "PUT /api/v1/datasets/refused.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n";
    // 17e6 declared, 10 bytes sent: the answer must not wait for the rest.
    const res = await exchange(`${head}Content-Length: 17000000\r\n\r\ntext,label\n`, undefined, 15_000);
    expect(res.end).not.toBe("timeout");
    expect(res.status, res.body).toBe(413);
    expect(JSON.parse(res.body).code).toBe("dataset_too_large");
    for (let i = 0; i < 3; i++) await expectWorkerAnswersPost();
  });

  it("a body declared over the drain bound (32 MiB), sent in full: cut at once; the next requests reach the Worker", async () => {
    const head =
      "PUT /api/v1/datasets/refused2.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n";
    const res = await exchange(`${head}Content-Length: ${32 * MiB}\r\n\r\n`, sized(32 * MiB), 30_000);
    expect(res.end).not.toBe("timeout");
    // The Worker answers 413 at once; wrangler's proxy, whose upload of the rest is cut, may
    // answer this one request with its own 503 instead, or close the connection before our client
    // has read the answer (docs/api.md "HTTP behaviour"). What matters is the next requests.
    if (res.end !== "closed" || res.status !== 0) expect([413, 503]).toContain(res.status);
    for (let i = 0; i < 3; i++) await expectWorkerAnswersPost();
  });
});
