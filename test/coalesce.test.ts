/** The coalescer behind dynamic batching of model runs. */
import { describe, expect, it } from "vitest";
import { Coalescer } from "../src/coalesce";

const TIMEOUT = 1_000;
const oneTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** A `send` that records each batch and answers `<key>:<item>` per item. */
function recordingSend() {
  const batches: { key: string; items: number[] }[] = [];
  const send = async (key: string, items: number[]) => {
    batches.push({ key, items: [...items] });
    return items.map((n) => `${key}:${n}`);
  };
  return { batches, send };
}

describe("Coalescer", () => {
  it("sends items submitted before the batch closes together, each answered with its own output", async () => {
    const { batches, send } = recordingSend();
    const c = new Coalescer(send, 100, () => 1, oneTurn);
    const results = Promise.all([1, 2, 3].map((n) => c.submit("k", n, TIMEOUT)));
    expect(await results).toEqual(["k:1", "k:2", "k:3"]);
    expect(batches).toEqual([{ key: "k", items: [1, 2, 3] }]);
  });

  it("opens a new batch once the previous one has closed", async () => {
    const { batches, send } = recordingSend();
    const c = new Coalescer(send, 100, () => 1, oneTurn);
    expect(await c.submit("k", 1, TIMEOUT)).toBe("k:1");
    expect(await Promise.all([c.submit("k", 2, TIMEOUT), c.submit("k", 3, TIMEOUT)])).toEqual(["k:2", "k:3"]);
    expect(batches.map((b) => b.items)).toEqual([[1], [2, 3]]);
  });

  it("keeps keys apart and splits batches at maxWeight", async () => {
    const { batches, send } = recordingSend();
    const c = new Coalescer(send, 5, (n: number) => n, oneTurn);
    const results = await Promise.all([
      c.submit("a", 2, TIMEOUT),
      c.submit("b", 9, TIMEOUT), // heavier than maxWeight alone: goes alone
      c.submit("a", 3, TIMEOUT),
      c.submit("a", 1, TIMEOUT), // would make 6 > 5: next batch
    ]);
    expect(results).toEqual(["a:2", "b:9", "a:3", "a:1"]);
    expect(batches).toEqual([
      { key: "a", items: [2, 3] },
      { key: "b", items: [9] },
      { key: "a", items: [1] },
    ]);
  });

  it("fails every item of a failed batch, and the next batch still goes", async () => {
    let calls = 0;
    const c = new Coalescer(
      async (_key: string, items: number[]) => {
        calls++;
        if (calls === 1) throw new Error("boom");
        return items.map((n) => n * 10);
      },
      100,
      () => 1,
      oneTurn,
    );
    const failed = [1, 2].map((n) => c.submit("k", n, TIMEOUT));
    for (const p of failed) await expect(p).rejects.toThrow("boom");
    expect(await c.submit("k", 3, TIMEOUT)).toBe(30);
  });

  it("times out a hung batch without blocking the next one", async () => {
    let calls = 0;
    const c = new Coalescer(
      (_key: string, items: number[]) => {
        calls++;
        return calls === 1 ? new Promise<number[]>(() => {}) : Promise.resolve(items);
      },
      100,
      () => 1,
      oneTurn,
    );
    const hung = c.submit("k", 1, 30);
    await new Promise((r) => setTimeout(r, 5)); // the first batch is now sent
    expect(await c.submit("k", 2, TIMEOUT)).toBe(2);
    await expect(hung).rejects.toThrow("no answer within 30 ms");
  });

  it("rejects when send returns fewer outputs than items", async () => {
    const c = new Coalescer(
      async () => [1],
      100,
      () => 1,
      oneTurn,
    );
    const results = await Promise.allSettled([c.submit("k", 1, TIMEOUT), c.submit("k", 2, TIMEOUT)]);
    expect(results[0]).toEqual({ status: "fulfilled", value: 1 });
    expect(results[1]?.status).toBe("rejected");
  });
});
