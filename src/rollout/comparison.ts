/**
 * Shadow comparisons (docs/rollout.md), pure: what one shadow run adds to the running sums of a
 * (shadow version, serving version) pair, and how the summed rows read back. The `ShadowShard`
 * objects keep the sums (sharded, added on read), so every figure here is a plain sum.
 */
import { LATENCY_BINS, latencyBin, percentiles } from "../metering/latency";

/** The scores of one version on a request's inputs, in its manifest's label order. */
export interface ScoredInputs {
  labels: readonly string[];
  scores: readonly ArrayLike<number>[];
  /** Per-label decision thresholds of the version, if it declares any (else 0.5 for every label). */
  thresholds?: Record<string, number> | undefined;
}

/** What one shadow run (one sampled request) adds to its pair's sums. */
export interface ShadowObservation {
  shadow: string;
  serving: string;
  /** 1 when the shadow failed (then nothing else counts). */
  error: 0 | 1;
  /** Inputs compared (texts or images of the request). */
  items: number;
  /** Inputs whose top label is the same for both versions. */
  agree: number;
  /** Inputs flagged (some label at or over its threshold) by the serving version, by the shadow. */
  flaggedServing: number;
  flaggedShadow: number;
  /** Sum over inputs of |shadow − serving| per label both versions have. */
  absDiff: Record<string, number>;
  /** The shadow's wall time for the request's inputs (0 on error). */
  latencyMs: number;
}

/** At most this many labels are compared per pair (bounded storage; a model has far fewer). */
export const MAX_COMPARED_LABELS = 256;

function top(labels: readonly string[], scores: ArrayLike<number>): string | undefined {
  let best = -1;
  let label: string | undefined;
  labels.forEach((l, i) => {
    const s = scores[i] as number;
    if (s > best) {
      best = s;
      label = l;
    }
  });
  return label;
}

function flagged(scored: ScoredInputs, row: ArrayLike<number>): boolean {
  return scored.labels.some((label, i) => (row[i] as number) >= (scored.thresholds?.[label] ?? 0.5));
}

/** Compares the shadow's scores with the serving version's on the same inputs. */
export function compareScores(
  shadow: string,
  serving: string,
  served: ScoredInputs,
  shadowed: ScoredInputs,
  latencyMs: number,
): ShadowObservation {
  const shadowIndex = new Map(shadowed.labels.map((label, i) => [label, i]));
  const shared = served.labels
    .map((label, i) => ({ label, i, j: shadowIndex.get(label) }))
    .filter((x): x is { label: string; i: number; j: number } => x.j !== undefined)
    .slice(0, MAX_COMPARED_LABELS);
  const absDiff: Record<string, number> = Object.fromEntries(shared.map((x) => [x.label, 0]));
  const items = Math.min(served.scores.length, shadowed.scores.length);
  let agree = 0;
  let flaggedServing = 0;
  let flaggedShadow = 0;
  for (let n = 0; n < items; n++) {
    const a = served.scores[n] as ArrayLike<number>;
    const b = shadowed.scores[n] as ArrayLike<number>;
    if (top(served.labels, a) === top(shadowed.labels, b)) agree++;
    if (flagged(served, a)) flaggedServing++;
    if (flagged(shadowed, b)) flaggedShadow++;
    for (const { label, i, j } of shared) {
      absDiff[label] = (absDiff[label] as number) + Math.abs((b[j] as number) - (a[i] as number));
    }
  }
  return { shadow, serving, error: 0, items, agree, flaggedServing, flaggedShadow, absDiff, latencyMs };
}

/** The observation of a shadow run that failed. */
export function failedRun(shadow: string, serving: string): ShadowObservation {
  return {
    shadow,
    serving,
    error: 1,
    items: 0,
    agree: 0,
    flaggedServing: 0,
    flaggedShadow: 0,
    absDiff: {},
    latencyMs: 0,
  };
}

/** The running sums of one (shadow, serving) pair, as a shard stores them (and shards add up). */
export interface PairSums {
  shadow: string;
  serving: string;
  runs: number;
  errors: number;
  items: number;
  agree: number;
  flaggedServing: number;
  flaggedShadow: number;
  latencyMs: number;
  absDiff: Record<string, number>;
  /** Latency histogram of the shadow's runs (src/metering/latency.ts bins). */
  latency: number[];
}

/** Empty sums of a pair. */
export function emptySums(shadow: string, serving: string): PairSums {
  return {
    shadow,
    serving,
    runs: 0,
    errors: 0,
    items: 0,
    agree: 0,
    flaggedServing: 0,
    flaggedShadow: 0,
    latencyMs: 0,
    absDiff: {},
    latency: new Array<number>(LATENCY_BINS).fill(0),
  };
}

/** Adds `b` into `a` (same pair). */
export function addSums(a: PairSums, b: PairSums): PairSums {
  a.runs += b.runs;
  a.errors += b.errors;
  a.items += b.items;
  a.agree += b.agree;
  a.flaggedServing += b.flaggedServing;
  a.flaggedShadow += b.flaggedShadow;
  a.latencyMs += b.latencyMs;
  for (const [label, v] of Object.entries(b.absDiff)) a.absDiff[label] = (a.absDiff[label] ?? 0) + v;
  b.latency.forEach((n, i) => {
    a.latency[i] = (a.latency[i] ?? 0) + n;
  });
  return a;
}

/** An observation as sums of its pair (one run or one error). */
export function observationSums(o: ShadowObservation): PairSums {
  const sums = emptySums(o.shadow, o.serving);
  sums.runs = 1 - o.error;
  sums.errors = o.error;
  sums.items = o.items;
  sums.agree = o.agree;
  sums.flaggedServing = o.flaggedServing;
  sums.flaggedShadow = o.flaggedShadow;
  sums.latencyMs = o.latencyMs;
  sums.absDiff = { ...o.absDiff };
  if (o.error === 0) sums.latency[latencyBin(o.latencyMs)] = 1;
  return sums;
}

/** Observations summed per (shadow, serving) pair: what one delivery to a shard carries. */
export function sumObservations(observations: readonly ShadowObservation[]): PairSums[] {
  const pairs = new Map<string, PairSums>();
  for (const o of observations) {
    const key = `${o.shadow}\n${o.serving}`;
    const sums = observationSums(o);
    const seen = pairs.get(key);
    pairs.set(key, seen ? addSums(seen, sums) : sums);
  }
  return [...pairs.values()];
}

/** A comparison as `GET /api/v1/models/:id/shadow` shows it. */
export interface ComparisonView {
  serving_version: string;
  /** Sampled requests the shadow scored (or failed on). */
  requests: number;
  /** Inputs compared (a batch request has several). */
  items: number;
  top1_agreement: number | null;
  mean_abs_diff: Record<string, number>;
  flagged_rate: { serving: number; shadow: number } | null;
  flagged_rate_diff: number | null;
  latency_ms: { mean: number; p50: number; p95: number; p99: number } | null;
  errors: number;
}

const round = (x: number, digits = 6): number => Number(x.toFixed(digits));

/** The view of a pair's summed rows. */
export function comparisonView(sums: PairSums): ComparisonView {
  const { items } = sums;
  const rate = (n: number) => (items === 0 ? null : round(n / items));
  const q = percentiles(sums.latency);
  return {
    serving_version: sums.serving,
    requests: sums.runs + sums.errors,
    items,
    top1_agreement: rate(sums.agree),
    mean_abs_diff: Object.fromEntries(
      Object.entries(sums.absDiff).map(([label, v]) => [label, items === 0 ? 0 : round(v / items)]),
    ),
    flagged_rate:
      items === 0
        ? null
        : { serving: round(sums.flaggedServing / items), shadow: round(sums.flaggedShadow / items) },
    flagged_rate_diff: rate(sums.flaggedShadow - sums.flaggedServing),
    latency_ms:
      sums.runs === 0 || q === null
        ? null
        : { mean: round(sums.latencyMs / sums.runs, 2), p50: q.p50, p95: q.p95, p99: q.p99 },
    errors: sums.errors,
  };
}
