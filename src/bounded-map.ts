/**
 * The per-isolate caches' one eviction rule: a `Map` of at most `capacity` entries in which a
 * `set` (new key or not) makes its entry the newest and drops the oldest entries past the
 * capacity, and `touch` reads an entry and makes it the newest (least recently used first out).
 * Used by the key repository and verified-token caches (src/auth/), quota leases and Durable
 * Object ids (src/admission/), traffic-split ordinals (src/rollout/callers.ts) and manifests
 * (src/storage/model-store.ts).
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly capacity: number) {
    super();
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer, not ${capacity}`);
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    for (const oldest of this.keys()) {
      if (this.size <= this.capacity) break;
      super.delete(oldest);
    }
    return this;
  }

  /** The entry of `key`, now the newest, or undefined. */
  touch(key: K): V | undefined {
    if (!this.has(key)) return undefined;
    const value = this.get(key) as V;
    this.set(key, value);
    return value;
  }
}
