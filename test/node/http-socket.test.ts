/**
 * Raw HTTP over a loopback socket to the Worker as `npm start` runs it: wrangler's dev server
 * (`unstable_startWorker`: Miniflare, workerd, and wrangler's proxy Worker in front). Shows what
 * only a real connection shows: a refused body must not break later requests, a declared length
 * over the limit is refused without waiting for the body, and what workerd itself does with an
 * invalid `Content-Length` before the Worker runs. Every exchange is bounded in time; the server
 * is stopped after the file.
 */
import { describe, expect, it } from "vitest";
import { chunked, exchange, expectWorkerAnswersPost, PREDICT, useDevWorker } from "./dev-socket";

useDevWorker();

describe("over a real connection (wrangler dev, as `npm start`)", () => {
  it("a chunked body over the limit → 413, and the next POSTs still reach the Worker", async () => {
    const refused = await exchange(`${PREDICT}Transfer-Encoding: chunked\r\n\r\n`, chunked(80)); // 5 MiB
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body).code).toBe("payload_too_large");
    // Before: 503 "Your worker restarted mid-request" from wrangler's proxy, the Worker never ran.
    for (let i = 0; i < 3; i++) await expectWorkerAnswersPost();
  });

  it("a declared Content-Length of 2 GiB → 413 while the client has sent 9 bytes of it", async () => {
    // Before: wrangler dev's body-draining middleware waited for the 2 GiB that never came.
    const res = await exchange(`${PREDICT}Content-Length: 2147483648\r\n\r\n{"text":"`);
    expect(res.end).not.toBe("timeout");
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).code).toBe("payload_too_large");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    await expectWorkerAnswersPost();
  });

  for (const bad of ["-1", "abc"]) {
    it(`Content-Length '${bad}' is refused by workerd before the Worker runs; later requests are fine`, async () => {
      const res = await exchange(`${PREDICT}Content-Length: ${bad}\r\n\r\n{}`);
      // workerd's HTTP parser answers a bare 400 (a 500 before workerd 1.20261123, the one
      // package.json pins) and closes; the Worker (and its 400 invalid_content_length) never sees
      // the request: no request id. Cloudflare's edge refuses it too.
      expect(res.status).toBe(400);
      expect(res.headers["x-request-id"]).toBeUndefined();
      expect(res.headers.connection).toBe("close");
      await expectWorkerAnswersPost();
    });
  }
});
