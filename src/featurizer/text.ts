/**
 * The one text featurizer: used by the trainer (Node and the Worker's training jobs) and by the
 * Worker's predict path. A shipped model records the spec it was trained with in its manifest, so
 * any change to the output of `featurize` for a given spec breaks shipped models: the golden
 * vectors in `test/featurizer.test.ts` exist to catch exactly that. Change behaviour only by adding
 * a new `version` and keeping the old one reproducible.
 *
 * Pipeline (version 1): Unicode NFKC → lowercase → word tokens (letters/digits/marks runs) →
 * word n-grams, plus character n-grams inside each whitespace-separated chunk padded with one space
 * on each side (scikit-learn's `char_wb`) → MurmurHash3 (x86, 32-bit, over UTF-8) into `buckets`
 * → per-bucket counts → tf transform → optional L2 normalisation.
 *
 * `norm: "l2-blocks"` keeps word and character features apart: word n-grams hash into the lower half
 * of the buckets, character n-grams into the upper half, and each half is L2-normalised on its own
 * (scikit-learn's FeatureUnion of two vectorizers). A linear model over it can weigh the two views
 * independently, so a word model and a character model averaged are still one linear model.
 */

/** Name of the only featurizer family this module implements. */
export const FEATURIZER_NAME = "hashed-ngrams";
/** Current featurizer version; bump when `featurize`'s output changes for an unchanged spec. */
export const FEATURIZER_VERSION = 1;

/** Parameters of the featurizer, stored in every model manifest. */
export interface TextFeaturizerSpec {
  name: typeof FEATURIZER_NAME;
  version: typeof FEATURIZER_VERSION;
  /** Number of hash buckets (the model's input width); a power of two. */
  buckets: number;
  /** Inclusive [min, max] word n-gram orders, e.g. [1, 2]; null disables word features. */
  word_ngrams: [number, number] | null;
  /** Inclusive [min, max] character n-gram lengths, e.g. [2, 5]; null disables them. */
  char_ngrams: [number, number] | null;
  /** MurmurHash3 seed. Word and character features use `seed` and `seed + 1`. */
  seed: number;
  /** Term-frequency transform: `binary` (1 if present) or `sublinear` (1 + ln count). */
  tf: "binary" | "sublinear";
  /** Normalisation: of the whole vector, or (`l2-blocks`) of the word and character halves apart. */
  norm: "l2" | "l2-blocks" | "none";
}

/** A sparse feature vector: strictly increasing bucket ids and their values. */
export interface SparseFeatures {
  ids: Int32Array;
  values: Float32Array;
}

const WORD_RE = /[\p{L}\p{N}\p{M}_]+/gu;
/** The chunks whose padded character n-grams are hashed: runs of non-space (punctuation kept). */
export const CHUNK_RE = /\S+/gu;

/** NFKC + lowercase: the normalisation every feature is computed on. */
export function normalizeText(text: string): string {
  return text.normalize("NFKC").toLowerCase();
}

/**
 * MurmurHash3 x86 32-bit of the UTF-8 encoding of `key` (lone surrogates encode as U+FFFD, as
 * `TextEncoder` does). The featurizer hashes byte ranges with `murmur3Bytes`; this is the same hash.
 */
export function murmur3(key: string, seed: number): number {
  const bytes = encoder.encode(key);
  return murmur3Bytes(bytes, 0, bytes.length, seed);
}

/** Word tokens of already-normalised text. */
export function wordTokens(normalized: string): string[] {
  return normalized.match(WORD_RE) ?? [];
}

const encoder = new TextEncoder();

/** MurmurHash3 x86 32-bit of `bytes[start, end)`; equals `murmur3` of the string those bytes encode. */
export function murmur3Bytes(bytes: Uint8Array, start: number, end: number, seed: number): number {
  let h = seed >>> 0;
  let k = 0;
  let i = start;
  const blocksEnd = start + ((end - start) & ~3);
  for (; i < blocksEnd; i += 4) {
    k =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = end - i;
  if (rest > 0) {
    k = 0;
    if (rest === 3) k ^= (bytes[i + 2] as number) << 16;
    if (rest >= 2) k ^= (bytes[i + 1] as number) << 8;
    k ^= bytes[i] as number;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= end - start;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Growable scratch buffer of hashed bucket ids (reused across calls; featurize is synchronous). */
let scratch = new Int32Array(4096);
/** Scratch for the UTF-8 bytes of the joined tokens or chunks and for their offsets (reused likewise). */
let byteScratch = new Uint8Array(1024);
let offsetScratch = new Int32Array(1024);

/** `scratch` with room for `extra` more ids after the first `count`. */
function reserve(count: number, extra: number): Int32Array {
  if (count + extra > scratch.length) {
    let size = scratch.length * 2;
    while (size < count + extra) size *= 2;
    const bigger = new Int32Array(size);
    bigger.set(scratch.subarray(0, count));
    scratch = bigger;
  }
  return scratch;
}

/** `offsetScratch` with room for `n` offsets. */
function offsets(n: number): Int32Array {
  if (n > offsetScratch.length) offsetScratch = new Int32Array(Math.max(n, offsetScratch.length * 2));
  return offsetScratch;
}

/**
 * The UTF-8 bytes of `text` (as `TextEncoder` encodes it) in `byteScratch`, which is only valid
 * until the next call: a view of its first bytes. ASCII is copied by a plain loop; anything else goes
 * through `encodeInto` (no new buffer either way).
 */
function utf8(text: string): Uint8Array {
  // At most 3 bytes per UTF-16 code unit.
  if (text.length * 3 > byteScratch.length) {
    byteScratch = new Uint8Array(Math.max(text.length * 3, byteScratch.length * 2));
  }
  const out = byteScratch;
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) break;
    out[i] = c;
  }
  if (i === text.length) return out.subarray(0, i);
  const { written } = encoder.encodeInto(text.slice(i), out.subarray(i));
  return out.subarray(0, i + written);
}

/**
 * Where n-grams hash (every user of the buckets reads it here): a word n-gram's bucket is
 * `murmur3(gram, seed) & mask`, a character n-gram's `charOffset + (murmur3(gram, seed + 1) & mask)`.
 * With `l2-blocks`, word ids fall in [0, half) and character ids in [half, buckets); otherwise both
 * use every bucket.
 */
export function bucketLayout(spec: TextFeaturizerSpec): {
  blocks: boolean;
  half: number;
  mask: number;
  charOffset: number;
} {
  const blocks = spec.norm === "l2-blocks";
  const half = spec.buckets >>> 1;
  return { blocks, half, mask: (blocks ? half : spec.buckets) - 1, charOffset: blocks ? half : 0 };
}

/**
 * Hashes `text` into a sparse vector as described in the module comment.
 *
 * Implementation: the word tokens are joined with single spaces and the whitespace chunks are joined
 * with single spaces and wrapped in one more space on each side, then each joined string is UTF-8
 * encoded once. Tokens and chunks contain no U+0020, so every word n-gram ("w1 w2") and every
 * padded-chunk character n-gram is a contiguous byte range of those buffers, hashed in place with
 * `murmur3Bytes` (identical to `murmur3` of the n-gram string, without building it).
 */
export function featurize(text: string, spec: TextFeaturizerSpec): SparseFeatures {
  const { blocks, half, mask, charOffset } = bucketLayout(spec);
  let count = 0;
  const normalized = normalizeText(text);

  if (spec.word_ngrams) {
    const [lo, hi] = spec.word_ngrams;
    const words = wordTokens(normalized);
    if (words.length > 0) {
      const bytes = utf8(words.join(" "));
      // Byte offset of each word's start, plus a sentinel one past the end (as if followed by a space).
      const starts = offsets(words.length + 1);
      starts[0] = 0;
      let w = 1;
      for (let b = 0; b < bytes.length; b++) if (bytes[b] === 0x20) starts[w++] = b + 1;
      starts[words.length] = bytes.length + 1;
      const ids = reserve(count, Math.max(0, hi - lo + 1) * words.length);
      for (let n = lo; n <= hi; n++) {
        for (let i = 0; i + n <= words.length; i++) {
          ids[count++] =
            murmur3Bytes(bytes, starts[i] as number, (starts[i + n] as number) - 1, spec.seed) & mask;
        }
      }
    }
  }
  if (spec.char_ngrams) {
    const [lo, hi] = spec.char_ngrams;
    const chunks = normalized.match(CHUNK_RE);
    if (chunks) {
      const bytes = utf8(` ${chunks.join(" ")} `);
      // Byte offset of every code point, plus a sentinel.
      const cp = offsets(bytes.length + 1);
      let ncp = 0;
      for (let b = 0; b < bytes.length; b++) if (((bytes[b] as number) & 0xc0) !== 0x80) cp[ncp++] = b;
      cp[ncp] = bytes.length;
      const seed = spec.seed + 1;
      // Each padded chunk of len code points has at most (hi − lo + 1) · len n-grams, and the chunks'
      // lengths add up to less than 2 · ncp (neighbours share their space).
      const ids = reserve(count, Math.max(0, hi - lo + 1) * 2 * ncp);
      // Each padded chunk runs from one space code point to the next one, both included.
      let first = 0;
      for (let c = 1; c < ncp; c++) {
        if (bytes[cp[c] as number] !== 0x20) continue;
        const len = c - first + 1; // code points of " chunk "
        for (let n = lo; n <= hi && n <= len; n++) {
          for (let i = first; i + n <= c + 1; i++) {
            ids[count++] =
              charOffset + (murmur3Bytes(bytes, cp[i] as number, cp[i + n] as number, seed) & mask);
          }
        }
        first = c;
      }
    }
  }

  const hashed = scratch.subarray(0, count).sort();
  let distinct = 0;
  for (let i = 0; i < count; i++) if (i === 0 || hashed[i] !== hashed[i - 1]) distinct++;
  const ids = new Int32Array(distinct);
  const values = new Float32Array(distinct);
  let sumSq = 0;
  let sumSqChar = 0;
  let j = -1;
  let run = 0;
  const flush = (): void => {
    const v = spec.tf === "binary" ? 1 : 1 + Math.log(run);
    values[j] = v;
    if (blocks && (ids[j] as number) >= half) sumSqChar += v * v;
    else sumSq += v * v;
  };
  for (let i = 0; i < count; i++) {
    const id = hashed[i] as number;
    if (j < 0 || id !== ids[j]) {
      if (j >= 0) flush();
      ids[++j] = id;
      run = 1;
    } else run++;
  }
  if (j >= 0) flush();
  if (spec.norm === "l2" && sumSq > 0) {
    const inv = 1 / Math.sqrt(sumSq);
    for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) * inv;
  } else if (blocks) {
    const invWord = sumSq > 0 ? 1 / Math.sqrt(sumSq) : 0;
    const invChar = sumSqChar > 0 ? 1 / Math.sqrt(sumSqChar) : 0;
    for (let i = 0; i < values.length; i++)
      values[i] = (values[i] as number) * ((ids[i] as number) >= half ? invChar : invWord);
  }
  return { ids, values };
}

/** A batch of texts as the model graph takes it: row-major `[rows, width]` arrays, zero-padded. */
export interface PaddedBatch {
  /** Bucket ids (int64 in the graph); padding is id 0. */
  ids: BigInt64Array;
  /** Feature values; padding is 0, so padded slots contribute nothing. */
  values: Float32Array;
  /** `[rows, width]`, width = the longest row (at least 1). */
  dims: [number, number];
}

/** Featurizes each text and packs the rows into the padded `ids`/`values` inputs of a model graph. */
export function featurizeBatch(texts: readonly string[], spec: TextFeaturizerSpec): PaddedBatch {
  return padRows(texts.map((t) => featurize(t, spec)));
}

/** Packs featurized rows into the padded `ids`/`values` inputs of a model graph. */
export function padRows(rows: readonly SparseFeatures[]): PaddedBatch {
  const width = Math.max(1, ...rows.map((f) => f.ids.length));
  const ids = new BigInt64Array(rows.length * width);
  const values = new Float32Array(rows.length * width);
  rows.forEach((f, row) => {
    const offset = row * width;
    for (let i = 0; i < f.ids.length; i++) ids[offset + i] = BigInt(f.ids[i] as number);
    values.set(f.values, offset);
  });
  return { ids, values, dims: [rows.length, width] };
}
