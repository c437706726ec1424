/**
 * Durable Object ids by name, derived once per isolate. `idFromName` derives the id from the name
 * on every call, and the admission stage needs one or two per request (the caller's guard, the
 * token's replay shard). An id is a plain value, not an I/O object, so it may be kept across
 * requests; a stub is an I/O object, so `namespace.get(id)` is still called per request. Bounded
 * per namespace: past `MAX_NAMES` the oldest name goes first (names are callers' identities, which
 * may be many; deriving again is always correct).
 */
import { BoundedMap } from "../bounded-map";

const MAX_NAMES = 1024;

interface IdSource {
  idFromName(name: string): DurableObjectId;
}

const ids = new WeakMap<IdSource, BoundedMap<string, DurableObjectId>>();

/** `namespace.idFromName(name)`, derived once per isolate. */
export function objectId(namespace: IdSource, name: string): DurableObjectId {
  let byName = ids.get(namespace);
  if (!byName) {
    byName = new BoundedMap(MAX_NAMES);
    ids.set(namespace, byName);
  }
  let id = byName.get(name);
  if (!id) {
    id = namespace.idFromName(name);
    byName.set(name, id);
  }
  return id;
}
