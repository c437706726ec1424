/**
 * Per-isolate batching of work that is off the response path (statistics, the prediction log).
 * Items added within `delayMs` of a batch opening are flushed together. The call that opens a batch
 * hands its flush to `ctx.waitUntil`; later calls only add to it, so a request costs no pending
 * task of its own (and never waits on a promise another request settles). A full batch
 * (`maxItems`) opens the next one.
 */
export class IsolateBatches<T> {
  /** The open batch per key. */
  private readonly open = new Map<string, T[]>();

  constructor(
    private readonly delayMs: number,
    private readonly maxItems: number,
  ) {}

  /**
   * Adds `items` to the open batch of `key`. `flush` is used only when this call opens the batch;
   * it must handle its own errors (it runs in `waitUntil`, where nobody else would see them).
   */
  add(
    ctx: Pick<ExecutionContext, "waitUntil">,
    key: string,
    items: readonly T[],
    flush: (batch: T[]) => Promise<void>,
  ): void {
    const batch = this.open.get(key);
    if (batch && batch.length < this.maxItems) {
      batch.push(...items);
      return;
    }
    const opened = [...items];
    this.open.set(key, opened);
    ctx.waitUntil(
      new Promise<void>((resolve) => setTimeout(resolve, this.delayMs)).then(() => {
        if (this.open.get(key) === opened) this.open.delete(key);
        return flush(opened);
      }),
    );
  }
}

/**
 * The receiving side of those batches: a shard object counts each batch once, even when its
 * delivery is retried, by claiming the batch id in its `seen` table (`DELIVERIES_TABLE`) within the
 * same implicit transaction as its writes. Ids are kept `DELIVERY_KEEP_MS` (`pruneDeliveries`).
 */
export const DELIVERIES_TABLE =
  "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;";

/** How long a shard remembers a delivered batch id (retries come well within it). */
export const DELIVERY_KEEP_MS = 10 * 60_000;

/** Claims batch `id`: true the first time, false for a retried delivery (count nothing). */
export function firstDelivery(sql: SqlStorage, id: string): boolean {
  return (
    sql
      .exec("INSERT INTO seen (id, at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING id", id, Date.now())
      .toArray().length > 0
  );
}

/** Forgets batch ids older than `DELIVERY_KEEP_MS` (a shard's alarm calls it). */
export function pruneDeliveries(sql: SqlStorage, now: number): void {
  sql.exec("DELETE FROM seen WHERE at < ?", now - DELIVERY_KEEP_MS);
}

/**
 * Sends a batch with `send` (an RPC to one shard; the same batch id on every attempt, so a shard
 * counts it once: `firstDelivery`), up to `attempts` times with 50 ms × 4ⁿ back-off; an overloaded
 * object is not retried.
 */
export async function deliverBatch(send: () => Promise<unknown>, attempts = 3): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await send();
      return;
    } catch (error) {
      if (attempt >= attempts || (error as { overloaded?: boolean }).overloaded) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * 4 ** (attempt - 1)));
    }
  }
}
