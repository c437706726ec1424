import type { InferenceSession } from "onnxruntime-web/wasm";

/**
 * What the engine uses of a session: an ORT `InferenceSession` in this isolate, or a handle to one in
 * the isolated BYOM Worker (src/inference/isolation.ts) with the same metadata and `run`.
 */
export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly InferenceSession.ValueMetadata[];
  run(feeds: InferenceSession.FeedsType): Promise<InferenceSession.ReturnType>;
  release(): Promise<void>;
}

/** A loaded model: its session plus what the cache needs to account for it. */
export interface LoadedModel<M> {
  session: ModelSession;
  meta: M;
  sizeBytes: number;
}

interface Entry<M> {
  promise: Promise<LoadedModel<M>>;
  loaded?: LoadedModel<M>;
  lastUsed: number;
  inFlight: number;
  evicted: boolean;
  /** Bytes held beside the session and charged to it (`charge`), e.g. an explanation's weights. */
  extraBytes: number;
}

/**
 * Per-isolate cache of ORT sessions keyed by model id + sha256.
 * - single-flight: concurrent first requests for a key share one load;
 * - bounded by the total bytes of loaded models, evicting the least recently used; an evicted
 *   session is released once no request is still running on it;
 * - a failed load is remembered only for `failureTtlMs`, then retried.
 */
export class SessionCache<M> {
  private readonly entries = new Map<string, Entry<M>>();
  private readonly failures = new Map<string, { error: unknown; until: number }>();
  private totalBytes = 0;
  /** Number of loads started (for tests and metrics). */
  loads = 0;
  /** Number of sessions released (for tests and metrics). */
  releases = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly failureTtlMs = 2_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs `fn` with the session for `key`, loading it with `load` if needed. */
  async use<T>(
    key: string,
    load: () => Promise<LoadedModel<M>>,
    fn: (m: LoadedModel<M>) => Promise<T>,
  ): Promise<T> {
    const failure = this.failures.get(key);
    if (failure && failure.until > this.now()) throw failure.error;
    const entry = this.acquire(key, load);
    entry.inFlight++;
    try {
      const loaded = await entry.promise;
      entry.lastUsed = this.now();
      return await fn(loaded);
    } finally {
      entry.inFlight--;
      if (entry.evicted && entry.inFlight === 0 && entry.loaded) await this.release(entry.loaded);
    }
  }

  /**
   * Drops every entry whose key matches `predicate` (e.g. a model version that is no longer
   * active): the next use loads afresh, and each dropped session is released once no request is
   * still running on it (a session still loading is released when its load completes). Returns
   * how many entries were dropped.
   */
  drop(predicate: (key: string) => boolean): number {
    let dropped = 0;
    for (const [key, entry] of [...this.entries]) {
      if (!predicate(key)) continue;
      this.entries.delete(key);
      entry.evicted = true;
      dropped++;
      if (!entry.loaded) continue;
      this.totalBytes -= entry.loaded.sizeBytes + entry.extraBytes;
      if (entry.inFlight === 0) void this.release(entry.loaded);
    }
    return dropped;
  }

  /**
   * Charges `bytes` kept beside `loaded`'s session (and freed with it) to its entry, so the budget
   * bounds them too; evicts other models if that goes over it. Nothing when the session is no
   * longer held (dropped or evicted: what was kept for it goes with it).
   */
  charge(loaded: LoadedModel<M>, bytes: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.loaded !== loaded || entry.evicted) continue;
      entry.extraBytes += bytes;
      this.totalBytes += bytes;
      this.evict(key);
      return;
    }
  }

  /** Bytes of models currently held (with what was charged to them). */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Keys of models currently held or loading. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  private acquire(key: string, load: () => Promise<LoadedModel<M>>): Entry<M> {
    const existing = this.entries.get(key);
    if (existing) return existing;
    this.failures.delete(key);
    this.loads++;
    const entry: Entry<M> = {
      promise: load(),
      lastUsed: this.now(),
      inFlight: 0,
      evicted: false,
      extraBytes: 0,
    };
    this.entries.set(key, entry);
    entry.promise.then(
      (loaded) => {
        entry.loaded = loaded;
        if (entry.evicted) {
          // Dropped while loading: release now unless a request is about to run on it.
          if (entry.inFlight === 0) void this.release(loaded);
          return;
        }
        this.totalBytes += loaded.sizeBytes;
        this.evict(key);
      },
      (error: unknown) => {
        if (entry.evicted) return;
        this.entries.delete(key);
        this.failures.set(key, { error, until: this.now() + this.failureTtlMs });
      },
    );
    return entry;
  }

  private release(loaded: LoadedModel<M>): Promise<void> {
    this.releases++;
    return loaded.session.release();
  }

  /** Drops least recently used loaded models until within budget, never the one just loaded. */
  private evict(keep: string): void {
    if (this.totalBytes <= this.maxBytes) return;
    const candidates = [...this.entries.entries()]
      .filter(([k, e]) => k !== keep && e.loaded)
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [k, e] of candidates) {
      if (this.totalBytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.totalBytes -= (e.loaded?.sizeBytes ?? 0) + e.extraBytes;
      e.evicted = true;
      if (e.inFlight === 0 && e.loaded) void this.release(e.loaded);
    }
  }
}
