/** Per-isolate dynamic batching: concurrent calls with the same key share one batch. */

interface Batch<I, O> {
  items: I[];
  weight: number;
  result: Promise<O[]>;
}

/**
 * Coalesces calls per key: the first call for a key opens a batch, which waits for `gather()`
 * (e.g. one event-loop turn) so that calls arriving meanwhile join it, then closes and is sent with
 * `send(key, items)`. A call that would push the open batch past `maxWeight` opens the next batch.
 * The batch is sent from the request that opened it, which is itself waiting for the result, so
 * the work never runs on behalf of a finished request. Used to run concurrent predictions on one
 * model as one ORT run (see src/inference/engine.ts).
 *
 * `send` must return one output per item, in order. A failed or timed-out batch fails each of its
 * items with the same error.
 */
export class Coalescer<I, O> {
  private readonly open = new Map<string, Batch<I, O>>();

  /**
   * @param send carries out one batch.
   * @param maxWeight a batch holds items up to this total weight (an item alone may exceed it).
   * @param weight the weight of an item.
   * @param gather awaited before a batch closes, to let more items join.
   */
  constructor(
    private readonly send: (key: string, items: I[]) => Promise<O[]>,
    private readonly maxWeight: number,
    private readonly weight: (item: I) => number,
    private readonly gather: () => Promise<void>,
  ) {}

  /** Adds `item` to the open batch for `key` (or opens one); fails after `timeoutMs` without an answer. */
  submit(key: string, item: I, timeoutMs: number): Promise<O> {
    const w = this.weight(item);
    const open = this.open.get(key);
    if (open && open.weight + w <= this.maxWeight) {
      const index = open.items.push(item) - 1;
      open.weight += w;
      return open.result.then((outputs) => pick(outputs, index));
    }
    const batch = { items: [item], weight: w } as Batch<I, O>;
    this.open.set(key, batch);
    batch.result = this.gather().then(() => {
      if (this.open.get(key) === batch) this.open.delete(key);
      return withTimeout(this.send(key, batch.items), timeoutMs);
    });
    return batch.result.then((outputs) => pick(outputs, 0));
  }
}

function pick<O>(outputs: O[], index: number): O {
  if (index >= outputs.length) throw new Error(`batch returned ${outputs.length} results, wanted #${index}`);
  return outputs[index] as O;
}

/** Rejects after `ms` so a hung call yields an error instead of a hang. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
