/**
 * Traffic split and shadow versions of a model (docs/rollout.md), as the active pointer
 * `models/<id>/active.json` stores them (and D1's `models.split` / `models.shadows` mirror them),
 * and the rule that places a caller in a split: the caller's position in [0, 1) (from its stored
 * ordinal, `ordinalPosition`) falls in the run of one version (`versionAt`).
 */
import * as z from "zod";

/** At most this many versions in a split, and this many shadow versions. */
export const MAX_SPLIT_VERSIONS = 10;
export const MAX_SHADOWS = 3;

/** A split as stored: version → integer percent, summing to 100 (checked on write). */
export const storedSplitSchema = z.record(z.string(), z.number().int().min(1).max(100));

/** A shadow version as stored. */
export const storedShadowSchema = z.object({
  version: z.string(),
  sample_rate: z.number().gt(0).max(1),
});

/** A split: version → percent of callers. */
export type Split = Record<string, number>;
/** A shadow version and the share of requests it also scores. */
export type Shadow = z.infer<typeof storedShadowSchema>;

/**
 * Most callers of one model that get a stored ordinal (the `RolloutCallers` object of the model,
 * durable-objects/rollout-callers.ts). Callers are authenticated ASAP issuers (services), so a model
 * has few; one beyond this is placed by `hashPosition` instead (docs/rollout.md).
 */
export const MAX_ROLLOUT_CALLERS = 100_000;

/** Positions are integers in [0, POSITION_SCALE): the fraction position / 2^32 of [0, 1). */
export const POSITION_SCALE = 2 ** 32;

/**
 * The position of the caller with ordinal `k` (0 for the first caller of a model, 1 for the next,
 * …): the base-2 van der Corput radical inverse of `k`, i.e. `k`'s 32 bits reversed, as a fraction
 * of 2^32. The first callers land at 0, 1/2, 1/4, 3/4, 1/8, 5/8, …: any N consecutive ordinals from
 * 0 fill [0, 1) so evenly that a run of width p holds p·N ± 2 of them at N = 10, 50, 100, 1,000 and
 * 10,000, and p·N ± 4.5 at every N up to 10,000, for integer percents (test/rollout-callers.test.ts).
 * `k` must be below 2^32 (`MAX_ROLLOUT_CALLERS` keeps it far below).
 */
export function ordinalPosition(k: number): number {
  let x = k >>> 0;
  x = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  x = ((x >>> 2) & 0x33333333) | ((x & 0x33333333) << 2);
  x = ((x >>> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
  x = ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
  x = (x >>> 16) | (x << 16);
  return x >>> 0;
}

/**
 * The fallback position of `caller` on `model` (a caller beyond `MAX_ROLLOUT_CALLERS`): FNV-1a
 * (32-bit) of `caller + "\n" + model` in UTF-8, mixed with murmur3's finalizer. Stable across
 * isolates and releases, but only balanced on average (each caller independently uniform).
 */
export function hashPosition(caller: string, model: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${caller}\n${model}`)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The split's versions in assignment order (plain code-unit order, whatever the JSON order was). */
export function splitOrder(split: Split): string[] {
  return Object.keys(split).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The version of `split` at `position` (an integer in [0, 2^32), `ordinalPosition` or
 * `hashPosition`): versions in `splitOrder`, each owning a run of [0, 1) as wide as its percent;
 * the position falls in exactly one. Exact integer arithmetic (position·100 < 2^39).
 */
export function versionAt(split: Split, position: number): string {
  const versions = splitOrder(split);
  let upTo = 0;
  for (const version of versions) {
    upTo += split[version] ?? 0;
    if (position * 100 < upTo * POSITION_SCALE) return version;
  }
  // Only reachable when the percentages sum to less than 100 (refused on write).
  return versions.at(-1) as string;
}
