import { describe, expect, it } from "vitest";
import {
  FEATURIZER_NAME,
  FEATURIZER_VERSION,
  featurize,
  type TextFeaturizerSpec,
} from "../src/featurizer/text";
import { standardDeviation } from "../src/training/calibration";
import {
  capBuckets,
  capIdentityAndAddress,
  capModel,
  identityBigramBuckets,
  identityChunkBuckets,
  identityWords,
} from "../src/training/cap";
import {
  accuracy,
  createRng,
  encodeTargets,
  type FloatLinearModel,
  featurizeTexts,
  maskColumns,
  maskPerRow,
  minimizeLbfgs,
  precisionRecallF1Macro,
  probabilities,
  quantizeInt8,
  rocAuc,
  scoreFeatures,
  sigmoid,
  sparseRows,
} from "../src/training/index";
import type { Int8LinearModel } from "../src/training/linear-model";
import {
  type Candidate,
  concatTargets,
  conditionalTargets,
  fitCandidate,
  logitMatrix,
  selectLinear,
} from "../src/training/select";

describe("metrics (hand-computed)", () => {
  it("ROC-AUC, including ties (average ranks) and the one-class case", () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(rocAuc([0.5, 0.5, 0.5, 0.9], [0, 1, 0, 1])).toBeCloseTo(0.75, 12);
    expect(rocAuc([1, 2, 3], [0, 0, 1])).toBe(1);
    expect(rocAuc([3, 2, 1], [0, 0, 1])).toBe(0);
    expect(rocAuc([0.2, 0.3], [1, 1])).toBeNaN();
  });
  it("accuracy and macro precision/recall/F1 (zero_division = 0)", () => {
    const pred = [0, 1, 1, 2, 2, 2];
    const truth = [0, 1, 2, 2, 2, 0];
    expect(accuracy(pred, truth)).toBeCloseTo(4 / 6, 12);
    const m = precisionRecallF1Macro(pred, truth, 3);
    expect(m.precision).toBeCloseTo((1 + 0.5 + 2 / 3) / 3, 12);
    expect(m.recall).toBeCloseTo((0.5 + 1 + 2 / 3) / 3, 12);
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    // A class never predicted contributes precision 0.
    expect(precisionRecallF1Macro([0, 0], [0, 1], 2).precision).toBeCloseTo(0.25, 12);
  });
});

describe("trainer building blocks", () => {
  it("PRNG is deterministic and roughly uniform", () => {
    const a = createRng(42);
    const b = createRng(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(createRng(43).next()).not.toBe(xs[0]);
  });

  it("L-BFGS minimises a convex quadratic", () => {
    const target = Float64Array.of(3, -1, 0.5, 10);
    const x = new Float64Array(4);
    const res = minimizeLbfgs(
      (p, g) => {
        let f = 0;
        for (let i = 0; i < p.length; i++) {
          const d = (p[i] as number) - (target[i] as number);
          f += (i + 1) * d * d;
          g[i] = 2 * (i + 1) * d;
        }
        return f;
      },
      x,
      { memory: 5, maxIterations: 100, gradientTolerance: 1e-10, relativeTolerance: 0 },
    );
    expect(res.converged).toBe(true);
    for (let i = 0; i < 4; i++) expect(x[i]).toBeCloseTo(target[i] as number, 6);
  });

  it("int8 quantization: scale = max|w|/127 per column, round to nearest, dequantized forward pass", () => {
    const model: FloatLinearModel = {
      task: "multilabel",
      labels: ["a", "b"],
      spec: {
        name: FEATURIZER_NAME,
        version: FEATURIZER_VERSION,
        buckets: 4,
        word_ngrams: [1, 1],
        char_ngrams: null,
        seed: 0,
        tf: "binary",
        norm: "none",
      },
      columns: 2,
      quantization: "none",
      weights: Float32Array.of(1.27, -0.5, -0.635, 0.25, 0, 0, 0.01, 0),
      bias: Float32Array.of(0.1, -0.2),
    };
    const q = quantizeInt8(model);
    expect(q.scales[0]).toBeCloseTo(0.01, 7);
    expect(q.scales[1]).toBeCloseTo(0.5 / 127, 7);
    expect(Array.from(q.weights)).toEqual([127, -127, -64, 64, 0, 0, 1, 0]);
    const feats = { ids: Int32Array.of(0, 1), values: Float32Array.of(1, 2) };
    const z0 =
      Math.fround(0.1) +
      Math.fround(127 * (q.scales[0] as number)) +
      2 * Math.fround(-64 * (q.scales[0] as number));
    expect(scoreFeatures(q, feats)[0]).toBeCloseTo(1 / (1 + Math.exp(-z0)), 12);
    const f = scoreFeatures(model, feats);
    expect(f[0]).toBeCloseTo(1 / (1 + Math.exp(-(0.1 + 1.27 - 1.27))), 6);
  });

  it("encodes and validates targets per task", () => {
    const ml = encodeTargets("multilabel", 2, [
      [1, -1],
      [0, 1],
    ]);
    expect(Array.from(ml.y)).toEqual([1, 0, 0, 1]);
    expect(Array.from(ml.m)).toEqual([1, 0, 1, 1]);
    const bin = encodeTargets("binary", 2, [0, 1, 1, 1], "balanced");
    expect(bin.columns).toBe(1);
    expect(Array.from(bin.m)).toEqual([2, 2 / 3, 2 / 3, 2 / 3]);
    expect(() => encodeTargets("multiclass", 3, [3])).toThrow(/label index/);
    expect(() => encodeTargets("binary", 2, [2])).toThrow(/binary target/);
  });
});

describe("cross-validated selection (selectLinear with k folds)", () => {
  const spec: TextFeaturizerSpec = {
    name: FEATURIZER_NAME,
    version: FEATURIZER_VERSION,
    buckets: 1024,
    word_ngrams: [1, 1],
    char_ngrams: null,
    seed: 0,
    tf: "sublinear",
    norm: "l2",
  };
  // Noisy on purpose (some words point the wrong way), so AUCs differ between folds and candidates.
  const rng = createRng(7);
  const good = ["great", "lovely", "fine", "happy", "nice", "calm"];
  const bad = ["awful", "sad", "angry", "bad", "nasty", "grim"];
  const pick = (xs: string[]): string => xs[rng.nextInt(xs.length)] as string;
  const texts: string[] = [];
  const y: number[] = [];
  for (let i = 0; i < 240; i++) {
    const label = rng.next() < 0.35 ? 1 : 0;
    const lean = rng.next() < 0.8 ? label : 1 - label;
    texts.push(`${pick(lean ? good : bad)} ${pick(lean ? good : bad)} ${pick(good.concat(bad))} day`);
    y.push(label);
  }
  const X = featurizeTexts(texts, spec);
  const T = encodeTargets("binary", 2, y);
  const rowsWhere = (f: (i: number) => boolean) => texts.map((_, i) => i).filter(f);
  const targetsOf = (rows: number[]) =>
    encodeTargets(
      "binary",
      2,
      rows.map((i) => y[i] as number),
    );
  const foldOf = (val: number[]) => {
    const fit = rowsWhere((i) => !val.includes(i));
    return {
      fitX: sparseRows(X, fit),
      fitTargets: targetsOf(fit),
      valX: sparseRows(X, val),
      valTargets: targetsOf(val),
    };
  };
  // Three folds of different sizes: rows i % 7 == 0 go to fold 2, the rest by i % 3.
  const foldOfRow = (i: number): number => (i % 7 === 0 ? 2 : i % 3);
  const folds = [0, 1, 2].map((f) => foldOf(rowsWhere((i) => foldOfRow(i) === f)));
  const candidates: Candidate[] = [
    { name: "lr", kind: "lr", c: 1, maxIterations: 60 },
    { name: "nb", kind: "nb", c: 0.5, alpha: 1, maxIterations: 60 },
  ];
  const base = { task: "binary" as const, labels: ["neg", "pos"], spec, candidates, seed: 3 };

  it("sparseRows copies the chosen rows in order", () => {
    const rows = [5, 0, 5, 17];
    const sub = sparseRows(X, rows);
    const direct = featurizeTexts(
      rows.map((i) => texts[i] as string),
      spec,
    );
    expect(sub.rows).toBe(4);
    expect(Array.from(sub.rowPtr)).toEqual(Array.from(direct.rowPtr));
    expect(Array.from(sub.ids)).toEqual(Array.from(direct.ids));
    expect(Array.from(sub.values)).toEqual(Array.from(direct.values));
  });

  it("scores every candidate out of fold and ranks by the mean of the per-fold AUCs", () => {
    const { selection, valProbabilities, valTargets } = selectLinear({ ...base, folds });
    const pooledRows = folds.reduce((n, f) => n + f.valX.rows, 0);
    expect(selection.folds).toBe(3);
    expect(valTargets.y.length).toBe(pooledRows);
    expect(Array.from(valTargets.y)).toEqual(folds.flatMap((f) => Array.from(f.valTargets.y)));
    expect(valProbabilities).toHaveLength(pooledRows);
    for (const p of valProbabilities) expect(p[0]).toBeGreaterThan(0);
    // Each candidate's figure is the mean of the AUCs of models fitted without that fold.
    for (const cand of candidates) {
      const per = folds.map((f) => {
        const m = fitCandidate(f.fitX, f.fitTargets, "binary", base.labels, spec, cand, base.seed);
        return rocAuc(
          logitMatrix(m, f.valX).map((z) => z[0] as number),
          Array.from(f.valTargets.y),
        );
      });
      expect(new Set(per.map((v) => v.toFixed(6))).size).toBeGreaterThan(1);
      expect(selection.tried[cand.name]?.[0]).toBeCloseTo(per.reduce((a, b) => a + b, 0) / per.length, 10);
    }
    const col = selection.columns[0];
    expect(col?.validation_auc_folds).toHaveLength(3);
    const folded = col?.validation_auc_folds as number[];
    expect(col?.validation_auc).toBeCloseTo(folded.reduce((a, b) => a + b, 0) / 3, 12);
    expect(col?.validation_auc_sd).toBeCloseTo(standardDeviation(folded, 1), 12);
    const best = Math.max(...candidates.map((c) => selection.tried[c.name]?.[0] as number));
    expect(col?.validation_auc).toBeGreaterThanOrEqual(best);
  });

  it("one fold keeps the fixed-fold figures (bootstrap sd, no per-fold list)", () => {
    const { selection, valTargets } = selectLinear({ ...base, folds: [folds[0] as (typeof folds)[number]] });
    expect(selection.folds).toBe(1);
    expect(valTargets.y.length).toBe(folds[0]?.valX.rows);
    expect(selection.columns[0]?.validation_auc_folds).toBeUndefined();
    expect(selection.columns[0]?.validation_auc_sd).toBeGreaterThan(0);
  });

  it("concatTargets refuses targets of different shapes", () => {
    expect(Array.from(concatTargets([targetsOf([0, 1]), targetsOf([2])]).y)).toEqual([y[0], y[1], y[2]]);
    expect(() => concatTargets([T, encodeTargets("multilabel", 2, [[1, 0]])])).toThrow(/different shapes/);
    expect(() => concatTargets([])).toThrow(/no targets/);
  });
});

describe("issue #28's weight cap per label (src/training/cap.ts)", () => {
  const spec: TextFeaturizerSpec = {
    name: FEATURIZER_NAME,
    version: FEATURIZER_VERSION,
    buckets: 1 << 12,
    word_ngrams: [1, 2],
    char_ngrams: [4, 5],
    seed: 7,
    tf: "binary",
    norm: "l2-blocks",
  };
  const C = 2;
  const model: Int8LinearModel = {
    task: "multilabel",
    labels: ["toxic", "identity_hate"],
    spec,
    columns: C,
    quantization: "int8",
    // Every bucket: +10 on toxic, +20 on identity_hate, except bucket 0's −8 (negative weights stay).
    weights: Int8Array.from({ length: spec.buckets * C }, (_, i) => (i === 0 ? -8 : i % C === 0 ? 10 : 20)),
    scales: Float32Array.of(0.01, 0.01),
    bias: Float32Array.of(0, 0),
  };
  const identity = capBuckets(spec, { identity: true, address: false });
  const address = capBuckets(spec, { identity: false, address: true });
  const only = (a: Set<number>, b: Set<number>) => [...a].filter((x) => !b.has(x) && x !== 0);
  const at = (m: Int8LinearModel, b: number, k: number) => m.weights[b * C + k];

  it("version 5's cap by default; per label: left as is, or its own factors", () => {
    expect(identity.size).toBeGreaterThan(100);
    const idOnly = only(identity, address);
    const addrOnly = only(address, identity);
    const neither = Array.from({ length: spec.buckets }, (_, b) => b).find(
      (b) => b !== 0 && !identity.has(b) && !address.has(b),
    ) as number;
    const v5 = capIdentityAndAddress(model, 0.5);
    const keep = capIdentityAndAddress(model, 0.5, { identity_hate: { identity: 1, address: 1 } });
    const half = capIdentityAndAddress(model, 0.5, { identity_hate: { identity: 0.5, address: 0.5 } });
    for (const b of idOnly.slice(0, 20)) {
      expect([at(v5, b, 0), at(v5, b, 1)]).toEqual([0, 0]);
      expect([at(keep, b, 0), at(keep, b, 1)]).toEqual([0, 20]);
      expect([at(half, b, 0), at(half, b, 1)]).toEqual([0, 10]);
    }
    for (const b of addrOnly.slice(0, 10)) {
      expect([at(v5, b, 0), at(v5, b, 1)]).toEqual([5, 10]);
      expect([at(keep, b, 0), at(keep, b, 1)]).toEqual([5, 20]);
      expect([at(half, b, 0), at(half, b, 1)]).toEqual([5, 10]);
    }
    for (const m of [v5, keep, half]) {
      expect([at(m, neither, 0), at(m, neither, 1)]).toEqual([10, 20]);
      expect(at(m, 0, 0)).toBe(-8);
    }
    expect(Array.from(model.weights.slice(0, 4))).toEqual([-8, 20, 10, 20]);
  });

  it("--mask-identity's maskColumns zeroes the listed columns' values and nothing else", () => {
    const X = featurizeTexts(["a proud gay nurse", "you are kind"], spec);
    const masked = maskColumns(X, identity);
    expect(Array.from(masked.ids)).toEqual(Array.from(X.ids));
    let zeroed = 0;
    for (let j = 0; j < X.ids.length; j++) {
      if (identity.has(X.ids[j] as number)) {
        expect(masked.values[j]).toBe(0);
        zeroed++;
      } else expect(masked.values[j]).toBe(X.values[j]);
    }
    // "gay" (its unigram, 4- and 5-grams) is an identity term; the rest of the first row is not.
    expect(zeroed).toBeGreaterThanOrEqual(5);
    expect(X.values.some((v, j) => v !== 0 && !identity.has(X.ids[j] as number))).toBe(true);
  });

  it("--mask-identity=bigrams: per row, the bigrams that contain an identity word, and only those rows", () => {
    const words = new Set(identityWords());
    expect(words.has("gay")).toBe(true);
    const texts = ["I am a proud gay person, you are gay!", "a proud nurse"];
    const perRow = texts.map((t) => identityBigramBuckets(t, spec, words));
    // "proud gay", "gay person", "are gay"; none in the second text.
    expect(perRow.map((b) => b.size)).toEqual([3, 0]);
    const X = featurizeTexts(texts, spec);
    const masked = maskPerRow(X, (i) => perRow[i] as Set<number>);
    for (let i = 0; i < X.rows; i++)
      for (let j = X.rowPtr[i] as number; j < (X.rowPtr[i + 1] as number); j++)
        expect(masked.values[j]).toBe((perRow[i] as Set<number>).has(X.ids[j] as number) ? 0 : X.values[j]);
    expect(Array.from(masked.values).filter((v) => v === 0).length).toBe(3);
  });

  it("--mask-identity=chunks: every character n-gram of a chunk that is an identity word (+ s), punctuation included", () => {
    const words = new Set(identityWords());
    const of = (t: string) => identityChunkBuckets(t, spec, words);
    // " gay. " has 6 code points: 3 + 2 n-grams of this spec's lengths 4–5 (distinct buckets here).
    expect(of("The pilot is gay.").size).toBe(5);
    expect(identityChunkBuckets("The pilot is gay.", { ...spec, char_ngrams: [2, 5] }, words).size).toBe(14);
    expect(of("gays").size).toBeGreaterThan(0);
    expect(of("(gay)").size).toBeGreaterThan(0);
    // Only whole chunks: "many managers" holds "man"-like letters but no identity word.
    expect(of("many managers gaiety").size).toBe(0);
    expect(of("hello").size).toBe(0);
    const X = featurizeTexts(["The pilot is gay."], spec);
    const b = of("The pilot is gay.");
    expect(Array.from(X.ids).filter((id) => b.has(id)).length).toBe(5);
  });

  it("refuses an unknown label or a factor outside [0, 1]", () => {
    expect(() => capIdentityAndAddress(model, 0.5, { threat: { identity: 1, address: 1 } })).toThrow(
      /not a label/,
    );
    expect(() => capIdentityAndAddress(model, 0.5, { toxic: { identity: 2, address: 1 } })).toThrow(
      /outside/,
    );
    expect(() => capModel(model, identity, [0])).toThrow(/1 scales for 2 columns/);
  });
});

describe("gated columns (issue #28, --gate-identity-hate)", () => {
  it("conditionalTargets keeps one column on the rows where the gate's label is known and 1", () => {
    // Columns [toxic, identity_hate]; row 2's toxic is unknown, row 3 has a loss weight 2.
    const t = encodeTargets("multilabel", 2, [
      [1, 1],
      [0, 0],
      [1, 0],
      [1, 1],
    ]);
    const m = Float64Array.from(t.m);
    m[2 * 2] = 0;
    m[3 * 2 + 1] = 2;
    const c = conditionalTargets({ ...t, m }, 1, 0);
    expect(c.columns).toBe(1);
    expect(Array.from(c.y)).toEqual([1, 0, 0, 1]);
    expect(Array.from(c.m)).toEqual([1, 0, 0, 2]);
  });

  it("probabilities multiply a gated column by its gate's sigmoid, others untouched", () => {
    const z = Float64Array.of(0.5, -1, 2);
    const p = probabilities("multilabel", 3, z, [{ column: 2, by: 0 }]);
    expect(p[0]).toBe(sigmoid(0.5));
    expect(p[1]).toBe(sigmoid(-1));
    expect(p[2]).toBeCloseTo(sigmoid(2) * sigmoid(0.5), 15);
    expect(Array.from(probabilities("multilabel", 3, z))).toEqual(Array.from(z, sigmoid));
  });
});

describe("identity buckets on both featurizer layouts", () => {
  for (const norm of ["l2-blocks", "l2"] as const) {
    it(`${norm}: the unigram and char 4/5-gram buckets of an identity word are the featurizer's own`, () => {
      const spec: TextFeaturizerSpec = {
        name: FEATURIZER_NAME,
        version: FEATURIZER_VERSION,
        buckets: 1 << 17,
        word_ngrams: [1, 1],
        char_ngrams: [4, 5],
        seed: 0,
        tf: "binary",
        norm,
      };
      const identity = capBuckets(spec, { identity: true, address: false });
      const ids = [...featurize("gay", spec).ids];
      expect(ids.length).toBeGreaterThan(3);
      expect(ids.filter((b) => !identity.has(b))).toEqual([]);
      expect([...featurize("window", spec).ids].filter((b) => identity.has(b))).toEqual([]);
    });
  }
});
