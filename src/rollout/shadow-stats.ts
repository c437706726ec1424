/** Recording shadow observations into, and reading comparisons out of, the `ShadowShard` objects. */
import type { ShadowBatch, ShadowShard } from "../../durable-objects/shadow-shard";
import { deliverBatch } from "../batch";
import { ApiError } from "../errors";
import { withTimeout } from "../timeout";
import { addSums, emptySums, type PairSums } from "./comparison";

const ATTEMPTS = 3;
const READ_TIMEOUT_MS = 10_000;

function shard(env: Env, model: string, index: number): DurableObjectStub<ShadowShard> {
  return env.SHADOW_SHARD.get(env.SHADOW_SHARD.idFromName(`${model}:${index}`));
}

/**
 * Adds `sums` (per pair) of `model` to a random one of its `shards` shards; a failed delivery is
 * retried to the same shard with the same batch id (counted once).
 */
export async function recordShadowSums(
  env: Env,
  model: string,
  shards: number,
  sums: PairSums[],
): Promise<void> {
  const batch: ShadowBatch = { id: crypto.randomUUID(), sums };
  const stub = shard(env, model, Math.floor(Math.random() * shards));
  await deliverBatch(() => stub.recordBatch(batch), ATTEMPTS);
}

/** Every (shadow, serving) pair of `model`, summed over its `shards` shards. */
export async function readShadowSums(env: Env, model: string, shards: number): Promise<PairSums[]> {
  let parts: PairSums[][];
  try {
    parts = await withTimeout(
      Promise.all(Array.from({ length: shards }, (_, i) => shard(env, model, i).read())),
      READ_TIMEOUT_MS,
      "shadow shards",
    );
  } catch (cause) {
    throw new ApiError("statistics_unavailable", `shadow comparisons of '${model}' could not be read`, {
      cause,
      headers: { "retry-after": "1" },
    });
  }
  const pairs = new Map<string, PairSums>();
  for (const sums of parts.flat()) {
    const key = `${sums.shadow}\n${sums.serving}`;
    pairs.set(key, addSums(pairs.get(key) ?? emptySums(sums.shadow, sums.serving), sums));
  }
  return [...pairs.values()];
}

/** Forgets `model`'s comparisons in all its shards (the model is deleted); best effort. */
export async function clearShadowSums(env: Env, model: string, shards: number): Promise<void> {
  await Promise.allSettled(Array.from({ length: shards }, (_, i) => shard(env, model, i).clear()));
}
