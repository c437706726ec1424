import {
  abortAllDurableObjects,
  createExecutionContext,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CallEvent } from "../durable-objects/stats-shard";
import worker from "../src/index";
import { binUpperMs, latencyBin, percentiles } from "../src/metering/latency";
import { readApiStatistics } from "../src/metering/stats";
import { ROUTES } from "../src/router";
import { problem, testToken } from "./helpers";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const SHARDS = Number(env.STATS_SHARDS);

const shard = (name: string) => env.STATS_SHARD.get(env.STATS_SHARD.idFromName(name));
/** Delivers `events` to shard `name` as one new batch. */
const record = (name: string, ...events: CallEvent[]) =>
  shard(name).recordBatch({ id: crypto.randomUUID(), events });
const event = (at: number, status = 200, latencyMs = 10, caller = "svc-a"): CallEvent => ({
  at,
  status,
  latencyMs,
  caller,
});
const total = (series: number[]) => series.reduce((a, b) => a + b, 0);

/** A request as the Worker's fetch handler receives it. */
const request = (path: string, init: RequestInit = {}) =>
  new Request(`http://edge.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>;

/** Calls the real Worker as the default test issuer, letting the test await its `waitUntil` work. */
async function call(path: string) {
  const ctx = createExecutionContext();
  const init = { headers: { authorization: `Bearer ${await testToken()}` } };
  const res = await worker.fetch(request(path, init), env, ctx);
  return { res, ctx };
}

describe("statistics shards (injected clock)", () => {
  // An hour boundary in the future: the real clock never prunes these buckets mid-test.
  const t0 = Math.ceil(Date.now() / HOUR) * HOUR + HOUR;

  it("rolls seconds, minutes and hours over on UTC boundaries and sums over shards", async () => {
    await record("rollover:0", event(t0 - 1500, 200, 10, "svc-a"));
    await record("rollover:1", event(t0 - 200, 500, 30, "svc-b"));
    await record("rollover:1", event(t0 + 100, 404, 20, "svc-a"));

    const before = await readApiStatistics(env, "rollover", 2, t0 - 1);
    expect(before["number of calls in current minute"]).toBe(2);
    expect(before.per_second.slice(-3)).toEqual([0, 1, 1]);
    expect(before.per_minute.at(-1)).toBe(2);
    expect(before.per_hour.at(-1)).toBe(2);
    expect(before.callers_current_minute).toEqual([
      { caller: "svc-a", calls: 1 },
      { caller: "svc-b", calls: 1 },
    ]);

    const after = await readApiStatistics(env, "rollover", 2, t0 + 500);
    expect(after.per_second).toHaveLength(60);
    expect(after.per_minute).toHaveLength(60);
    expect(after.per_hour).toHaveLength(24);
    expect(after["number of calls in current minute"]).toBe(1);
    expect(after.per_second.slice(-3)).toEqual([1, 1, 1]);
    expect(after.per_minute.slice(-2)).toEqual([2, 1]);
    expect(after.per_hour.slice(-2)).toEqual([2, 1]);
    expect(after.status).toEqual({ "2xx": 1, "3xx": 0, "4xx": 1, "5xx": 1 });
    expect(after.avg_latency_ms).toBe(20);
    expect(after.callers_current_minute).toEqual([{ caller: "svc-a", calls: 1 }]);

    const nextMinute = await readApiStatistics(env, "rollover", 2, t0 + MINUTE + 500);
    expect(nextMinute["number of calls in current minute"]).toBe(0);
    expect(total(nextMinute.per_second)).toBe(0);
    expect(nextMinute.per_minute.slice(-3)).toEqual([2, 1, 0]);
    expect(nextMinute.callers_current_minute).toEqual([]);

    // 23 h later t0's hour is the oldest of the 24 hourly buckets; the hour before it has left.
    const dayLater = await readApiStatistics(env, "rollover", 2, t0 + 23 * HOUR + 1);
    expect(dayLater.per_hour.slice(0, 2)).toEqual([1, 0]);
    expect(total(dayLater.per_hour)).toBe(1);
    expect(dayLater.status).toEqual({ "2xx": 0, "3xx": 0, "4xx": 1, "5xx": 0 });
  });

  it("counts a retried delivery of the same batch once", async () => {
    const batch = { id: crypto.randomUUID(), events: [event(t0), event(t0 + 10, 500, 30, "svc-b")] };
    expect(await shard("dedup:0").recordBatch(batch)).toBe(true);
    expect(await shard("dedup:0").recordBatch(batch)).toBe(false);
    const stats = await readApiStatistics(env, "dedup", 1, t0 + 10);
    expect(stats["number of calls in current minute"]).toBe(2);
    expect(stats.status).toMatchObject({ "2xx": 1, "5xx": 1 });
    expect(stats.avg_latency_ms).toBe(20);
  });

  it("sums a batch's events into their buckets", async () => {
    await record(
      "sums:0",
      event(t0, 200, 10, "svc-a"),
      event(t0 + 1500, 200, 20, "svc-a"),
      event(t0, 404, 30, "svc-b"),
    );
    const stats = await readApiStatistics(env, "sums", 1, t0 + 1500);
    expect(stats.per_second.slice(-2)).toEqual([2, 1]);
    expect(stats.per_minute.at(-1)).toBe(3);
    expect(stats.status).toMatchObject({ "2xx": 2, "4xx": 1 });
    expect(stats.avg_latency_ms).toBe(20);
    expect(stats.callers_current_minute).toEqual([
      { caller: "svc-a", calls: 2 },
      { caller: "svc-b", calls: 1 },
    ]);
  });

  it("keeps counts across a fresh object instance", async () => {
    const stub = shard("persist:0");
    await stub.recordBatch({ id: crypto.randomUUID(), events: [event(t0, 201)] });
    await stub.recordBatch({ id: crypto.randomUUID(), events: [event(t0, 503)] });
    await runInDurableObject(stub, (instance) => {
      Object.assign(instance, { marker: true });
    });
    await abortAllDurableObjects();
    const fresh = shard("persist:0");
    expect(await runInDurableObject(fresh, (instance) => "marker" in instance)).toBe(false);
    const stats = await readApiStatistics(env, "persist", 1, t0);
    expect(stats["number of calls in current minute"]).toBe(2);
    expect(stats.status).toMatchObject({ "2xx": 1, "5xx": 1 });
  });

  it("prunes old buckets in the alarm and keeps recent ones", async () => {
    const stub = shard("prune:0");
    const old = Date.now() - 3 * 24 * HOUR;
    await stub.recordBatch({ id: crypto.randomUUID(), events: [event(old)] });
    await stub.recordBatch({ id: crypto.randomUUID(), events: [event(old + 1000)] });
    await stub.recordBatch({ id: crypto.randomUUID(), events: [event(t0)] });
    expect(total((await readApiStatistics(env, "prune", 1, old + 1000)).per_second)).toBe(2);

    expect(await runDurableObjectAlarm(stub)).toBe(true);

    expect(total((await readApiStatistics(env, "prune", 1, old + 1000)).per_hour)).toBe(0);
    const rows = await runInDurableObject(stub, (_, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM buckets WHERE start < ?", t0).one(),
    );
    expect(rows.n).toBe(0);
    expect((await readApiStatistics(env, "prune", 1, t0))["number of calls in current minute"]).toBe(1);
    // Data remains, so the alarm re-armed itself.
    expect(await runInDurableObject(stub, (_, state) => state.storage.getAlarm())).not.toBeNull();
  });
});

describe("counting through the Worker", () => {
  it("counts 1,000 concurrent requests exactly once each (batched per isolate)", async () => {
    const shardTotals = () =>
      Promise.all(
        Array.from({ length: SHARDS }, async (_, i) => {
          const snap = await shard(`health:${i}`).read(Date.now());
          return total(snap.perHour);
        }),
      );
    const before = await shardTotals();
    const ctx = createExecutionContext();
    const responses = await Promise.all(
      Array.from({ length: 1000 }, () => worker.fetch(request("/api/v1/health"), env, ctx)),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    await waitOnExecutionContext(ctx);
    const after = await shardTotals();
    const added = after.map((n, i) => n - (before[i] ?? 0));
    expect(total(added)).toBe(1000);
  });

  it("spreads successive batches over the shards", async () => {
    const before = await Promise.all(
      Array.from({ length: SHARDS }, async (_, i) =>
        total((await shard(`health:${i}`).read(Date.now())).perHour),
      ),
    );
    for (let i = 0; i < 40; i++) {
      const ctx = createExecutionContext();
      expect((await worker.fetch(request("/api/v1/health"), env, ctx)).status).toBe(200);
      await waitOnExecutionContext(ctx); // one request, one batch, one random shard
    }
    const after = await Promise.all(
      Array.from({ length: SHARDS }, async (_, i) =>
        total((await shard(`health:${i}`).read(Date.now())).perHour),
      ),
    );
    const added = after.map((n, i) => n - (before[i] ?? 0));
    expect(total(added)).toBe(40);
    expect(added.every((n) => n > 0)).toBe(true); // fails with chance 4 × (3/4)^40 ≈ 4e-5
  });

  it("counts unmatched routes as `unknown`, with status class and caller", async () => {
    for (;;) {
      const start = Date.now();
      // Unauthenticated, so the caller is the fallback identity: the client IP (trusted when
      // TRUST_CF_CONNECTING_IP is on, as behind Cloudflare's edge).
      const ctx = createExecutionContext();
      const init = { headers: { "cf-connecting-ip": "203.0.113.9" } };
      const res = await worker.fetch(
        request("/api/v1/nope", init),
        { ...env, TRUST_CF_CONNECTING_IP: "on" },
        ctx,
      );
      expect(res.status).toBe(404);
      await waitOnExecutionContext(ctx);
      const end = Date.now();
      if (Math.floor(start / MINUTE) !== Math.floor(end / MINUTE)) continue; // straddled a minute
      const stats = await readApiStatistics(env, "unknown", SHARDS, end);
      expect(stats.status["4xx"]).toBeGreaterThanOrEqual(1);
      expect(stats.callers_current_minute).toContainEqual({ caller: "203.0.113.9", calls: 1 });
      return;
    }
  });
});

describe("GET /api/v1/statistics", () => {
  it("?api=health has the seed's shape plus series, status classes and latency", async () => {
    const { res, ctx } = await call("/api/v1/statistics?api=health");
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-policy")).toMatch(/^"statistics";q=\d+;w=\d+$/);
    expect(res.headers.get("ratelimit")).toMatch(/^"statistics";r=\d+;t=\d+$/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.api).toBe("health");
    expect(typeof body["number of calls in current minute"]).toBe("number");
    expect(body.per_second).toHaveLength(60);
    expect(body.per_minute).toHaveLength(60);
    expect(body.per_hour).toHaveLength(24);
    expect(Object.keys(body.status as object)).toEqual(["2xx", "3xx", "4xx", "5xx"]);
    expect(body).toHaveProperty("avg_latency_ms");
    expect(Array.isArray(body.callers_current_minute)).toBe(true);
  });

  it("without ?api lists every API, including unmatched requests", async () => {
    const { res, ctx } = await call("/api/v1/statistics");
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { apis: { api: string }[] };
    // Every route's API once, in route order, then `unknown`.
    const names = body.apis.map((a) => a.api);
    expect(names).toEqual([...new Set([...ROUTES.map((r) => r.api), "unknown"])]);
    expect(names.slice(0, 4)).toEqual(["health", "health_ready", "predict", "statistics"]);
  });

  it("unknown api → 404 api_not_found", async () => {
    const { res, ctx } = await call("/api/v1/statistics?api=nope");
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe("api_not_found");
  });

  for (const query of ["api=", "api=health&api=predict", "api=Health!", "foo=1"]) {
    it(`bad query '${query}' → 400 invalid_request`, async () => {
      const { res, ctx } = await call(`/api/v1/statistics?${query}`);
      await waitOnExecutionContext(ctx);
      expect(res.status).toBe(400);
      expect((await problem(res)).code).toBe("invalid_request");
    });
  }
});

describe("latency percentiles and the error rate over time (#32)", () => {
  it("histogram bins: each latency falls in a bin whose upper edge is ≥ it and < 1.19 × it", () => {
    for (const ms of [0.2, 1, 3, 17, 250, 999, 4321]) {
      const upper = binUpperMs(latencyBin(ms));
      expect(upper).toBeGreaterThanOrEqual(ms);
      expect(upper).toBeLessThan(ms * 2 ** 0.25 + 1e-9);
    }
    expect(percentiles([])).toBeNull();
  });

  it("p50/p95/p99 over shards and per-minute 4xx/5xx, summed across shards", async () => {
    const t0 = Date.UTC(2031, 0, 1, 10, 0, 30);
    // 100 calls: latencies 1..100 ms over two shards; 7 are 4xx and 3 are 5xx in the current minute.
    const events = Array.from({ length: 100 }, (_, i) =>
      event(t0 - 20 * MINUTE + (i % 2) * 20 * MINUTE, i < 7 ? 404 : i < 10 ? 503 : 200, i + 1),
    );
    await record("lat:0", ...events.slice(0, 50));
    await record("lat:1", ...events.slice(50));
    const stats = await readApiStatistics(env, "lat", 2, t0 + 100);
    const hour = stats.latency_ms.last_hour;
    expect(hour?.calls).toBe(100);
    // Exact p50 = 50 ms, p95 = 95 ms, p99 = 99 ms; the bins report their upper edges (≤ 19 % over).
    expect(hour?.p50).toBeGreaterThanOrEqual(50);
    expect(hour?.p50).toBeLessThan(50 * 1.19);
    expect(hour?.p95).toBeGreaterThanOrEqual(95);
    expect(hour?.p95).toBeLessThan(95 * 1.19);
    expect(hour?.p99).toBeGreaterThanOrEqual(99);
    expect(hour?.p99).toBeLessThan(99 * 1.19);
    expect(stats.latency_ms.last_24h?.calls).toBe(100);
    // Even i are 20 minutes ago, odd i now: the 4xx (i 0..6) and 5xx (i 7..9) split between them.
    expect(stats.per_minute_errors["4xx"].at(-1)).toBe(3); // i = 1, 3, 5
    expect(stats.per_minute_errors["4xx"].at(-21)).toBe(4); // i = 0, 2, 4, 6
    expect(stats.per_minute_errors["5xx"].at(-1)).toBe(2); // i = 7, 9
    expect(stats.per_minute_errors["5xx"].at(-21)).toBe(1); // i = 8
    expect(total(stats.per_minute_errors["4xx"])).toBe(7);
    expect(stats.per_minute_errors["4xx"]).toHaveLength(stats.per_minute.length);
  });
});
