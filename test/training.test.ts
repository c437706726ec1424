import { describe, expect, it } from "vitest";
import { FEATURIZER_NAME, FEATURIZER_VERSION } from "../src/featurizer/text";
import {
  accuracy,
  createRng,
  encodeTargets,
  type FloatLinearModel,
  minimizeLbfgs,
  precisionRecallF1Macro,
  quantizeInt8,
  rocAuc,
  scoreFeatures,
} from "../src/training/index";

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
