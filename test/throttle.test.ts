import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config";
import type { RateDecision } from "../src/contracts/rate";
import type { RatePolicy } from "../src/contracts/settings";
import { api, issuerToken, problem } from "./helpers";

const DAY = 86_400_000;

const guard = (caller: string) => env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(caller));

/** `caller`'s guard asked for rate decisions only (no token), with an optional injected clock. */
const limiter = (caller: string) => ({
  take: async (api: string, policy: RatePolicy, now?: number): Promise<RateDecision> => {
    const { decision } = await guard(caller).admit({ rate: { api, policy } }, now);
    if (!decision) throw new Error("no rate decision");
    return decision;
  },
});

/** The Worker with some vars replaced; a new env object, so the config is parsed afresh. */
const withVars = (vars: Partial<Record<keyof Env, unknown>>) => ({ ...env, ...vars }) as Env;

/** Calls the real Worker with `testEnv` as `issuer` (the caller) and waits for its `waitUntil` work. */
async function call(testEnv: Env, path: string, issuer: string, init: RequestInit = {}) {
  const headers = { authorization: `Bearer ${await issuerToken(issuer)}`, ...init.headers };
  return api(path, { ...init, headers }, { env: testEnv });
}

describe("CallerGuard rate decisions (GCRA, injected clock)", () => {
  // A clock well ahead of the real one: the object's pruning alarm never touches these rows.
  const t0 = Date.now() + DAY;

  it("admits exactly `limit` of `limit + k` concurrent requests", async () => {
    const stub = limiter("exact");
    const policy: RatePolicy = { limit: 10, window: 60 };
    const decisions = await Promise.all(Array.from({ length: 17 }, () => stub.take("predict", policy, t0)));
    const allowed = decisions.filter((d) => d.allowed);
    expect(allowed).toHaveLength(10);
    expect(allowed.map((d) => d.remaining).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const d of decisions.filter((d) => !d.allowed)) {
      expect(d).toMatchObject({ remaining: 0, retryAfterSeconds: 6, resetSeconds: 60 });
    }
  });

  it("computes Retry-After exactly, rounded up, and refusals consume no quota", async () => {
    const stub = limiter("retry");
    const policy: RatePolicy = { limit: 2, window: 60 }; // one request per 30 s, bursts of 2
    expect(await stub.take("predict", policy, t0)).toMatchObject({
      allowed: true,
      remaining: 1,
      resetSeconds: 30,
    });
    expect(await stub.take("predict", policy, t0)).toMatchObject({
      allowed: true,
      remaining: 0,
      resetSeconds: 60,
    });
    expect(await stub.take("predict", policy, t0)).toMatchObject({ allowed: false, retryAfterSeconds: 30 });
    expect(await stub.take("predict", policy, t0 + 29_001)).toMatchObject({
      allowed: false,
      retryAfterSeconds: 1,
    });
    for (let i = 0; i < 20; i++) {
      expect((await stub.take("predict", policy, t0 + 29_500)).allowed).toBe(false);
    }
    // Had any refusal consumed quota, this would be refused too.
    expect(await stub.take("predict", policy, t0 + 30_000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await stub.take("predict", policy, t0 + 30_000)).toMatchObject({
      allowed: false,
      retryAfterSeconds: 30,
    });
  });

  it("rounds a fractional interval up and honours a smaller burst", async () => {
    const stub = limiter("fractional");
    const sevenPerMinute: RatePolicy = { limit: 7, window: 60 }; // 8.571… s per request
    for (let i = 0; i < 7; i++) expect((await stub.take("a", sevenPerMinute, t0)).allowed).toBe(true);
    expect(await stub.take("a", sevenPerMinute, t0)).toMatchObject({ allowed: false, retryAfterSeconds: 9 });

    const burstOf3: RatePolicy = { limit: 60, window: 60, burst: 3 };
    for (let i = 0; i < 3; i++) expect((await stub.take("b", burstOf3, t0)).allowed).toBe(true);
    expect(await stub.take("b", burstOf3, t0)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    expect((await stub.take("b", burstOf3, t0 + 1000)).allowed).toBe(true);
  });
});

describe("CallerGuard admission (token + rate in one call)", () => {
  it("a replay takes no quota; a throttled request does not spend its token", async () => {
    const t0 = Date.now() + DAY;
    const stub = guard(`admit-${crypto.randomUUID()}`);
    const rate = { api: "predict", policy: { limit: 2, window: 60 } }; // one per 30 s, bursts of 2
    const token = (jti: string) => ({ jti, expiresAt: t0 + 600_000 });
    expect(await stub.admit({ token: token("t1"), rate }, t0)).toMatchObject({
      replayed: false,
      decision: { allowed: true, remaining: 1 },
    });
    expect(await stub.admit({ token: token("t1"), rate }, t0)).toEqual({ replayed: true });
    // Had the replay taken quota, this would be refused.
    expect(await stub.admit({ token: token("t2"), rate }, t0)).toMatchObject({
      replayed: false,
      decision: { allowed: true, remaining: 0 },
    });
    expect(await stub.admit({ token: token("t3"), rate }, t0)).toMatchObject({
      replayed: false,
      decision: { allowed: false, retryAfterSeconds: 30 },
    });
    // After Retry-After the same token is accepted: the refusal did not record it.
    expect(await stub.admit({ token: token("t3"), rate }, t0 + 30_000)).toMatchObject({
      replayed: false,
      decision: { allowed: true },
    });
    expect(await stub.admit({ token: token("t3"), rate }, t0 + 120_000)).toEqual({ replayed: true });
  });

  it("of the same new token sent 10× at once, exactly one is admitted and takes quota", async () => {
    const t0 = Date.now() + DAY;
    const stub = guard(`admit-${crypto.randomUUID()}`);
    const rate = { api: "predict", policy: { limit: 5, window: 60 } };
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        stub.admit({ token: { jti: "same", expiresAt: t0 + 600_000 }, rate }, t0),
      ),
    );
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(await stub.admit({ rate }, t0)).toMatchObject({ decision: { allowed: true, remaining: 3 } });
  });
});

describe("CallerGuard rate storage (write-behind, pruning)", () => {
  const rows = (caller: string) =>
    runInDurableObject(guard(caller), (_, state) =>
      state.storage.sql
        .exec<{ api: string; tat: number }>("SELECT api, tat FROM gcra ORDER BY api")
        .toArray(),
    );

  it("stores decisions shortly after they are made; a fresh instance goes on with the same quota", async () => {
    const t0 = Date.now() + DAY;
    const policy: RatePolicy = { limit: 3, window: 60 };
    const stub = limiter("persisted");
    for (let i = 0; i < 3; i++) expect((await stub.take("predict", policy, t0)).allowed).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300)); // > PERSIST_RATES_AFTER_MS
    expect(await rows("persisted")).toEqual([{ api: "predict", tat: t0 + 60_000 }]);
    await abortAllDurableObjects();
    const fresh = limiter("persisted");
    expect(await fresh.take("predict", policy, t0)).toMatchObject({ allowed: false, retryAfterSeconds: 20 });
  });

  it("the alarm prunes full buckets, keeps the others, and stays armed while rows remain", async () => {
    const stub = limiter("pruned");
    expect((await stub.take("health", { limit: 100, window: 1 })).allowed).toBe(true); // full in 10 ms
    expect((await stub.take("predict", { limit: 1, window: 3600 })).allowed).toBe(true); // full in 1 h
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await rows("pruned")).map((r) => r.api)).toEqual(["health", "predict"]);
    expect(await runInDurableObject(guard("pruned"), (_, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(guard("pruned"))).toBe(true);
    expect((await rows("pruned")).map((r) => r.api)).toEqual(["predict"]);
    expect(await runInDurableObject(guard("pruned"), (_, state) => state.storage.getAlarm())).not.toBeNull();
  });
});

describe("throttle stage through the Worker", () => {
  const limits = (perHour: number) =>
    JSON.stringify({
      default: { limit: 1000, window: 60 },
      callers: { "caller-a": { apis: { statistics: { limit: perHour, window: 3600 } } } },
    });

  it("admits exactly `limit` concurrent requests; the rest get 429 with Retry-After and RateLimit", async () => {
    const testEnv = withVars({ RATE_LIMITS: limits(3) });
    const responses = await Promise.all(
      Array.from({ length: 7 }, () => call(testEnv, "/api/v1/statistics?api=health", "caller-a")),
    );
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    expect(ok).toHaveLength(3);
    expect(refused).toHaveLength(4);
    for (const r of responses) expect(r.headers.get("ratelimit-policy")).toBe('"statistics";q=3;w=3600');
    expect(ok.map((r) => r.headers.get("ratelimit")?.match(/;r=(\d+);/)?.[1]).sort()).toEqual([
      "0",
      "1",
      "2",
    ]);
    for (const r of refused) {
      // One request per 1200 s; the first one started at most a second ago.
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1199);
      expect(Number(r.headers.get("retry-after"))).toBeLessThanOrEqual(1200);
      expect(r.headers.get("ratelimit")).toMatch(/^"statistics";r=0;t=\d+$/);
      const p = await problem(r);
      expect(p.code).toBe("rate_limited");
      expect(p.status).toBe(429);
    }
    // Limits are per caller: another caller is unaffected.
    expect((await call(testEnv, "/api/v1/statistics?api=health", "caller-b")).status).toBe(200);
  });

  it("adds RateLimit headers to error responses of throttled routes, not to health", async () => {
    const bad = await call(env, "/api/v1/predict", "caller-c", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("ratelimit-policy")).toBe('"predict";q=100000;w=60');
    expect(bad.headers.get("ratelimit")).toMatch(/^"predict";r=\d+;t=\d+$/);
    const health = await call(env, "/api/v1/health", "caller-c");
    expect(health.status).toBe(200);
    expect(health.headers.get("ratelimit")).toBeNull();
  });

  it("METERING=off neither throttles nor counts", async () => {
    const testEnv = withVars({ RATE_LIMITS: limits(1), METERING: "off" });
    const counted: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call(testEnv, "/api/v1/statistics?api=statistics", "caller-a");
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toBeNull();
      const body = (await res.json()) as { per_hour: number[] };
      counted.push(body.per_hour.reduce((a, b) => a + b, 0));
    }
    expect(new Set(counted).size).toBe(1);
  });

  describe("when the caller's guard cannot be reached", () => {
    const failing = (admit: () => Promise<never>) =>
      ({
        idFromName: (name: string) => env.CALLER_GUARD.idFromName(name),
        get: () => ({ admit }),
      }) as unknown as Env["CALLER_GUARD"];
    const down = failing(() => Promise.reject(new Error("simulated: Durable Object unreachable")));
    const hung = failing(() => new Promise<never>(() => {}));

    for (const [name, limiterNs] of [
      ["erroring", down],
      ["hanging", hung],
    ] as const) {
      it(`${name}: fail-open serves the request without RateLimit headers`, async () => {
        const testEnv = withVars({
          CALLER_GUARD: limiterNs,
          ASAP_REPLAY_PROTECTION: "off",
          RATE_LIMIT_FAILURE_MODE: "open",
          RATE_LIMIT_TIMEOUT_MS: "50",
        });
        const res = await call(testEnv, "/api/v1/statistics?api=health", "caller-d");
        expect(res.status).toBe(200);
        expect(res.headers.get("ratelimit")).toBeNull();
      });

      it(`${name}: fail-closed answers 503 rate_limiter_unavailable with Retry-After`, async () => {
        const testEnv = withVars({
          CALLER_GUARD: limiterNs,
          ASAP_REPLAY_PROTECTION: "off",
          RATE_LIMIT_FAILURE_MODE: "closed",
          RATE_LIMIT_TIMEOUT_MS: "50",
        });
        const res = await call(testEnv, "/api/v1/statistics?api=health", "caller-d");
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).toBe("1");
        expect((await problem(res)).code).toBe("rate_limiter_unavailable");
      });

      it(`${name}: with a token to check for replay, 503 auth_unavailable even when failing open`, async () => {
        const testEnv = withVars({
          CALLER_GUARD: limiterNs,
          RATE_LIMIT_FAILURE_MODE: "open",
          ASAP_REPLAY_TIMEOUT_MS: "50",
        });
        const res = await call(testEnv, "/api/v1/statistics?api=health", "caller-d");
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).toBe("1");
        expect(await problem(res)).toMatchObject({
          code: "auth_unavailable",
          reason: "replay_guard_unavailable",
        });
      });
    }
  });
});

describe("metering configuration", () => {
  const vars = (overrides: Record<string, unknown>) => ({ ...env, ...overrides }) as Record<string, unknown>;

  it("accepts the shipped wrangler.toml vars", () => {
    const config = loadConfig(vars({}));
    expect(config.STATS_SHARDS).toBe(4);
    expect(config.RATE_LIMITS.default).toEqual({ limit: 100000, window: 60 });
    expect(config.RATE_LIMIT_FAILURE_MODE).toBe("open");
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ["RATE_LIMITS not JSON", { RATE_LIMITS: "{limit: 5}" }, /RATE_LIMITS: RATE_LIMITS is not valid JSON/],
    ["RATE_LIMITS without default", { RATE_LIMITS: "{}" }, /RATE_LIMITS\.default: /],
    [
      "a zero limit",
      { RATE_LIMITS: '{"default":{"limit":0,"window":60}}' },
      /RATE_LIMITS\.default\.limit: .*>=1/,
    ],
    [
      "a misspelt key",
      { RATE_LIMITS: '{"default":{"limit":5,"window":60,"brust":2}}' },
      /RATE_LIMITS\.default: Unrecognized key: "brust"/,
    ],
    [
      "a bad API name",
      { RATE_LIMITS: '{"default":{"limit":5,"window":60},"apis":{"Predict!":{"limit":1,"window":1}}}' },
      /RATE_LIMITS\.apis\.Predict!: Invalid key/,
    ],
    ["STATS_SHARDS of 0", { STATS_SHARDS: "0" }, /STATS_SHARDS: STATS_SHARDS must be >= 1/],
    ["an unknown failure mode", { RATE_LIMIT_FAILURE_MODE: "maybe" }, /RATE_LIMIT_FAILURE_MODE: /],
    ["METERING neither on nor off", { METERING: "yes" }, /METERING: /],
  ];
  for (const [name, overrides, message] of bad) {
    it(`rejects ${name} with a message naming the var`, () => {
      expect(() => loadConfig(vars(overrides))).toThrow(ConfigError);
      expect(() => loadConfig(vars(overrides))).toThrow(message);
    });
  }

  it("rejects an override for an API that is not throttled (a typo) with 500 config_invalid", async () => {
    const testEnv = withVars({
      RATE_LIMITS: '{"default":{"limit":5,"window":60},"apis":{"predcit":{"limit":1,"window":60}}}',
    });
    const res = await call(testEnv, "/api/v1/statistics?api=health", "caller-e");
    expect(res.status).toBe(500);
    const p = await problem(res);
    expect(p.code).toBe("config_invalid");
    expect(p.detail).toMatch(
      /RATE_LIMITS\.apis\.predcit: not a throttled API \(throttled: predict, statistics, /,
    );
  });
});
