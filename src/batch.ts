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
