/**
 * Input/output profiles of a model version and the population stability index (PSI) between two of
 * them (docs/drift.md). Pure: the training script, the profiling script, the training jobs, the
 * upload, the live collection in the Worker and the drift read all use these functions, so a
 * reference and a live profile always have the same bins.
 *
 * A profile is a set of named histograms ("signals") with fixed bins:
 * - `score:<label>`: the label's score, `SCORE_BINS` equal bins over [0, 1] (at most
 *   `MAX_PROFILED_LABELS` labels, the manifest's first);
 * - text models: `length` (characters, log2 bins: bin b holds lengths in [2^b, 2^(b+1)), bin 0 also
 *   0) and, for hashed n-gram models, `buckets` (the input's distinct hashed features, grouped into
 *   `BUCKET_GROUPS` contiguous groups of the featurizer's buckets);
 * - image models: `pixels` (width × height of the image as sent, log2 bins) and `brightness` (mean
 *   luma of the decoded pixels, `BRIGHTNESS_BINS` equal bins over [0, 256)).
 */

import * as z from "zod";

/** Equal-width bins of each label's score over [0, 1]. */
export const SCORE_BINS = 20;
/** Log2 bins of the text length in characters (UTF-16 units); the last bin holds everything longer. */
export const LENGTH_BINS = 16;
/** Coarse groups of the featurizer's hash buckets (bucket `i` of `n` is in group `⌊i · 64 / n⌋`). */
export const BUCKET_GROUPS = 64;
/** Log2 bins of an image's pixel count; the last bin holds everything larger. */
export const PIXEL_BINS = 28;
/** Equal-width bins of an image's mean luma over [0, 256). */
export const BRIGHTNESS_BINS = 16;
/** Only the first this many labels get a score histogram (bounds a profile of a many-label model). */
export const MAX_PROFILED_LABELS = 32;
/** At most this many pixels are read for the brightness of one image (evenly strided). */
export const BRIGHTNESS_SAMPLES = 4096;

/** The PSI at or above which a signal (and the model's drift status) is a warning. */
export const PSI_WARNING = 0.2;
/** Share given to an empty bin (on either side) so PSI stays finite; the other shares are not rescaled. */
export const PSI_EPSILON = 1e-4;
/** An hour with fewer scored inputs than this reports no PSI (too few to tell drift from noise). */
export const MIN_DRIFT_COUNT = 100;

/** Histograms by signal name. */
export type Signals = Record<string, number[]>;

/** Profile format version (bump when a bin definition changes). */
export const PROFILE_FORMAT = 1;

/** A model version's reference profile, as stored next to its manifest (`r2Keys.profile`). */
export interface ReferenceProfile {
  format: typeof PROFILE_FORMAT;
  model: { id: string; version: string };
  kind: "text" | "image";
  /** Where the inputs came from, e.g. "train split of toxicity/jigsaw_multilabel.csv.gz (…)". */
  source: string;
  created_at: string;
  /** Inputs profiled. */
  count: number;
  signals: Signals;
  /**
   * `baseline`: taken from the version's own live inputs (src/drift/baseline.ts), not from its
   * training inputs; absent (or `training`) for training, profiling-script and uploaded profiles.
   */
  origin?: "training" | "baseline";
  /** A baseline's live hours: `start` inclusive, `end` exclusive (UTC hour starts). */
  window?: { start: string; end: string };
}

/** Label names that get a score histogram. */
export function profiledLabels(labels: readonly string[]): readonly string[] {
  return labels.slice(0, MAX_PROFILED_LABELS);
}

/** Bin of `x` (≥ 0) on log2 bins: ⌊log2 x⌋ clamped to [0, bins − 1] (0 and 1 both in bin 0). */
export function log2Bin(x: number, bins: number): number {
  if (!(x >= 2)) return 0;
  return Math.min(bins - 1, Math.floor(Math.log2(x)));
}

/** Bin of a score in [0, 1] (values outside are clamped; NaN goes to bin 0). */
export function scoreBin(score: number): number {
  if (!(score > 0)) return 0;
  return Math.min(SCORE_BINS - 1, Math.floor(score * SCORE_BINS));
}

function add(signals: Signals, name: string, bins: number, bin: number, n = 1): void {
  let h = signals[name];
  if (!h) {
    h = new Array<number>(bins).fill(0);
    signals[name] = h;
  }
  h[bin] = (h[bin] as number) + n;
}

/** Adds each input's scores (one vector per input, label order) to `signals`. */
export function observeScores(
  signals: Signals,
  labels: readonly string[],
  scores: readonly ArrayLike<number>[],
): void {
  const n = Math.min(labels.length, MAX_PROFILED_LABELS);
  for (const row of scores) {
    for (let i = 0; i < n; i++) add(signals, `score:${labels[i]}`, SCORE_BINS, scoreBin(row[i] as number));
  }
}

/**
 * Adds one text to `signals`: its length, and (hashed n-gram models) its distinct feature ids
 * (`ids`, bucket numbers below `buckets`) grouped into `BUCKET_GROUPS`.
 */
export function observeText(
  signals: Signals,
  text: string,
  features?: { ids: ArrayLike<number>; buckets: number },
): void {
  add(signals, "length", LENGTH_BINS, log2Bin(text.length, LENGTH_BINS));
  if (!features) return;
  let h = signals.buckets;
  if (!h) {
    h = new Array<number>(BUCKET_GROUPS).fill(0);
    signals.buckets = h;
  }
  const scale = BUCKET_GROUPS / features.buckets;
  const { ids } = features;
  for (let i = 0; i < ids.length; i++) {
    const g = Math.min(BUCKET_GROUPS - 1, Math.floor((ids[i] as number) * scale));
    h[g] = (h[g] as number) + 1;
  }
}

/** Mean luma (BT.601: 0.299 R + 0.587 G + 0.114 B; gray as is) of at most `BRIGHTNESS_SAMPLES` pixels. */
export function meanLuma(image: {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}): number {
  const pixels = image.width * image.height;
  if (pixels === 0) return 0;
  const step = Math.max(1, Math.floor(pixels / BRIGHTNESS_SAMPLES));
  const c = image.channels;
  const d = image.data;
  let sum = 0;
  let n = 0;
  for (let p = 0; p < pixels; p += step) {
    const o = p * c;
    sum +=
      c >= 3
        ? 0.299 * (d[o] as number) + 0.587 * (d[o + 1] as number) + 0.114 * (d[o + 2] as number)
        : (d[o] as number);
    n++;
  }
  return sum / n;
}

/** Adds one image to `signals`: its pixel count as sent (`width × height`) and its mean luma. */
export function observeImage(signals: Signals, width: number, height: number, luma: number): void {
  add(signals, "pixels", PIXEL_BINS, log2Bin(width * height, PIXEL_BINS));
  add(
    signals,
    "brightness",
    BRIGHTNESS_BINS,
    Math.min(BRIGHTNESS_BINS - 1, Math.max(0, Math.floor(luma / (256 / BRIGHTNESS_BINS)))),
  );
}

/** Adds `from` into `into` (bin by bin; a signal only `from` has is copied). */
export function addSignals(into: Signals, from: Signals): Signals {
  for (const [name, bins] of Object.entries(from)) {
    const h = into[name];
    if (!h) into[name] = [...bins];
    else for (let i = 0; i < bins.length; i++) h[i] = (h[i] ?? 0) + (bins[i] as number);
  }
  return into;
}

/**
 * Population stability index of `actual` against `expected` (two histograms with the same bins):
 * Σ (a − e) · ln(a / e) over the bins' shares, an empty bin's share taken as `PSI_EPSILON`.
 * 0 for identical shares; null when either side is empty.
 */
export function psi(expected: readonly number[], actual: readonly number[]): number | null {
  const te = expected.reduce((s, v) => s + v, 0);
  const ta = actual.reduce((s, v) => s + v, 0);
  if (te <= 0 || ta <= 0) return null;
  let sum = 0;
  const bins = Math.max(expected.length, actual.length);
  for (let i = 0; i < bins; i++) {
    const e = Math.max((expected[i] ?? 0) / te, PSI_EPSILON);
    const a = Math.max((actual[i] ?? 0) / ta, PSI_EPSILON);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** PSI of every signal both profiles have, rounded to 4 decimals. */
export function psiBySignal(reference: Signals, live: Signals): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(reference).sort()) {
    const live_ = live[name];
    if (!live_) continue;
    const value = psi(reference[name] as number[], live_);
    if (value !== null) out[name] = Math.round(value * 10_000) / 10_000;
  }
  return out;
}

/**
 * A reference profile built from inputs and the model's scores on them (training split, a sample):
 * `texts` with their featurized ids (`buckets` of the featurizer; omit for raw-text models), or
 * `images` as sent (width, height) with their mean luma.
 */
export function buildProfile(args: {
  model: { id: string; version: string };
  source: string;
  labels: readonly string[];
  scores: readonly ArrayLike<number>[];
  texts?: readonly { text: string; ids?: ArrayLike<number> }[];
  buckets?: number;
  images?: readonly { width: number; height: number; luma: number }[];
  now?: Date;
}): ReferenceProfile {
  const signals: Signals = {};
  observeScores(signals, args.labels, args.scores);
  for (const t of args.texts ?? []) {
    observeText(signals, t.text, t.ids && args.buckets ? { ids: t.ids, buckets: args.buckets } : undefined);
  }
  for (const i of args.images ?? []) observeImage(signals, i.width, i.height, i.luma);
  return {
    format: PROFILE_FORMAT,
    model: args.model,
    kind: args.images ? "image" : "text",
    source: args.source,
    created_at: (args.now ?? new Date()).toISOString(),
    count: args.scores.length,
    signals,
  };
}

/** Largest profile accepted (an upload's `profile` part, an R2 object): a few KB in practice. */
export const MAX_PROFILE_BYTES = 64 * 1024;

const histogram = z.array(z.number().finite().nonnegative()).min(1).max(BUCKET_GROUPS);

/** A reference profile as stored or uploaded (bounded: `MAX_PROFILED_LABELS` + 4 signals of ≤ 64 bins). */
export const referenceProfileSchema = z.strictObject({
  format: z.literal(PROFILE_FORMAT),
  model: z.object({ id: z.string(), version: z.string() }),
  kind: z.enum(["text", "image"]),
  source: z.string().max(500),
  created_at: z.string().max(40),
  count: z.number().int().nonnegative(),
  signals: z
    .record(z.string().max(200), histogram)
    .refine((s) => Object.keys(s).length <= MAX_PROFILED_LABELS + 4, "too many signals"),
  origin: z.enum(["training", "baseline"]).optional(),
  window: z.strictObject({ start: z.string().max(40), end: z.string().max(40) }).optional(),
});

/** The bins each signal name must have for a model of `kind` with `labels`; undefined for an unknown name. */
export function signalBins(
  name: string,
  kind: "text" | "image",
  labels: readonly string[],
): number | undefined {
  if (name.startsWith("score:"))
    return profiledLabels(labels).includes(name.slice(6)) ? SCORE_BINS : undefined;
  if (kind === "text")
    return name === "length" ? LENGTH_BINS : name === "buckets" ? BUCKET_GROUPS : undefined;
  return name === "pixels" ? PIXEL_BINS : name === "brightness" ? BRIGHTNESS_BINS : undefined;
}

/**
 * Why `profile` cannot be the reference of a `kind` model with `labels` (a signal it would never
 * collect, or with other bins), or undefined when it can.
 */
export function profileProblem(
  profile: ReferenceProfile,
  kind: "text" | "image",
  labels: readonly string[],
): string | undefined {
  if (profile.kind !== kind) return `profile.kind is '${profile.kind}'; the model takes ${kind} input`;
  for (const [name, bins] of Object.entries(profile.signals)) {
    const want = signalBins(name, kind, labels);
    if (want === undefined) return `profile.signals.${name}: not a signal of this model`;
    if (bins.length !== want) return `profile.signals.${name}: ${bins.length} bins; expected ${want}`;
  }
  return undefined;
}
