/** Per-isolate request coalescing ("dynamic batching") for calls to a serialised resource. */

/** How one `submit` call is carried out. */
export interface SubmitOptions {
  /** The batch fails with an error after this many milliseconds; the next batch then goes ahead. */
  timeoutMs: number;
  /**
   * Keeps the batch's I/O alive when it is sent on behalf of this request (pass `ctx.waitUntil`):
   * the request that sends a batch may be cancelled by its client while others wait on it.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
}

interface Batch<I, O> {
  items: I[];
  weight: number;
  result: Promise<O[]>;
}

interface Lane<I, O> {
  /** The batch still accepting items, if any. */
  open: Batch<I, O> | undefined;
  /** Settles when the newest batch has settled; the next batch waits for it. */
  tail: Promise<void>;
}

/**
 * Coalesces calls per key: while a batch for a key is in flight, later items queue up and go
 * together in the next batch, sent as soon as the previous one settles. With no batch in flight an
 * item goes at once (after the current microtasks, so items submitted together share a batch), so
 * it adds no delay at low load; under load, one call carries many items. Used to turn one Durable
 * Object RPC per request into one RPC per batch, and one ORT run per request into one per batch.
 *
 * `send(key, items)` must return one output per item, in order. A failed or timed-out batch fails
 * each of its items with the same error.
 */
export class Coalescer<I, O> {
  private readonly lanes = new Map<string, Lane<I, O>>();

  /**
   * @param send carries out one batch.
   * @param maxWeight a batch holds items up to this total weight (an item alone may exceed it).
   * @param weight the weight of an item (default 1).
   * @param gather awaited before a batch closes, to let more items join (default: none).
   */
  constructor(
    private readonly send: (key: string, items: I[]) => Promise<O[]>,
    private readonly maxWeight: number,
    private readonly weight: (item: I) => number = () => 1,
    private readonly gather?: () => Promise<void>,
  ) {}

  /** Adds `item` to the open batch for `key` (or opens one) and resolves with its output. */
  submit(key: string, item: I, options: SubmitOptions): Promise<O> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { open: undefined, tail: Promise.resolve() };
      this.lanes.set(key, lane);
    }
    const w = this.weight(item);
    const open = lane.open;
    if (open && open.weight + w <= this.maxWeight) {
      const index = open.items.push(item) - 1;
      open.weight += w;
      return open.result.then((outputs) => pick(outputs, index));
    }
    return this.openBatch(key, lane, item, w, options);
  }

  private openBatch(key: string, lane: Lane<I, O>, item: I, w: number, options: SubmitOptions): Promise<O> {
    const batch = { items: [item], weight: w } as Batch<I, O>;
    batch.result = lane.tail.then(async () => {
      if (this.gather) await this.gather();
      if (lane.open === batch) lane.open = undefined;
      return withTimeout(this.send(key, batch.items), options.timeoutMs);
    });
    lane.open = batch;
    const tail = batch.result.then(
      () => undefined,
      () => undefined,
    );
    lane.tail = tail;
    // The lane goes once idle, so keys (callers, issuers) do not accumulate.
    void tail.then(() => {
      if (lane.tail === tail && this.lanes.get(key) === lane) this.lanes.delete(key);
    });
    options.waitUntil?.(tail);
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
