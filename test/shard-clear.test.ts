/**
 * A deleted model's sharded sums are forgotten (`clear`) and the shard keeps working for a model that
 * reuses the id: the objects stay in memory with their constructor run, so `clear` must keep the
 * tables (`deleteAll()` dropped them: "no such table" until eviction).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { HOUR_MS } from "../src/drift/live";
import { emptySums } from "../src/rollout/comparison";

describe("clearing a deleted model's shards", () => {
  it("ShadowShard: clear forgets the sums; the next batch is recorded and read", async () => {
    const stub = env.SHADOW_SHARD.get(env.SHADOW_SHARD.idFromName("cleared-model:0"));
    const sums = { ...emptySums("2", "1"), runs: 3, items: 3, agree: 2, absDiff: { spam: 0.5 } };
    expect(await stub.recordBatch({ id: crypto.randomUUID(), sums: [sums] })).toBe(true);
    expect((await stub.read()).map((p) => p.runs)).toEqual([3]);
    await stub.clear();
    expect(await stub.read()).toEqual([]);
    expect(await stub.recordBatch({ id: crypto.randomUUID(), sums: [{ ...sums, runs: 1 }] })).toBe(true);
    expect((await stub.read()).map((p) => [p.shadow, p.serving, p.runs])).toEqual([["2", "1", 1]]);
  });

  it("DriftShard: clear forgets every version's hours; the next batch is recorded and read", async () => {
    const stub = env.DRIFT_SHARD.get(env.DRIFT_SHARD.idFromName("cleared-model:0"));
    const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const profile = { version: "1", hour, count: 2, signals: { length: [1, 1] } };
    expect(await stub.record({ id: crypto.randomUUID(), profiles: [profile] })).toBe(true);
    expect(await stub.warnOnce("1", hour)).toBe(true);
    expect((await stub.read("1", hour, hour)).map((h) => h.count)).toEqual([2]);
    await stub.clear();
    expect(await stub.read("1", hour, hour)).toEqual([]);
    // The warning of that hour is forgotten too: a new model's drift is logged afresh.
    expect(await stub.warnOnce("1", hour)).toBe(true);
    expect(await stub.record({ id: crypto.randomUUID(), profiles: [{ ...profile, count: 1 }] })).toBe(true);
    expect(await stub.read("1", hour, hour)).toEqual([
      { version: "1", hour, count: 1, signals: { length: [1, 1] } },
    ]);
  });
});
