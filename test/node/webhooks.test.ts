/**
 * Signed webhooks end to end: the deployable bundle in workerd POSTs to a receiver on a local port
 * (dev allows loopback http; the allow-list names the receiver), and each delivery is verified with
 * the `standardwebhooks` library, as a receiver would. Retries go through the real queue with
 * backoff (WEBHOOK_RETRY_BASE_SECONDS=1); deliveries are visible through the API.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import type { Miniflare } from "miniflare";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putShippedModels } from "../../scripts/local-r2";
import { build, root, startWorker } from "../../scripts/local-worker";

const ISSUER = "webhook-tests";
const SECRET = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let worker: { mf: Miniflare; url: string };
let receiver: http.Server;
let hooks: string;
const received: Received[] = [];
/** Answers per path: the next status to send (default 200). */
const plan = new Map<string, number[]>();
let token: () => Promise<string>;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "";
      received.push({ path: url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      const status = plan.get(url)?.shift() ?? 200;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  hooks = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  const bundle = await build(path.join(root, "dist", "test-node-webhooks"));
  worker = await startWorker(bundle, {
    LOG_LEVEL: "error",
    REQUEST_LOG: "off",
    WEBHOOK_DESTINATIONS: JSON.stringify({ [ISSUER]: [hooks] }),
    WEBHOOK_SECRETS: JSON.stringify({ [ISSUER]: SECRET }),
    WEBHOOK_RETRY_BASE_SECONDS: "1",
    WEBHOOK_MAX_ATTEMPTS: "3",
  });
  const bucket = await worker.mf.getR2Bucket("MODELS");
  await putShippedModels(bucket);
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = `${ISSUER}/${crypto.randomUUID()}`;
  await bucket.put(`asap-keys/${kid}`, await exportSPKI(publicKey));
  token = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer(ISSUER)
      .setSubject(ISSUER)
      .setAudience("edge-inference")
      .setIssuedAt()
      .setExpirationTime("60s")
      .setJti(crypto.randomUUID())
      .sign(privateKey);
}, 300_000);

afterAll(async () => {
  await worker?.mf.dispose();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** `method urlPath` as the test issuer; the JSON answer, loosely typed (the assertions check it). */
// biome-ignore lint/suspicious/noExplicitAny: test answers are checked by assertions, not types
async function call(method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(new URL(urlPath, worker.url), {
    method,
    headers: { authorization: `Bearer ${await token()}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Verifies a received delivery with the library and returns its payload. */
function verified(delivery: Received): unknown {
  const headers = Object.fromEntries(
    ["webhook-id", "webhook-timestamp", "webhook-signature"].map((h) => [h, String(delivery.headers[h])]),
  );
  return new Webhook(SECRET).verify(delivery.body, headers);
}

describe("signed webhooks", () => {
  it("an async prediction's result is POSTed, signed, with the body GET returns", async () => {
    const submitted = await call("POST", "/api/v1/predictions", {
      texts: ["win a free prize now", "see you at lunch"],
      model: "spam",
      callback_url: `${hooks}/predictions`,
    });
    expect(submitted.status).toBe(202);
    const delivery = await until(() => received.find((r) => r.path === "/hooks/predictions"));
    const payload = verified(delivery) as { id: string; status: string };
    expect(payload.id).toBe(submitted.json.id);
    expect(payload.status).toBe("done");
    expect(payload).toEqual((await call("GET", `/api/v1/predictions/${submitted.json.id}`)).json);
    expect(delivery.headers["webhook-id"]).toBe(`msg_${submitted.json.id}`);
    // A tampered body or another secret fails verification (the check can fail).
    expect(() => verified({ ...delivery, body: delivery.body.replace("done", "dona") })).toThrow();
    const other = `whsec_${Buffer.from(new Uint8Array(32).fill(1)).toString("base64")}`;
    expect(() =>
      new Webhook(other).verify(delivery.body, {
        "webhook-id": String(delivery.headers["webhook-id"]),
        "webhook-timestamp": String(delivery.headers["webhook-timestamp"]),
        "webhook-signature": String(delivery.headers["webhook-signature"]),
      }),
    ).toThrow();
    const shown = await until(async () => {
      const got = await call("GET", `/api/v1/webhooks/deliveries/msg_${submitted.json.id}`);
      return got.json.status === "delivered" ? got.json : undefined;
    });
    expect(shown).toMatchObject({ attempts: 1, last_status: 200, subject: { kind: "prediction" } });
  });

  it("a failed delivery is retried with backoff under the same webhook-id, then delivered", async () => {
    plan.set("/hooks/flaky", [503, 500]);
    const submitted = await call("POST", "/api/v1/predictions", {
      text: "hello there",
      callback_url: `${hooks}/flaky`,
    });
    const deliveries = await until(() => {
      const got = received.filter((r) => r.path === "/hooks/flaky");
      return got.length >= 3 ? got : undefined;
    });
    expect(new Set(deliveries.map((d) => d.headers["webhook-id"]))).toEqual(
      new Set([`msg_${submitted.json.id}`]),
    );
    for (const d of deliveries) expect((verified(d) as { status: string }).status).toBe("done");
    const times = deliveries.map((d) => Number(d.headers["webhook-timestamp"]));
    // Backoff: 1 s, then 2 s (whole-second timestamps).
    expect((times[2] as number) - (times[0] as number)).toBeGreaterThanOrEqual(2);
    const shown = await until(async () => {
      const got = await call("GET", `/api/v1/webhooks/deliveries?subject=${submitted.json.id}`);
      return got.json.deliveries[0]?.status === "delivered" ? got.json.deliveries[0] : undefined;
    });
    expect(shown).toMatchObject({ attempts: 3, last_status: 200, last_error: null });
  });

  it("a receiver that never answers 2xx gets WEBHOOK_MAX_ATTEMPTS attempts, then the delivery is failed", async () => {
    plan.set("/hooks/down", [500, 500, 500, 500]);
    const submitted = await call("POST", "/api/v1/predictions", { text: "x", callback_url: `${hooks}/down` });
    const shown = await until(async () => {
      const got = await call("GET", `/api/v1/webhooks/deliveries/msg_${submitted.json.id}`);
      return got.json.status === "failed" ? got.json : undefined;
    });
    expect(shown).toMatchObject({ attempts: 3, last_status: 500, last_error: "answered 500" });
    expect(received.filter((r) => r.path === "/hooks/down")).toHaveLength(3);
  });

  it("a training job's outcome is delivered too; destinations outside the allow-list are refused", async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({
      text: i % 2 ? `buy cheap pills now ${i}` : `see you at lunch ${i}`,
      label: i % 2 ? "loud" : "calm",
    }));
    const job = await call("POST", "/api/v1/models", {
      id: "webhook-job",
      task: "binary",
      dataset: { rows },
      text_field: "text",
      label_field: "label",
      callback_url: `${hooks}/jobs`,
    });
    expect(job.status).toBe(202);
    const delivery = await until(() => received.find((r) => r.path === "/hooks/jobs"), 120_000);
    const payload = verified(delivery) as { id: string; status: string };
    expect(payload.id).toBe(job.json.job_id);
    expect(payload.status).toBe("succeeded");
    expect(payload).toEqual((await call("GET", `/api/v1/jobs/${job.json.job_id}`)).json);

    const elsewhere = await call("POST", "/api/v1/predictions", {
      text: "x",
      callback_url: "http://127.0.0.1:1/elsewhere",
    });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.json.code).toBe("callback_not_allowed");
  });
});
