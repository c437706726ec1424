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
import { murmur3, normalizeText, type TextFeaturizerSpec } from "./text";

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

function bySegments(text: string, target: string, segments: RegExp): Normalised | undefined {
  const from = new Int32Array(target.length);
  const to = new Int32Array(target.length);
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

/** Normalises `text` as `featurize` does, keeping where each normalised unit came from. */
export function normaliseWithOffsets(text: string): Normalised {
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) ascii = text.charCodeAt(i) < 0x80;
  if (ascii) {
    // ASCII: NFKC is the identity and lowercasing keeps every offset.
    const from = new Int32Array(text.length);
    const to = new Int32Array(text.length);
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
      from: new Int32Array(target.length),
      to: new Int32Array(target.length).fill(text.length),
    }
  );
}

/**
 * Every n-gram occurrence `featurize(text, spec)` hashes, in the featurizer's order (word n-grams
 * by order then position, then character n-grams chunk by chunk), with its bucket and input span.
 * The buckets, counted, are exactly the ones `featurize` counts (test/explain.test.ts checks it).
 */
export function ngramOccurrences(text: string, spec: TextFeaturizerSpec): NgramOccurrence[] {
  const blocks = spec.norm === "l2-blocks";
  const half = spec.buckets >>> 1;
  const mask = (blocks ? half : spec.buckets) - 1;
  const charOffset = blocks ? half : 0;
  const norm = normaliseWithOffsets(text);
  const out: NgramOccurrence[] = [];
  const startOf = (i: number) => norm.from[i] as number;
  const endOf = (i: number) => norm.to[i - 1] as number; // i: exclusive end in normalised units

  if (spec.word_ngrams) {
    const [lo, hi] = spec.word_ngrams;
    const words = [...norm.text.matchAll(WORD_RE)];
    for (let n = lo; n <= hi; n++) {
      for (let i = 0; i + n <= words.length; i++) {
        const first = words[i] as RegExpExecArray;
        const last = words[i + n - 1] as RegExpExecArray;
        const ngram = words
          .slice(i, i + n)
          .map((w) => w[0])
          .join(" ");
        out.push({
          ngram,
          kind: "word",
          bucket: murmur3(ngram, spec.seed) & mask,
          start: startOf(first.index),
          end: endOf(last.index + last[0].length),
        });
      }
    }
  }
  if (spec.char_ngrams) {
    const [lo, hi] = spec.char_ngrams;
    const seed = spec.seed + 1;
    for (const chunk of norm.text.matchAll(CHUNK_RE)) {
      // Code points of " chunk " with their normalised offsets; the padding is zero-width at the edges.
      const cps = [" "];
      const cpFrom = [chunk.index];
      const cpTo = [chunk.index];
      let at = chunk.index;
      for (const c of chunk[0]) {
        cps.push(c);
        cpFrom.push(at);
        at += c.length;
        cpTo.push(at);
      }
      cps.push(" ");
      cpFrom.push(at);
      cpTo.push(at);
      const len = cps.length;
      for (let n = lo; n <= hi && n <= len; n++) {
        for (let i = 0; i + n <= len; i++) {
          const ngram = cps.slice(i, i + n).join("");
          out.push({
            ngram,
            kind: "char",
            bucket: charOffset + (murmur3(ngram, seed) & mask),
            start: startOf(cpFrom[i] as number),
            end: endOf(cpTo[i + n - 1] as number),
          });
        }
      }
    }
  }
  return out;
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
