/**
 * Traffic split and shadow versions of a model (docs/rollout.md), as the active pointer
 * `models/<id>/active.json` stores them (and D1's `models.split` / `models.shadows` mirror them),
 * and the one rule that assigns a caller to a version of a split: a stable hash of the caller's
 * issuer and the model id, mod 100, picks the version whose cumulative percentage covers it.
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
 * The bucket 0..99 of `caller` for `model`: FNV-1a (32-bit) of `caller + "\n" + model` in UTF-8,
 * mixed with murmur3's finalizer so that mod 100 uses every bit. Stable across isolates and
 * releases (changing it would move callers between versions).
 */
export function callerBucket(caller: string, model: string): number {
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
  return (h >>> 0) % 100;
}

/** The split's versions in assignment order (plain code-unit order, whatever the JSON order was). */
export function splitOrder(split: Split): string[] {
  return Object.keys(split).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The version of `split` that serves `caller` on `model`: versions in `splitOrder`, each owning a
 * run of buckets as wide as its percent; the caller's `callerBucket` falls in exactly one.
 */
export function assignVersion(split: Split, caller: string, model: string): string {
  const bucket = callerBucket(caller, model);
  const versions = splitOrder(split);
  let upTo = 0;
  for (const version of versions) {
    upTo += split[version] ?? 0;
    if (bucket < upTo) return version;
  }
  // Only reachable when the percentages sum to less than 100 (refused on write).
  return versions.at(-1) as string;
}
