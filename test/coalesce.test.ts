/** The coalescer behind batched limiter/replay-guard RPCs and dynamic batching of model runs. */
import { describe, expect, it } from "vitest";
import { Coalescer } from "../src/coalesce";

const options = { timeoutMs: 1_000 };

/** A `send` that records each batch and answers after `release()` is called for it. */
function controlledSend() {
  const batches: { key: string; items: number[] }[] = [];
  const pending: (() => void)[] = [];
  const send = (key: string, items: number[]) => {
    batches.push({ key, items: [...items] });
    return new Promise<string[]>((resolve) => {
      pending.push(() => resolve(items.map((n) => `${key}:${n}`)));
    });
  };
  const releaseNext = async () => {
    while (pending.length === 0) await new Promise((r) => setTimeout(r, 1));
    pending.shift()?.();
  };
  return { batches, send, releaseNext };
}

describe("Coalescer", () => {
  it("sends items submitted together in one batch and answers each with its own output", async () => {
    const { batches, send, releaseNext } = controlledSend();
    const c = new Coalescer(send, 100);
    const results = Promise.all([1, 2, 3].map((n) => c.submit("k", n, options)));
    await releaseNext();
    expect(await results).toEqual(["k:1", "k:2", "k:3"]);
    expect(batches).toEqual([{ key: "k", items: [1, 2, 3] }]);
  });

  it("queues items arriving while a batch is in flight into the next batch", async () => {
    const { batches, send, releaseNext } = controlledSend();
    const c = new Coalescer(send, 100);
    const first = c.submit("k", 1, options);
    await new Promise((r) => setTimeout(r, 5)); // batch 1 is now in flight
    const later = [2, 3, 4].map((n) => c.submit("k", n, options));
    expect(batches).toHaveLength(1);
    await releaseNext();
    expect(await first).toBe("k:1");
    await releaseNext();
    expect(await Promise.all(later)).toEqual(["k:2", "k:3", "k:4"]);
    expect(batches.map((b) => b.items)).toEqual([[1], [2, 3, 4]]);
  });

  it("keeps keys apart and splits batches at maxWeight", async () => {
    const { batches, send, releaseNext } = controlledSend();
    const c = new Coalescer(send, 5, (n: number) => n);
    const results = Promise.all([
      c.submit("a", 2, options),
      c.submit("b", 9, options), // heavier than maxWeight alone: goes alone
      c.submit("a", 3, options),
      c.submit("a", 1, options), // would make 6 > 5: next batch
    ]);
    for (let i = 0; i < 3; i++) await releaseNext();
    expect(await results).toEqual(["a:2", "b:9", "a:3", "a:1"]);
    expect(batches).toEqual([
      { key: "a", items: [2, 3] },
      { key: "b", items: [9] },
      { key: "a", items: [1] },
    ]);
  });

  it("fails every item of a failed batch, and the next batch still goes", async () => {
    let calls = 0;
    const c = new Coalescer(async (_key: string, items: number[]) => {
      calls++;
      if (calls === 1) throw new Error("boom");
      return items.map((n) => n * 10);
    }, 100);
    const failed = [1, 2].map((n) => c.submit("k", n, options));
    for (const p of failed) await expect(p).rejects.toThrow("boom");
    expect(await c.submit("k", 3, options)).toBe(30);
  });

  it("times out a hung batch; the queued batch goes after it", async () => {
    let calls = 0;
    const c = new Coalescer((_key: string, items: number[]) => {
      calls++;
      return calls === 1 ? new Promise<number[]>(() => {}) : Promise.resolve(items);
    }, 100);
    const hung = c.submit("k", 1, { timeoutMs: 30 });
    await new Promise((r) => setTimeout(r, 5));
    const queued = c.submit("k", 2, { timeoutMs: 1_000 });
    await expect(hung).rejects.toThrow("no answer within 30 ms");
    expect(await queued).toBe(2);
  });

  it("rejects when send returns fewer outputs than items", async () => {
    const c = new Coalescer(async () => [1], 100);
    const results = await Promise.allSettled([c.submit("k", 1, options), c.submit("k", 2, options)]);
    expect(results[0]).toEqual({ status: "fulfilled", value: 1 });
    expect(results[1]?.status).toBe("rejected");
  });
});
