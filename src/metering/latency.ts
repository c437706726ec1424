/**
 * Latency histograms of the statistics (per API, in the `StatsShard` objects): log-spaced bins, four
 * per doubling (each bin's upper edge is 2^(1/4) ≈ 1.19 × the previous one), from 0.125 ms to about
 * an hour. Shards add bin counts; percentiles are read from the summed counts as the upper edge of
 * the bin holding the rank, so a reported percentile is at most 19 % above the true one.
 */

/** Number of bins: bin b holds latencies in (edge(b − 1), edge(b)]. */
export const LATENCY_BINS = 100;
const OFFSET = 12;

/** The bin of a latency in ms. */
export function latencyBin(ms: number): number {
  const b = Math.ceil(4 * Math.log2(Math.max(ms, 0.125))) + OFFSET;
  return Math.min(LATENCY_BINS - 1, Math.max(0, b));
}

/** Upper edge of bin `b`, in ms. */
export function binUpperMs(b: number): number {
  return 2 ** ((b - OFFSET) / 4);
}

/** p50, p95 and p99 of a histogram (counts per bin), in ms rounded to 0.01; null without calls. */
export function percentiles(
  counts: readonly number[],
): { p50: number; p95: number; p99: number; calls: number } | null {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return null;
  const at = (q: number): number => {
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let b = 0; b < counts.length; b++) {
      seen += counts[b] ?? 0;
      if (seen >= rank) return Math.round(binUpperMs(b) * 100) / 100;
    }
    return Math.round(binUpperMs(counts.length - 1) * 100) / 100;
  };
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), calls: total };
}

/** Element-wise sum of histograms (missing bins count 0). */
export function addHistograms(histograms: readonly (readonly number[])[]): number[] {
  const out = new Array<number>(LATENCY_BINS).fill(0);
  for (const h of histograms) for (let b = 0; b < LATENCY_BINS; b++) out[b] = (out[b] ?? 0) + (h[b] ?? 0);
  return out;
}
