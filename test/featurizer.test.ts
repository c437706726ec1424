import { describe, expect, it } from "vitest";
import {
  FEATURIZER_NAME,
  FEATURIZER_VERSION,
  featurize,
  murmur3,
  normalizeText,
  type TextFeaturizerSpec,
} from "../src/featurizer/text";
import golden from "./fixtures/featurizer-golden.json";

// Known MurmurHash3_x86_32 vectors (UTF-8 bytes). Cross-checked against an independent byte-wise
// implementation of the reference algorithm.
const MURMUR_VECTORS: [string, number, number][] = [
  ["", 0, 0],
  ["", 1, 0x514e28b7],
  ["", 0xffffffff, 0x81f16f39],
  ["\0\0\0\0", 0, 0x2362f9de],
  ["aaaa", 0x9747b28c, 0x5a97808a],
  ["a", 0x9747b28c, 0x7fa09ea6],
  ["ab", 0x9747b28c, 0x74875592],
  ["abc", 0x9747b28c, 0xc84a62dd],
  ["abcd", 0x9747b28c, 0xf0478627],
  ["abc", 0, 0xb3dd93fa],
  ["hello", 0, 0x248bfa47],
  ["Hello, world!", 0x9747b28c, 0x24884cba],
  ["The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2fa826cd],
  ["ππππππππ", 0x9747b28c, 0xd58063c1],
];

describe("murmur3 (x86, 32-bit, UTF-8)", () => {
  it.each(MURMUR_VECTORS)("%j seed %i", (key, seed, expected) => {
    expect(murmur3(key, seed)).toBe(expected);
  });
  it("encodes astral characters as 4 UTF-8 bytes and lone surrogates as U+FFFD", () => {
    const bytes = (s: string): string => String.fromCharCode(...new TextEncoder().encode(s));
    expect(murmur3("\ud800x", 3)).toBe(murmur3("\ufffdx", 3));
    expect(bytes("🍕").length).toBe(4);
    expect(murmur3("🍕 café", 0)).toBe(0x00b632c8);
    expect(murmur3("日本語", 1)).toBe(0x9a9ab650);
  });
});

describe("normalizeText", () => {
  it("applies NFKC and lowercases", () => {
    expect(normalizeText("ＡＢＣ ﬁ ①")).toBe("abc fi 1");
    expect(normalizeText("Straße ÅNGSTRÖM")).toBe("straße ångström");
  });
});

interface GoldenCase {
  spec: string;
  text: string;
  ids: number[];
  values: number[];
}

describe("featurize golden vectors (version 1)", () => {
  const specs = golden.specs as unknown as Record<string, TextFeaturizerSpec>;
  const cases = golden.cases as GoldenCase[];

  it("fixtures cover every spec and the tricky inputs", () => {
    expect(Object.keys(specs).length).toBe(4);
    expect(Object.values(specs).some((s) => s.norm === "l2-blocks")).toBe(true);
    expect(cases.some((c) => c.text === "")).toBe(true);
    expect(cases.some((c) => /\p{Extended_Pictographic}/u.test(c.text))).toBe(true);
    for (const s of Object.values(specs)) {
      expect(s.name).toBe(FEATURIZER_NAME);
      expect(s.version).toBe(FEATURIZER_VERSION);
    }
  });

  it.each(cases.map((c) => [c.spec, c.text, c] as const))("%s %j", (specName, text, c) => {
    const spec = specs[specName] as TextFeaturizerSpec;
    const f = featurize(text, spec);
    expect(Array.from(f.ids)).toEqual(c.ids);
    expect(Array.from(f.values)).toEqual(Array.from(Float32Array.from(c.values)));
    for (let i = 1; i < f.ids.length; i++) expect(f.ids[i] as number).toBeGreaterThan(f.ids[i - 1] as number);
    for (const id of f.ids) expect(id >= 0 && id < spec.buckets).toBe(true);
  });

  it("returns empty vectors for empty and whitespace-only text", () => {
    const spec = specs.default as TextFeaturizerSpec;
    for (const t of ["", "  \n\t "]) {
      const f = featurize(t, spec);
      expect(f.ids.length).toBe(0);
      expect(f.values.length).toBe(0);
    }
  });

  it("L2-normalises and treats NFKC-equivalent inputs identically", () => {
    const spec = specs.default as TextFeaturizerSpec;
    const f = featurize("Ｆｉｎｅ ﬁne", spec);
    let ss = 0;
    for (const v of f.values) ss += v * v;
    expect(ss).toBeCloseTo(1, 5);
    expect(featurize("Ｆｉｎｅ ﬁne", spec)).toEqual(featurize("fine FINE", spec));
  });
});

describe("l2-blocks: word and character halves normalised apart", () => {
  const spec: TextFeaturizerSpec = {
    name: FEATURIZER_NAME,
    version: FEATURIZER_VERSION,
    buckets: 1 << 16,
    word_ngrams: [1, 2],
    char_ngrams: [2, 5],
    seed: 3,
    tf: "sublinear",
    norm: "l2-blocks",
  };
  const half = spec.buckets / 2;
  const texts = ["hello", "Hello there! Hello again :)", "You are a STUPID idiot, idiot.", "🍕 café ☕", "a"];

  it.each(texts)("%j = the word-only and char-only vectors (each L2) side by side", (text) => {
    const f = featurize(text, spec);
    const words = featurize(text, { ...spec, buckets: half, char_ngrams: null, norm: "l2" });
    const chars = featurize(text, { ...spec, buckets: half, word_ngrams: null, norm: "l2" });
    expect(Array.from(f.ids)).toEqual([
      ...Array.from(words.ids),
      ...Array.from(chars.ids, (id) => id + half),
    ]);
    expect(Array.from(f.values)).toEqual([...Array.from(words.values), ...Array.from(chars.values)]);
    const sq = (lo: number, hi: number) =>
      Array.from(f.values).reduce(
        (s, v, i) => ((f.ids[i] as number) >= lo && (f.ids[i] as number) < hi ? s + v * v : s),
        0,
      );
    expect(sq(0, half)).toBeCloseTo(1, 5);
    expect(sq(half, spec.buckets)).toBeCloseTo(1, 5);
  });

  it("a text with no word tokens has only the character half", () => {
    const f = featurize(":) !!", spec);
    expect(f.ids.length).toBeGreaterThan(0);
    for (const id of f.ids) expect(id).toBeGreaterThanOrEqual(half);
  });
});
