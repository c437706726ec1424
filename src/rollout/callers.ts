/**
 * A caller's place in a model's traffic split (docs/rollout.md "Traffic split"): its ordinal from
 * the model's `RolloutCallers` object (the order in which the model first saw its callers), turned
 * into a position in [0, 1) by `ordinalPosition`, and the version whose run holds that position.
 * An ordinal never changes, so each isolate keeps the ones it has read (`ORDINAL_CACHE_MAX`, least
 * recently used first out): a caller costs one object RPC per isolate, not one per request.
 */
import type { RolloutCallers } from "../../durable-objects/rollout-callers";
import { BoundedMap } from "../bounded-map";
import { hashPosition, ordinalPosition, type Split, versionAt } from "../contracts/rollout";
import { ApiError } from "../errors";
import { withTimeout } from "../timeout";

/** (model, caller) pairs whose ordinal an isolate keeps. */
export const ORDINAL_CACHE_MAX = 10_000;

/** Longest an ordinal lookup may take before the request is answered 503 `rollout_unavailable`. */
export const ROLLOUT_CALLERS_TIMEOUT_MS = 5_000;

/** The bindings a caller's assignment needs. */
export interface RolloutCallersEnv {
  ROLLOUT_CALLERS: DurableObjectNamespace<RolloutCallers>;
}

/** Ordinals read by this isolate: `model + "\n" + caller` → ordinal (null: past the cap). */
const ordinals = new BoundedMap<string, number | null>(ORDINAL_CACHE_MAX);

/** Forgets the ordinals this isolate read (tests: what a new isolate starts with). */
export function clearCallerOrdinalCache(): void {
  ordinals.clear();
}

/** How many ordinals this isolate holds. */
export function cachedCallerOrdinals(): number {
  return ordinals.size;
}

/** The `RolloutCallers` object of `model` (one per model). */
export function rolloutCallers(env: RolloutCallersEnv, model: string): DurableObjectStub<RolloutCallers> {
  return env.ROLLOUT_CALLERS.get(env.ROLLOUT_CALLERS.idFromName(model));
}

/**
 * The ordinal of `caller` on `model` (null: the model's object holds `MAX_ROLLOUT_CALLERS` callers
 * already), from this isolate's cache or else the model's object. The object failing or not
 * answering within `timeoutMs` is 503 `rollout_unavailable`: the caller is not moved to another
 * version for it (a guess could serve it the version it must not see).
 */
export async function callerOrdinal(
  env: RolloutCallersEnv,
  model: string,
  caller: string,
  timeoutMs = ROLLOUT_CALLERS_TIMEOUT_MS,
): Promise<number | null> {
  const key = `${model}\n${caller}`;
  if (ordinals.has(key)) return ordinals.touch(key) as number | null;
  let ordinal: number | null;
  try {
    ordinal = await withTimeout(
      rolloutCallers(env, model).ordinal(caller),
      timeoutMs,
      `the traffic split's callers of '${model}'`,
    );
  } catch (cause) {
    throw new ApiError(
      "rollout_unavailable",
      `model '${model}' has a traffic split and the version for this caller could not be looked up; retry shortly, or name a \`version\` in the request`,
      { cause, headers: { "retry-after": "1" } },
    );
  }
  ordinals.set(key, ordinal);
  return ordinal;
}

/**
 * The position of `caller` on `model` in [0, 2^32): `ordinalPosition` of its ordinal, or its
 * `hashPosition` when the model's object is full.
 */
export async function callerPosition(
  env: RolloutCallersEnv,
  model: string,
  caller: string,
  timeoutMs?: number,
): Promise<number> {
  const ordinal = await callerOrdinal(env, model, caller, timeoutMs);
  return ordinal === null ? hashPosition(caller, model) : ordinalPosition(ordinal);
}

/** The version of `split` that serves `caller` on `model` (see the module comment). */
export async function assignCaller(
  env: RolloutCallersEnv,
  model: string,
  caller: string,
  split: Split,
): Promise<string> {
  return versionAt(split, await callerPosition(env, model, caller));
}
