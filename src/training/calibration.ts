/**
 * Calibration measures and threshold selection for probabilistic binary outputs: Brier score,
 * expected calibration error (equal-width bins), optionally with per-row weights, e.g. to reweight
 * a sample to another label prior (positives × π_new/π_sample, negatives × (1−π_new)/(1−π_sample)).
 */

import type { EncodedTargets } from "./trainer";

/** Row weights that move a 0/1 sample with positive rate `sample` to positive rate `target`. */
export function priorWeights(truth: ArrayLike<number>, sample: number, target: number): Float64Array {
  const wPos = target / sample;
  const wNeg = (1 - target) / (1 - sample);
  return Float64Array.from({ length: truth.length }, (_, i) => ((truth[i] as number) === 1 ? wPos : wNeg));
}

/** Weighted mean squared error of probabilities against 0/1 truth. */
export function brierScore(
  p: ArrayLike<number>,
  truth: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  let s = 0;
  let w = 0;
  for (let i = 0; i < p.length; i++) {
    const wi = weight ? (weight[i] as number) : 1;
    const d = (p[i] as number) - (truth[i] as number);
    s += wi * d * d;
    w += wi;
  }
  return s / w;
}

/**
 * Expected calibration error with `bins` equal-width bins over [0, 1]: Σ_bins (w_bin / w) ·
 * |mean p − mean truth| (weighted). A probability of exactly 1 falls in the last bin.
 */
export function expectedCalibrationError(
  p: ArrayLike<number>,
  truth: ArrayLike<number>,
  bins = 15,
  weight?: ArrayLike<number>,
): number {
  const sw = new Float64Array(bins);
  const sp = new Float64Array(bins);
  const sy = new Float64Array(bins);
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const wi = weight ? (weight[i] as number) : 1;
    const pi = p[i] as number;
    const b = Math.min(bins - 1, Math.floor(pi * bins));
    sw[b] = (sw[b] as number) + wi;
    sp[b] = (sp[b] as number) + wi * pi;
    sy[b] = (sy[b] as number) + wi * (truth[i] as number);
    total += wi;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    if ((sw[b] as number) > 0) ece += Math.abs((sp[b] as number) - (sy[b] as number)) / total;
  }
  return ece;
}

/**
 * The threshold t maximising the (weighted) F1 of `p ≥ t` against 0/1 truth; candidates are the
 * distinct scores. Returns the midpoint between the chosen score and the next lower one, so a small
 * drift in the scores does not flip the boundary row. NaN when there are no positives.
 */
export function bestF1Threshold(
  p: ArrayLike<number>,
  truth: ArrayLike<number>,
  weight?: ArrayLike<number>,
): { threshold: number; f1: number } {
  const n = p.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (p[b] as number) - (p[a] as number));
  let totalPos = 0;
  for (let i = 0; i < n; i++) if ((truth[i] as number) === 1) totalPos += weight ? (weight[i] as number) : 1;
  if (totalPos === 0) return { threshold: Number.NaN, f1: Number.NaN };
  let tp = 0;
  let fp = 0;
  let best = { threshold: 1, f1: 0 };
  for (let r = 0; r < n; r++) {
    const i = order[r] as number;
    const wi = weight ? (weight[i] as number) : 1;
    if ((truth[i] as number) === 1) tp += wi;
    else fp += wi;
    const next = order[r + 1];
    const here = p[i] as number;
    if (next !== undefined && (p[next] as number) === here) continue;
    const f1 = (2 * tp) / (2 * tp + fp + (totalPos - tp));
    if (f1 > best.f1) {
      const lower = next === undefined ? 0 : (p[next] as number);
      best = { threshold: (here + lower) / 2, f1 };
    }
  }
  return best;
}

/** Bootstrap standard deviation of `metric` over rows (deterministic LCG resampling). */
export function bootstrapSd(n: number, metric: (rows: Int32Array) => number, rounds = 200, seed = 1): number {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const values: number[] = [];
  const rows = new Int32Array(n);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) rows[i] = Math.floor(next() * n);
    const v = metric(rows);
    if (Number.isFinite(v)) values.push(v);
  }
  return standardDeviation(values, 1);
}

/** Standard deviation of `xs` with `ddof` delta degrees of freedom (1: the sample sd). */
export function standardDeviation(xs: readonly number[], ddof = 0): number {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - ddof));
}

/** Word-count bucket edges for `lengthBalancedWeights`: [0, 3), [3, 6), … [80, ∞). */
export const LENGTH_BUCKETS = [3, 6, 10, 20, 40, 80];

/**
 * Row weights that remove text length as a shortcut: within each word-count bucket, positives and
 * negatives of each column are reweighted so the bucket's weighted positive rate equals the
 * column's overall rate (the bucket rate is smoothed towards it with `pseudo` rows). Jigsaw's short
 * comments are ~45 % toxic against ~30 % overall, so without this a short benign text inherits a
 * toxic lean from its length alone. Returns `targets` with each known cell of the mask `m`
 * multiplied by its weight; unknown cells (0) stay 0.
 */
export function lengthBalancedWeights(
  wordCounts: ArrayLike<number>,
  targets: EncodedTargets,
  pseudo = 20,
): EncodedTargets {
  const { y, m, columns } = targets;
  const rows = wordCounts.length;
  const bucketOf = (n: number): number => {
    let b = 0;
    while (b < LENGTH_BUCKETS.length && n >= (LENGTH_BUCKETS[b] as number)) b++;
    return b;
  };
  const buckets = Int32Array.from({ length: rows }, (_, i) => bucketOf(wordCounts[i] as number));
  const out = Float64Array.from(m);
  const B = LENGTH_BUCKETS.length + 1;
  for (let k = 0; k < columns; k++) {
    const pos = new Float64Array(B);
    const all = new Float64Array(B);
    let totalPos = 0;
    let total = 0;
    for (let i = 0; i < rows; i++) {
      if ((m[i * columns + k] as number) <= 0) continue;
      const b = buckets[i] as number;
      const yi = y[i * columns + k] as number;
      pos[b] = (pos[b] as number) + yi;
      all[b] = (all[b] as number) + 1;
      totalPos += yi;
      total += 1;
    }
    if (total === 0 || totalPos === 0 || totalPos === total) continue;
    const rate = totalPos / total;
    for (let i = 0; i < rows; i++) {
      const j = i * columns + k;
      if ((m[j] as number) <= 0) continue;
      const b = buckets[i] as number;
      const r = ((pos[b] as number) + pseudo * rate) / ((all[b] as number) + pseudo);
      out[j] = (m[j] as number) * ((y[j] as number) === 1 ? rate / r : (1 - rate) / (1 - r));
    }
  }
  return { ...targets, m: out };
}
