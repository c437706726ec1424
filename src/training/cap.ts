/**
 * Issue #28's weight cap for linear hashed n-gram models: limits what a single identity or address
 * token can carry by changing only **positive** weights (on every label) in the hashed buckets of:
 *
 * - identity: the word unigram of each word of each augmentation term (`augmentTerms()` of
 *   `fairness-augment.ts`, so never the evaluation's held-out terms), the word bigram of two-word
 *   terms, and the character 4- and 5-grams of " word " — set to 0;
 * - address: the same for "you", "your", "u", "ur", "yourself" and the word bigrams "you are",
 *   "you re", "are a", "are an" — multiplied by a scale (version 5: 0.5).
 *
 * Negative weights stay (a token may still count against a label); scales and bias stay, so a text
 * without these n-grams scores exactly as before. Chosen in two rounds on train data only
 * (scripts/cap-identity.ts, the toxicity card).
 */
import {
  bucketLayout,
  CHUNK_RE,
  murmur3,
  normalizeText,
  type TextFeaturizerSpec,
  wordTokens,
} from "../featurizer/text";
import { augmentTerms } from "./fairness-augment";
import type { Int8LinearModel } from "./linear-model";

export const ADDRESS_WORDS = ["you", "your", "u", "ur", "yourself"];
export const ADDRESS_BIGRAMS = ["you are", "you re", "are a", "are an"];

/** The buckets of `words`' unigrams and character 4/5-grams of " word ", and of `bigrams`. */
export function bucketsOf(
  spec: TextFeaturizerSpec,
  words: readonly string[],
  bigrams: readonly string[],
): Set<number> {
  const { mask } = bucketLayout(spec);
  const out = new Set<number>();
  for (const g of [...words, ...bigrams]) out.add(murmur3(g, spec.seed) & mask);
  for (const word of words) addCharBuckets(spec, word, 4, 5, out);
  return out;
}

/** Adds the buckets of the character n-grams (lengths `lo`..`hi`) of " chunk ", as the featurizer hashes them. */
function addCharBuckets(
  spec: TextFeaturizerSpec,
  chunk: string,
  lo: number,
  hi: number,
  out: Set<number>,
): void {
  const { mask, charOffset } = bucketLayout(spec);
  const padded = [...` ${chunk} `];
  for (let n = lo; n <= hi; n++)
    for (let i = 0; i + n <= padded.length; i++)
      out.add(charOffset + (murmur3(padded.slice(i, i + n).join(""), spec.seed + 1) & mask));
}

/** Each augmentation term (`augmentTerms()`, never the evaluation's held-out ones) as its lower-case words. */
const termWords = (): string[][] => augmentTerms().map((term) => term.toLowerCase().split(/[\s-]+/));

/** The identity words of the cap (and of `--mask-identity`): the augmentation terms' words of ≥ 2 letters. */
export function identityWords(): string[] {
  return termWords().flatMap((parts) => parts.filter((p) => p.length >= 2));
}

/**
 * The word-bigram buckets of `text` whose bigram contains one of `words` (issue #28's
 * `--mask-identity=bigrams`: the bigrams "are gay", "gay people" that carry a word's lean once the
 * word itself is masked). Same tokens and hash as the featurizer's word n-grams.
 */
export function identityBigramBuckets(
  text: string,
  spec: TextFeaturizerSpec,
  words: ReadonlySet<string>,
): Set<number> {
  const out = new Set<number>();
  if (!spec.word_ngrams || spec.word_ngrams[0] > 2 || spec.word_ngrams[1] < 2) return out;
  const { mask } = bucketLayout(spec);
  const tokens = wordTokens(normalizeText(text));
  for (let i = 0; i + 1 < tokens.length; i++) {
    const a = tokens[i] as string;
    const b = tokens[i + 1] as string;
    if (words.has(a) || words.has(b)) out.add(murmur3(`${a} ${b}`, spec.seed) & mask);
  }
  return out;
}

/**
 * The character n-gram buckets (the featurizer's lengths, of " chunk ") of each whitespace chunk of
 * `text` whose letters are exactly one of `words` or that word + "s" ("gay", "gay.", "(gay)",
 * "gays"): issue #28's `--mask-identity=chunks`, since a masked word's lean moves into its 2/3-grams
 * and punctuated forms. Same normalization, chunks and hash as the featurizer.
 */
export function identityChunkBuckets(
  text: string,
  spec: TextFeaturizerSpec,
  words: ReadonlySet<string>,
): Set<number> {
  const out = new Set<number>();
  if (!spec.char_ngrams) return out;
  const [lo, hi] = spec.char_ngrams;
  for (const chunk of normalizeText(text).match(CHUNK_RE) ?? []) {
    const letters = chunk.replace(/[^\p{L}\p{N}]/gu, "");
    if (!(words.has(letters) || (letters.endsWith("s") && words.has(letters.slice(0, -1))))) continue;
    addCharBuckets(spec, chunk, lo, hi, out);
  }
  return out;
}

/** The cap's buckets for `identity` and/or `address`. */
export function capBuckets(
  spec: TextFeaturizerSpec,
  opts: { identity: boolean; address: boolean },
): Set<number> {
  const words: string[] = [];
  const bigrams: string[] = [];
  if (opts.identity) {
    words.push(...identityWords());
    for (const parts of termWords()) if (parts.length === 2) bigrams.push(parts.join(" "));
  }
  if (opts.address) {
    words.push(...ADDRESS_WORDS);
    bigrams.push(...ADDRESS_BIGRAMS);
  }
  return bucketsOf(spec, words, bigrams);
}

/**
 * A copy of `model` whose positive weights in `buckets` are multiplied by `scale` (0: set to 0;
 * rounded to int8); `scale` is one factor for every column or one per column (1 leaves a column
 * as is). Counts the changed weights.
 */
export function capModel(
  model: Int8LinearModel,
  buckets: Set<number>,
  scale: number | readonly number[] = 0,
): { model: Int8LinearModel; changed: number } {
  const weights = Int8Array.from(model.weights);
  const C = model.columns;
  const scales = typeof scale === "number" ? new Array<number>(C).fill(scale) : scale;
  if (scales.length !== C) throw new Error(`capModel: ${scales.length} scales for ${C} columns`);
  let changed = 0;
  for (const b of buckets)
    for (let k = 0; k < C; k++) {
      const w = weights[b * C + k] as number;
      const f = scales[k] as number;
      if (w > 0 && f !== 1) {
        const v = Math.round(w * f);
        if (v !== w) changed++;
        weights[b * C + k] = v;
      }
    }
  return { model: { ...model, weights }, changed };
}

/**
 * Per label, the factors on positive weights in the identity and the address buckets. A label not
 * listed gets version 5's cap (identity 0, address the address scale); `{ identity: 1, address: 1 }`
 * leaves a label as is.
 */
export type LabelCap = Readonly<Record<string, { identity: number; address: number }>>;

/**
 * D: identity buckets' positive weights to 0; E(s): and the address buckets' scaled by `s`; with
 * `perLabel`, other factors for the listed labels (issue #28's candidates H and G, docs/models.md).
 */
export function capIdentityAndAddress(
  model: Int8LinearModel,
  addressScale?: number,
  perLabel: LabelCap = {},
): Int8LinearModel {
  for (const [label, f] of Object.entries(perLabel))
    if (
      !model.labels.includes(label) ||
      !(f.identity >= 0 && f.identity <= 1 && f.address >= 0 && f.address <= 1)
    )
      throw new Error(`cap: ${label} is not a label, or a factor is outside [0, 1]`);
  const columns = Array.from({ length: model.columns }, (_, k) => perLabel[model.labels[k] as string]);
  const identity = capModel(
    model,
    capBuckets(model.spec, { identity: true, address: false }),
    columns.map((f) => f?.identity ?? 0),
  ).model;
  if (addressScale === undefined) return identity;
  return capModel(
    identity,
    capBuckets(model.spec, { identity: false, address: true }),
    columns.map((f) => f?.address ?? addressScale),
  ).model;
}
