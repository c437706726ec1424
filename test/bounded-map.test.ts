/**
 * The per-isolate caches' one eviction rule (src/bounded-map.ts), and two of its users: the
 * verified-token cache and the quota lease holder keep at most their capacity, least recently used
 * out first.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LeaseHolder, type QuotaSource } from "../src/admission/leases";
import type { VerifiedToken } from "../src/auth/token-cache";
import { TokenCache } from "../src/auth/token-cache";
import { BoundedMap } from "../src/bounded-map";
import type { RatePolicy } from "../src/contracts/settings";

describe("BoundedMap", () => {
  it("keeps at most `capacity` entries, dropping the oldest set", () => {
    const m = new BoundedMap<string, number>(3);
    for (const [i, k] of ["a", "b", "c", "d", "e"].entries()) m.set(k, i);
    expect([...m.entries()]).toEqual([
      ["c", 2],
      ["d", 3],
      ["e", 4],
    ]);
  });

  it("a set of a kept key makes it the newest; a get does not, a touch does", () => {
    const m = new BoundedMap<string, number>(3);
    m.set("a", 1).set("b", 2).set("c", 3);
    m.set("a", 10); // a is now the newest: b goes next
    m.set("d", 4);
    expect([...m.keys()]).toEqual(["c", "a", "d"]);
    expect(m.get("c")).toBe(3); // a plain read: c is still the oldest
    m.set("e", 5);
    expect([...m.keys()]).toEqual(["a", "d", "e"]);
    expect(m.touch("a")).toBe(10);
    m.set("f", 6);
    expect([...m.keys()]).toEqual(["e", "a", "f"]);
    expect(m.touch("missing")).toBeUndefined();
    expect(m.size).toBe(3);
  });

  it("an undefined or null value is kept and touched like any other", () => {
    const m = new BoundedMap<string, number | null>(2);
    m.set("x", null).set("y", 1);
    expect(m.touch("x")).toBeNull();
    m.set("z", 2);
    expect([...m.keys()]).toEqual(["x", "z"]);
  });

  it("refuses a capacity that is not a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new BoundedMap(bad)).toThrow(RangeError);
  });
});

describe("the caches built on it", () => {
  const verified = (until: number) => ({ until }) as VerifiedToken;

  it("TokenCache: a hit is the most recently used, so the least recently used goes first", () => {
    const cache = new TokenCache(2);
    const t = (n: number) => `${"x".repeat(40)}${n}`.padEnd(80, String(n));
    cache.set(t(1), verified(1e15));
    cache.set(t(2), verified(1e15));
    expect(cache.get(t(1), 0)).toBeDefined(); // 1 is now the newest
    cache.set(t(3), verified(1e15)); // 2 goes
    expect(cache.get(t(2), 0)).toBeUndefined();
    expect(cache.get(t(1), 0)).toBeDefined();
    expect(cache.get(t(3), 0)).toBeDefined();
    expect(cache.size).toBe(2);
    expect(cache.get(t(3), 1e16)).toBeUndefined(); // expired: dropped
    expect(cache.size).toBe(1);
  });

  it("LeaseHolder: past `maxEntries` leases, the least recently used caller's lease is dropped", async () => {
    const holder = new LeaseHolder({ ttlMs: 60_000, maxShare: 0.5, maxEntries: 4 });
    const policy: RatePolicy = { limit: 100, window: 60 };
    const now = Date.now();
    const run = crypto.randomUUID();
    const caller = (i: number) => `bounded-${run}-${i}`;
    const background: Promise<unknown>[] = [];
    const admit = async (i: number) => {
      const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(caller(i)));
      const source: QuotaSource = {
        lease: (api, p, want, unused) => stub.lease(api, p, want, unused, now + 1),
      };
      const decision = await holder.admit(caller(i), "predict", policy, source, now + 1, (w) =>
        background.push(w),
      );
      await Promise.allSettled(background.splice(0));
      return decision;
    };
    const held = (i: number) => holder.held(caller(i), "predict", policy);
    // A new caller's first lease is of 1 request (spent by that request); its second is larger.
    for (let i = 0; i < 4; i++) {
      expect((await admit(i)).allowed).toBe(true);
      expect((await admit(i)).allowed).toBe(true);
    }
    expect([0, 1, 2, 3].map(held).every((n) => n > 0)).toBe(true);
    await admit(0); // caller 0 is now the most recently used: caller 1 goes next
    await admit(4);
    expect(held(1)).toBe(0);
    expect([0, 2, 3].map(held).every((n) => n > 0)).toBe(true);
  });
});
