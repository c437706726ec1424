import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { gcra, gcraGiveBack, gcraTake } from "../src/admission/gcra";
import { LeaseHolder, type QuotaSource } from "../src/admission/leases";
import { replayShard } from "../src/admission/replay";
import type { RatePolicy } from "../src/contracts/settings";
import { issuerToken, postJson, problem, seedShippedModel } from "./helpers";

const DAY = 86_400_000;

describe("GCRA (pure)", () => {
  const policy: RatePolicy = { limit: 10, window: 10 }; // 1 s per request, bursts of 10
  const t0 = 1_000_000;

  it("takes one request like the classic algorithm, and refuses without consuming", () => {
    let tat = t0;
    for (let i = 0; i < 10; i++) {
      const r = gcra(tat, t0, policy);
      expect(r.decision).toMatchObject({ allowed: true, remaining: 9 - i, retryAfterSeconds: 0 });
      tat = r.tat;
    }
    const refused = gcra(tat, t0, policy);
    expect(refused.decision).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    expect(refused.tat).toBe(tat);
    expect(gcra(tat, t0 + 1000, policy).decision.allowed).toBe(true);
  });

  it("grants a lease of up to `want`, never more than the bucket holds", () => {
    const a = gcraTake(t0, t0, policy, 4);
    expect(a).toMatchObject({ granted: 4, tat: t0 + 4000, decision: { allowed: true, remaining: 6 } });
    const b = gcraTake(a.tat, t0, policy, 100);
    expect(b).toMatchObject({ granted: 6, tat: t0 + 10_000, decision: { remaining: 0, resetSeconds: 10 } });
    const c = gcraTake(b.tat, t0, policy, 3);
    expect(c).toMatchObject({ granted: 0, tat: b.tat, decision: { allowed: false, retryAfterSeconds: 1 } });
    // 2.5 s later two and a half requests are back: two are granted.
    expect(gcraTake(b.tat, t0 + 2500, policy, 3).granted).toBe(2);
  });

  it("gives unused requests back, never beyond a full bucket", () => {
    expect(gcraGiveBack(t0 + 10_000, t0, policy, 4)).toBe(t0 + 6000);
    expect(gcraGiveBack(t0 + 3000, t0, policy, 10)).toBe(t0);
    expect(gcraGiveBack(t0 + 3000, t0, policy, -5)).toBe(t0 + 3000);
  });
});

/**
 * "Isolates" for lease tests: independent `LeaseHolder`s (as two isolates each have their own)
 * against one real `CallerGuard` object, with an injected clock; background work is collected so
 * a test can wait for it like the runtime's `waitUntil` would.
 */
function isolate(caller: string, clock: { now: number }, ttlMs = 1000, maxShare = 0.5) {
  const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(caller));
  const source: QuotaSource = {
    lease: (api, policy, want, unused) => stub.lease(api, policy, want, unused, clock.now),
  };
  const holder = new LeaseHolder({ ttlMs, maxShare });
  const pending: Promise<unknown>[] = [];
  return {
    holder,
    admit: (policy: RatePolicy) =>
      holder.admit(caller, "predict", policy, source, clock.now, (work) => pending.push(work)),
    settle: async () => {
      while (pending.length > 0) await Promise.allSettled(pending.splice(0));
    },
  };
}

describe("quota leases against one CallerGuard", () => {
  it("two isolates under 200-way concurrency never admit more than the bucket allows", async () => {
    const caller = `lease-${crypto.randomUUID()}`;
    const policy: RatePolicy = { limit: 60, window: 60 }; // 1 per second, bursts of 60
    const clock = { now: Date.now() + DAY };
    const t0 = clock.now;
    const a = isolate(caller, clock);
    const b = isolate(caller, clock);
    let admitted = 0;
    // Rounds of 200 concurrent requests (100 per isolate), the clock moving 0.7 s per round; the
    // leases expire (1 s) and are given back along the way.
    for (let round = 0; round < 12; round++) {
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).admit(policy)),
      );
      admitted += decisions.filter((d) => d.allowed).length;
      for (const d of decisions.filter((d) => !d.allowed)) expect(d.retryAfterSeconds).toBeGreaterThan(0);
      await Promise.all([a.settle(), b.settle()]);
      // GCRA's bound: the burst plus one request per second since the start.
      expect(admitted).toBeLessThanOrEqual(60 + Math.floor((clock.now - t0) / 1000));
      clock.now += 700;
    }
    // The bucket was kept busy: far more than the first burst was admitted.
    expect(admitted).toBeGreaterThan(60);
  });

  it("an expired lease gives its unused quota back", async () => {
    const caller = `lease-${crypto.randomUUID()}`;
    const policy: RatePolicy = { limit: 100, window: 36_000 }; // one per 6 min: no refill here
    const clock = { now: Date.now() + DAY };
    const a = isolate(caller, clock);
    const b = isolate(caller, clock, 0); // no leases: every request asks the guard
    for (let i = 0; i < 20; i++) expect((await a.admit(policy)).allowed).toBe(true);
    await a.settle();
    const held = a.holder.held(caller, "predict", policy);
    expect(held).toBeGreaterThan(0);
    let drained = 0;
    while ((await b.admit(policy)).allowed) drained++;
    expect(drained).toBe(100 - 20 - held); // leased quota counts as spent
    clock.now += 1500; // a's lease has expired
    // a's next request gives its unused quota back and leases again, in one call.
    expect((await a.admit(policy)).allowed).toBe(true);
    await a.settle();
    let more = 0;
    while ((await b.admit(policy)).allowed) more++;
    const stillHeld = a.holder.held(caller, "predict", policy);
    // Nothing lost, nothing extra: 100 in all, counting what a still holds.
    expect(20 + drained + 1 + more + stillHeld).toBe(100);
    expect(more + stillHeld).toBe(held - 1);
  });

  it("admitLocal decides from a lease with quota without calling the guard, and leaves the rest to admit", async () => {
    const caller = `lease-${crypto.randomUUID()}`;
    const policy: RatePolicy = { limit: 100, window: 36_000 }; // one per 6 min: no refill here
    const now = Date.now() + DAY;
    const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(caller));
    let calls = 0;
    const source: QuotaSource = {
      lease: (api, p, want, unused) => {
        calls++;
        return stub.lease(api, p, want, unused, now);
      },
    };
    const holder = new LeaseHolder({ ttlMs: 1000, maxShare: 0.5 });
    const pending: Promise<unknown>[] = [];
    const background = (work: Promise<unknown>) => pending.push(work);
    // No lease yet: nothing decided locally, nothing asked.
    expect(holder.admitLocal(caller, "predict", policy, source, now, background)).toBeUndefined();
    expect(calls).toBe(0);
    // The lease grows with the requests seen (the first grant is the asking request's own).
    for (let i = 0; i < 20 && holder.held(caller, "predict", policy) < 2; i++) {
      expect((await holder.admit(caller, "predict", policy, source, now, background)).allowed).toBe(true);
      await Promise.allSettled(pending.splice(0));
    }
    const held = holder.held(caller, "predict", policy);
    expect(held).toBeGreaterThan(1);
    const asked = calls;
    const local = holder.admitLocal(caller, "predict", policy, source, now, background);
    expect(local).toMatchObject({ allowed: true, retryAfterSeconds: 0 });
    expect(holder.held(caller, "predict", policy)).toBe(held - 1);
    expect(calls).toBe(asked + pending.length); // at most a refill in the background, never awaited
    // Expired: the rest is given back by `admit`, not spent locally.
    expect(holder.admitLocal(caller, "predict", policy, source, now + 1500, background)).toBeUndefined();
    await Promise.allSettled(pending);
  });

  it("with leases off (RATE_LEASE_MS=0) every request is decided by the guard", async () => {
    const caller = `lease-${crypto.randomUUID()}`;
    const policy: RatePolicy = { limit: 5, window: 3600 };
    const clock = { now: Date.now() + DAY };
    const a = isolate(caller, clock, 0);
    const decisions = await Promise.all(Array.from({ length: 9 }, () => a.admit(policy)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
    expect(a.holder.held(caller, "predict", policy)).toBe(0);
  });
});

/** POST /api/v1/predict through the real Worker with `vars` over the test env, bearing `bearer`. */
function predict(bearer: string, vars: Record<string, string> = {}): Promise<Response> {
  const body = { text: "you are wonderful", model: "toxicity" };
  return postJson("/api/v1/predict", body, { authorization: `Bearer ${bearer}` }, { vars });
}

/**
 * The real `CALLER_GUARD` namespace with every call delayed by `ms`, as if the objects were far
 * away: the replay check then answers well after inference is done.
 */
function distant(ms: number): Env["CALLER_GUARD"] {
  const ns = env.CALLER_GUARD;
  return {
    idFromName: (name: string) => ns.idFromName(name),
    get: (id: DurableObjectId) => {
      const stub = ns.get(id) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      return new Proxy(
        {},
        {
          get:
            (_, method: string) =>
            async (...args: unknown[]) => {
              await new Promise((resolve) => setTimeout(resolve, ms));
              return stub[method]?.(...args);
            },
        },
      );
    },
  } as unknown as Env["CALLER_GUARD"];
}

/** Keys of spent ids a replay shard holds. */
function shardIds(index: number): Promise<string[]> {
  const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(`replay-shard:${index}`));
  return runInDurableObject(stub, (_, state) =>
    state.storage.sql
      .exec<{ jti: string }>("SELECT jti FROM spent")
      .toArray()
      .map((r) => r.jti),
  );
}

describe("replay protection through the Worker (sharded)", () => {
  beforeAll(async () => {
    await seedShippedModel("toxicity");
  });

  it("a token is accepted exactly once across shards", async () => {
    const vars = { ASAP_REPLAY_SHARDS: "4" };
    const tokens = await Promise.all(Array.from({ length: 16 }, () => issuerToken("replay-shards")));
    // Every token sent three times at once, all 48 requests concurrently.
    const responses = await Promise.all(tokens.flatMap((t) => [t, t, t]).map((t) => predict(t, vars)));
    const statuses = responses.map((r) => r.status);
    for (let i = 0; i < tokens.length; i++) {
      expect(statuses.slice(3 * i, 3 * i + 3).sort()).toEqual([200, 401, 401]);
    }
    const jtis = tokens.map(
      (t) =>
        (
          JSON.parse(atob((t.split(".")[1] as string).replace(/-/g, "+").replace(/_/g, "/"))) as {
            jti: string;
          }
        ).jti,
    );
    const used = new Set(jtis.map((jti) => replayShard(`replay-shards\n${jti}`, 4)));
    expect(used.size).toBeGreaterThan(1); // spread over the shards
    const stored = (await Promise.all([0, 1, 2, 3].map((i) => shardIds(i)))).flat();
    for (const jti of jtis) expect(stored.filter((k) => k === `replay-shards\n${jti}`)).toHaveLength(1);
  });

  it("a replayed token never receives a prediction, even while inference runs ahead of the check", async () => {
    const t = await issuerToken("replay-predict");
    const vars = { CALLER_GUARD: distant(150) } as unknown as Record<string, string>;
    const responses = await Promise.all(Array.from({ length: 6 }, () => predict(t, vars)));
    const ok = responses.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(await ok[0]?.json()).toHaveProperty("sentiment");
    for (const r of responses.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(401);
      const p = await problem(r);
      expect(p).toMatchObject({ code: "invalid_token", reason: "replayed_token" });
      expect(p).not.toHaveProperty("sentiment");
      expect(JSON.stringify(p)).not.toMatch(/toxic/);
    }
    // And later, alone.
    const again = await predict(t, vars);
    expect(again.status).toBe(401);
    expect((await problem(again)).reason).toBe("replayed_token");
  });

  it("replay checking `off` applies to the listed issuer only", async () => {
    const vars = {
      ASAP_REPLAY_POLICY: JSON.stringify({ default: "strict", issuers: { "replay-off": "off" } }),
    };
    const relaxed = await issuerToken("replay-off");
    expect((await predict(relaxed, vars)).status).toBe(200);
    expect((await predict(relaxed, vars)).status).toBe(200);
    const strict = await issuerToken("replay-strict");
    expect((await predict(strict, vars)).status).toBe(200);
    const replay = await predict(strict, vars);
    expect(replay.status).toBe(401);
    expect((await problem(replay)).reason).toBe("replayed_token");
    // Nothing of the relaxed issuer was recorded in any shard.
    const stored = (await Promise.all(Array.from({ length: 16 }, (_, i) => shardIds(i)))).flat();
    expect(stored.some((k) => k.startsWith("replay-off\n"))).toBe(false);
    expect(stored.some((k) => k.startsWith("replay-strict\n"))).toBe(true);
  });

  it("rejects a malformed ASAP_REPLAY_POLICY naming the var", async () => {
    const res = await predict(await issuerToken("replay-config"), {
      ASAP_REPLAY_POLICY: '{"default":"maybe"}',
    });
    expect(res.status).toBe(500);
    expect((await problem(res)).detail).toMatch(/ASAP_REPLAY_POLICY/);
  });
});
