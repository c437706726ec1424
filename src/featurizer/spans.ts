/**
 * The featurizer's n-grams with where they come from in the input text (explanations, issue #31).
 * `ngramOccurrences` enumerates exactly the n-grams `featurize` hashes (same normalisation, same
 * word and character n-grams, same hash and bucket) and gives each occurrence its span in the
 * ORIGINAL text as `[start, end)` UTF-16 code-unit offsets (what `String.prototype.slice` and
 * JavaScript clients use).
 *
 * Mapping normalised text back to the input: the input is cut into segments (a code point with
 * its combining marks), each is normalised on its own (NFKC + lowercase), and the concatenation is
 * checked against the normalisation of the whole text; when it differs (NFKC composing across
 * segments, e.g. Hangul jamo, or a context-dependent lowercase), whitespace-separated runs are used
 * instead, and as a last resort the whole text is one segment. A normalised character maps to its
 * whole segment, so a span always covers the input characters that produced the n-gram (a ligature
 * "ﬁ" normalised to "fi" gives "f" and "i" the span of "ﬁ"). Character n-grams include the
 * padding space of their chunk (`char_wb`): the padding has no input characters, so the span of
 * " ab" is that of "ab".
 */
import { bucketLayout, murmur3Bytes, normalizeText, type TextFeaturizerSpec } from "./text";

/** One occurrence of an n-gram the featurizer hashed. */
export interface NgramOccurrence {
  /** The n-gram as hashed: normalised words joined by one space, or padded chunk characters. */
  ngram: string;
  kind: "word" | "char";
  /** Its bucket in the model's input (the id `featurize` gives it). */
  bucket: number;
  /** UTF-16 offsets into the original text, `[start, end)`. */
  start: number;
  end: number;
}

/** The occurrences of one text as parallel arrays (the explanation's hot path builds no objects). */
export interface Occurrences {
  count: number;
  /** 0: word n-gram, 1: character n-gram. */
  kind: Uint8Array;
  bucket: Int32Array;
  /** UTF-16 offsets into the original text, `[start, end)`. */
  start: Int32Array;
  end: Int32Array;
  /** The n-gram as hashed is `sources[source[i]].slice(from[i], to[i])` (`ngramOf`, `sameNgram`). */
  sources: string[];
  source: Int32Array;
  from: Int32Array;
  to: Int32Array;
}

/** The n-gram of occurrence `i`. */
export function ngramOf(o: Occurrences, i: number): string {
  return (o.sources[o.source[i] as number] as string).slice(o.from[i], o.to[i]);
}

/** Whether occurrences `a` and `b` are the same n-gram (kind and text), without building strings. */
export function sameNgram(o: Occurrences, a: number, b: number): boolean {
  if (o.kind[a] !== o.kind[b]) return false;
  const fa = o.from[a] as number;
  const fb = o.from[b] as number;
  const len = (o.to[a] as number) - fa;
  if ((o.to[b] as number) - fb !== len) return false;
  const sa = o.sources[o.source[a] as number] as string;
  const sb = o.sources[o.source[b] as number] as string;
  for (let k = 0; k < len; k++) if (sa.charCodeAt(fa + k) !== sb.charCodeAt(fb + k)) return false;
  return true;
}

const WORD_RE = /[\p{L}\p{N}\p{M}_]+/gu;
const CHUNK_RE = /\S+/gu;
const MARK_SEGMENTS = /\p{M}+|\P{M}\p{M}*/gu;
const SPACE_SEGMENTS = /\s+|\S+/gu;

/** The normalised text plus, per UTF-16 unit of it, the original span it came from. */
interface Normalised {
  text: string;
  from: Int32Array;
  to: Int32Array;
}

/**
 * Largest scratch array kept between calls, in elements: a longer text gets arrays of its own (as
 * garbage after it), so one long text never pins megabytes in the isolate.
 */
const SCRATCH_KEEP = 1 << 15;

/** The offset arrays of `normaliseWithOffsets`, reused (valid until its next call). */
let fromScratch = new Int32Array(1024);
let toScratch = new Int32Array(1024);

/** `fromScratch` and `toScratch` with room for `n` units. */
function offsetArrays(n: number): { from: Int32Array; to: Int32Array } {
  if (n > fromScratch.length) {
    if (n > SCRATCH_KEEP) return { from: new Int32Array(n), to: new Int32Array(n) };
    fromScratch = new Int32Array(Math.min(SCRATCH_KEEP, Math.max(n, fromScratch.length * 2)));
    toScratch = new Int32Array(fromScratch.length);
  }
  return { from: fromScratch, to: toScratch };
}

function bySegments(text: string, target: string, segments: RegExp): Normalised | undefined {
  const { from, to } = offsetArrays(target.length);
  let out = "";
  for (const m of text.matchAll(segments)) {
    const piece = normalizeText(m[0]);
    const start = m.index;
    const end = start + m[0].length;
    if (out.length + piece.length > target.length) return undefined;
    for (let k = 0; k < piece.length; k++) {
      from[out.length + k] = start;
      to[out.length + k] = end;
    }
    out += piece;
  }
  return out === target ? { text: out, from, to } : undefined;
}

/**
 * Normalises `text` as `featurize` does, keeping where each normalised unit came from. The offset
 * arrays are scratch buffers, valid until the next call (at least `text.length` long).
 */
export function normaliseWithOffsets(text: string): Normalised {
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) ascii = text.charCodeAt(i) < 0x80;
  if (ascii) {
    // ASCII: NFKC is the identity and lowercasing keeps every offset.
    const { from, to } = offsetArrays(text.length);
    for (let i = 0; i < text.length; i++) {
      from[i] = i;
      to[i] = i + 1;
    }
    return { text: text.toLowerCase(), from, to };
  }
  const target = normalizeText(text);
  return (
    bySegments(text, target, MARK_SEGMENTS) ??
    bySegments(text, target, SPACE_SEGMENTS) ?? {
      text: target,
      from: offsetArrays(target.length).from.fill(0, 0, target.length),
      to: offsetArrays(target.length).to.fill(text.length, 0, target.length),
    }
  );
}

/** UTF-8 bytes of one UTF-16 unit at `i` of `s` (a surrogate pair counts 4 on its high half, 0 on its low half; a lone surrogate 3, as U+FFFD). */
function utf8Units(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  if (c >= 0xd800 && c < 0xdc00) {
    const d = s.charCodeAt(i + 1);
    return d >= 0xdc00 && d < 0xe000 ? 4 : 3;
  }
  if (c >= 0xdc00 && c < 0xe000) {
    const b = s.charCodeAt(i - 1);
    return b >= 0xd800 && b < 0xdc00 ? 0 : 3;
  }
  return 3;
}

const encoder = new TextEncoder();
let bytes = new Uint8Array(1024);

/** `s` as UTF-8 in the module's scratch buffer (valid until the next call). */
function encode(s: string): Uint8Array {
  if (s.length * 3 > bytes.length) bytes = new Uint8Array(Math.max(s.length * 3, bytes.length * 2));
  return bytes.subarray(0, encoder.encodeInto(s, bytes).written);
}

/** Per-code-point offsets of a padded chunk (reused; `occurrencesOf` is synchronous). */
let unitScratch = new Int32Array(256);
let byteScratch = new Int32Array(256);

/** Growable parallel arrays of occurrences (one, reused: see `occurrencesOf`). */
class Builder {
  count = 0;
  kind = new Uint8Array(256);
  bucket = new Int32Array(256);
  start = new Int32Array(256);
  end = new Int32Array(256);
  source = new Int32Array(256);
  from = new Int32Array(256);
  to = new Int32Array(256);
  sources: string[] = [];
  push(kind: number, bucket: number, start: number, end: number, from: number, to: number): void {
    if (this.count === this.bucket.length) {
      const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      const kinds = new Uint8Array(this.kind.length * 2);
      kinds.set(this.kind);
      this.kind = kinds;
      this.bucket = grow(this.bucket);
      this.start = grow(this.start);
      this.end = grow(this.end);
      this.source = grow(this.source);
      this.from = grow(this.from);
      this.to = grow(this.to);
    }
    const i = this.count++;
    this.kind[i] = kind;
    this.bucket[i] = bucket;
    this.start[i] = start;
    this.end[i] = end;
    this.source[i] = this.sources.length - 1;
    this.from[i] = from;
    this.to[i] = to;
  }
}

/** The builder `occurrencesOf` reuses (replaced after a text that grew it past `SCRATCH_KEEP`). */
let builder = new Builder();

/**
 * Every n-gram occurrence `featurize(text, spec)` hashes, in the featurizer's order (word n-grams
 * by order then position, then character n-grams chunk by chunk), with its bucket and input span.
 * Hashed as `featurize` hashes (byte ranges of one UTF-8 buffer), so the buckets, counted, are
 * exactly the ones `featurize` counts (test/explain.test.ts checks it). The arrays are scratch
 * buffers reused by the next call (the explanation reads them synchronously; `ngramOccurrences`
 * copies them), and may be longer than `count`.
 */
export function occurrencesOf(text: string, spec: TextFeaturizerSpec): Occurrences {
  const { mask, charOffset } = bucketLayout(spec);
  const norm = normaliseWithOffsets(text);
  const { from, to } = norm;
  const out = builder;
  out.count = 0;
  out.sources = [];

  if (spec.word_ngrams) {
    const [lo, hi] = spec.word_ngrams;
    const words = [...norm.text.matchAll(WORD_RE)];
    const w = words.length;
    if (w > 0) {
      const joined = words.map((m) => m[0]).join(" ");
      out.sources.push(joined);
      const buf = encode(joined);
      // Unit and byte offsets of each word's start in `joined`, plus a sentinel past a virtual space.
      const unit = new Int32Array(w + 1);
      const byte = new Int32Array(w + 1);
      for (let i = 0; i < w; i++) {
        const word = (words[i] as RegExpExecArray)[0];
        let b = 0;
        for (let k = 0; k < word.length; k++) b += utf8Units(word, k);
        unit[i + 1] = (unit[i] as number) + word.length + 1;
        byte[i + 1] = (byte[i] as number) + b + 1;
      }
      for (let n = lo; n <= hi; n++) {
        for (let i = 0; i + n <= w; i++) {
          const first = words[i] as RegExpExecArray;
          const last = words[i + n - 1] as RegExpExecArray;
          const h = murmur3Bytes(buf, byte[i] as number, (byte[i + n] as number) - 1, spec.seed);
          out.push(
            0,
            h & mask,
            from[first.index] as number,
            to[last.index + last[0].length - 1] as number,
            unit[i] as number,
            (unit[i + n] as number) - 1,
          );
        }
      }
    }
  }
  if (spec.char_ngrams) {
    const [lo, hi] = spec.char_ngrams;
    const seed = spec.seed + 1;
    for (const chunk of norm.text.matchAll(CHUNK_RE)) {
      const c = chunk[0];
      const padded = ` ${c} `;
      out.sources.push(padded);
      const buf = encode(padded);
      // Unit and byte offsets of every code point of the padded chunk, plus a sentinel.
      if (padded.length + 1 > unitScratch.length) {
        unitScratch = new Int32Array(padded.length * 2);
        byteScratch = new Int32Array(padded.length * 2);
      }
      const unit = unitScratch;
      const byte = byteScratch;
      let u = 0;
      let b = 0;
      let len = 0; // code points of " chunk "
      for (let k = 0; k < padded.length; k++) {
        const size = utf8Units(padded, k);
        const width = size === 4 ? 2 : 1;
        u += width;
        b += size;
        if (width === 2) k++;
        len++;
        unit[len] = u;
        byte[len] = b;
      }
      const base = chunk.index - 1; // normalised offset of padded unit 0 (the virtual space)
      const first = chunk.index;
      const lastUnit = chunk.index + c.length - 1;
      for (let n = lo; n <= hi && n <= len; n++) {
        for (let i = 0; i + n <= len; i++) {
          const h = murmur3Bytes(buf, byte[i] as number, byte[i + n] as number, seed);
          const s = Math.max(first, base + (unit[i] as number));
          const e = Math.min(lastUnit, base + (unit[i + n] as number) - 1);
          out.push(
            1,
            charOffset + (h & mask),
            from[s] as number,
            to[e] as number,
            unit[i] as number,
            unit[i + n] as number,
          );
        }
      }
    }
  }
  // Grown past what is kept: the caller holds these arrays, the next call gets a fresh builder.
  if (out.bucket.length > SCRATCH_KEEP) builder = new Builder();
  const { count, kind, bucket, start, end, sources, source } = out;
  return { count, kind, bucket, start, end, sources, source, from: out.from, to: out.to };
}

/** `occurrencesOf` as objects (tests, tools). */
export function ngramOccurrences(text: string, spec: TextFeaturizerSpec): NgramOccurrence[] {
  const o = occurrencesOf(text, spec);
  return Array.from({ length: o.count }, (_, i) => ({
    ngram: ngramOf(o, i),
    kind: o.kind[i] === 0 ? ("word" as const) : ("char" as const),
    bucket: o.bucket[i] as number,
    start: o.start[i] as number,
    end: o.end[i] as number,
  }));
}

/** Word tokens of `text` (normalised as the featurizer does) with their input spans. */
export function wordOccurrences(text: string): { word: string; start: number; end: number }[] {
  const norm = normaliseWithOffsets(text);
  return [...norm.text.matchAll(WORD_RE)].map((m) => ({
    word: m[0],
    start: norm.from[m.index] as number,
    end: norm.to[m.index + m[0].length - 1] as number,
  }));
}
