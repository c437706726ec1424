/**
 * Exporter parity, in workerd: tiny models trained here (every task), exported as float32 and int8
 * ONNX, run with onnxruntime-web, compared with the trainer's own forward passes.
 */
import { describe, expect, it } from "vitest";
import { manifestSchema } from "../src/contracts/manifest";
import {
  FEATURIZER_NAME,
  FEATURIZER_VERSION,
  featurize,
  featurizeBatch,
  type TextFeaturizerSpec,
} from "../src/featurizer/text";
import { explainLinear, type LinearGraph, readExplainGraph } from "../src/inference/explain";
import { createSession, ort } from "../src/inference/ort";
import { onnx } from "../src/onnx/generated/onnx.js";
import { buildOnnxModel, exportEmbedBagModel, exportModel } from "../src/onnx/text";
import {
  DEFAULT_EMBEDBAG,
  embedBagScoreText,
  quantizeEmbedBag,
  trainEmbedBag,
} from "../src/training/embedbag";
import {
  createRng,
  DEFAULT_HYPERPARAMETERS,
  encodeTargets,
  featurizeTexts,
  type LinearTextModel,
  logits,
  rocAuc,
  scoreText,
  sigmoid,
  type Task,
  type TrainingRow,
  trainTextModel,
} from "../src/training/index";
import { nbRatios, priorShift, shiftBias, trainNbLinear } from "../src/training/nb";

const SPEC: TextFeaturizerSpec = {
  name: FEATURIZER_NAME,
  version: FEATURIZER_VERSION,
  buckets: 512,
  word_ngrams: [1, 2],
  char_ngrams: [2, 4],
  seed: 3,
  tf: "sublinear",
  norm: "l2",
};

// A made-up corpus: each topic has its own words; a text mixes 2–8 words from 1–2 topics.
const TOPICS = [
  ["sunny", "beach", "holiday", "swim", "ice cream", "relax"],
  ["invoice", "payment", "overdue", "bank", "refund", "account"],
  ["goal", "match", "referee", "league", "striker", "penalty"],
];
const FILLER = ["the", "a", "today", "really", "very", "and", "so", "we", "ok", "!"];

function makeCorpus(n: number, seed: number): { text: string; topics: number[] }[] {
  const rng = createRng(seed);
  const out: { text: string; topics: number[] }[] = [];
  for (let i = 0; i < n; i++) {
    const first = rng.nextInt(TOPICS.length);
    const topics = rng.next() < 0.3 ? [first, (first + 1 + rng.nextInt(2)) % 3] : [first];
    const words: string[] = [];
    const len = 2 + rng.nextInt(7);
    for (let w = 0; w < len; w++) {
      const pool =
        rng.next() < 0.3 ? FILLER : (TOPICS[topics[rng.nextInt(topics.length)] as number] as string[]);
      words.push(pool[rng.nextInt(pool.length)] as string);
    }
    out.push({ text: words.join(" "), topics });
  }
  return out;
}

const CORPUS = makeCorpus(120, 11);

const TASKS: { task: Task; labels: string[]; target: (topics: number[]) => number | number[] }[] = [
  {
    task: "multilabel",
    labels: ["leisure", "money", "sport"],
    target: (t) => [0, 1, 2].map((k) => (t.includes(k) ? 1 : 0)),
  },
  { task: "binary", labels: ["other", "money"], target: (t) => (t.includes(1) ? 1 : 0) },
  { task: "binary", labels: ["sport"], target: (t) => (t.includes(2) ? 1 : 0) },
  { task: "multiclass", labels: ["leisure", "money", "sport"], target: (t) => t[0] as number },
];

// Batch > 1 with padding: rows of very different lengths, one empty, some unseen words and emoji.
const PROBES = [
  "the striker took a penalty and scored, what a goal",
  "",
  "refund",
  "Overdue INVOICE: payment to the bank account please 💸",
  "sunny beach holiday, swim and relax with ice cream 🍦 today",
  "completely unrelated words xyzzy",
];

const featurizeBatchRow = (text: string) => featurize(text, SPEC);

async function runOrt(bytes: Uint8Array, texts: string[], spec: TextFeaturizerSpec): Promise<number[][]> {
  const session = await createSession(bytes);
  const batch = featurizeBatch(texts, spec);
  const out = await session.run({
    ids: new ort.Tensor("int64", batch.ids, batch.dims),
    values: new ort.Tensor("float32", batch.values, batch.dims),
  });
  const scores = out.scores as ort.Tensor;
  const K = scores.dims[1] as number;
  expect(scores.dims).toEqual([texts.length, K]);
  const data = scores.data as Float32Array;
  return texts.map((_, r) => Array.from(data.subarray(r * K, (r + 1) * K)));
}

function expectClose(actual: number[][], expected: LinearTextModel, tol: number): void {
  PROBES.forEach((text, r) => {
    const want = scoreText(expected, text);
    const got = actual[r] as number[];
    expect(got.length).toBe(want.length);
    got.forEach((v, k) => {
      expect(Math.abs(v - (want[k] as number)), `row ${r} label ${k}`).toBeLessThanOrEqual(tol);
    });
  });
}

describe("ONNX export parity with onnxruntime-web (workerd)", () => {
  for (const { task, labels, target } of TASKS) {
    it(`${task} [${labels.join(",")}]: float ≤ 1e-5, int8 ≤ 1e-5 vs dequantized and ≤ 1e-2 vs float`, async () => {
      const rows: TrainingRow[] = CORPUS.map((c) => ({ text: c.text, target: target(c.topics) }));
      const trained = trainTextModel({
        rows,
        evalRows: rows,
        task,
        labels,
        spec: SPEC,
        hyperparameters: { c: 10, maxIterations: 60 },
        seed: 1,
      });
      // The toy task is learnable: the model is not trivially constant.
      const metric = task === "multilabel" ? "roc_auc_mean" : "accuracy";
      expect(trained.metrics.float[metric] as number).toBeGreaterThan(0.9);

      const float = await exportModel(trained.model, {
        id: "parity",
        version: "1",
        metrics: trained.metrics.float,
      });
      const int8 = await exportModel(trained.quantized, {
        id: "parity",
        version: "1",
        metrics: trained.metrics.int8,
      });
      expect(manifestSchema.safeParse(float.manifest).success).toBe(true);
      expect(int8.manifest.quantization).toBe("int8");
      expect(int8.manifest.size_bytes).toBe(int8.onnx.byteLength);
      expect(int8.onnx.byteLength).toBeLessThan(float.onnx.byteLength);

      const floatOut = await runOrt(float.onnx, PROBES, SPEC);
      expectClose(floatOut, trained.model, 1e-5);
      const int8Out = await runOrt(int8.onnx, PROBES, SPEC);
      expectClose(int8Out, trained.quantized, 1e-5);
      expectClose(int8Out, trained.model, 1e-2);
      // Probabilities: softmax rows and binary [1-p, p] rows sum to 1.
      if (task === "multiclass" || (task === "binary" && labels.length === 2)) {
        for (const row of int8Out) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
    });
  }

  it("gated multilabel (issue #28): ORT equals the trainer's σ(z_k)·σ(z_by); explanations read both factors exactly", async () => {
    const { labels, target } = TASKS[0] as (typeof TASKS)[number];
    const rows: TrainingRow[] = CORPUS.map((c) => ({ text: c.text, target: target(c.topics) }));
    const trained = trainTextModel({
      rows,
      task: "multilabel",
      labels,
      spec: SPEC,
      hyperparameters: { c: 10, maxIterations: 60 },
      seed: 1,
    });
    // "sport" gated by "leisure": its score is σ(z_sport) · σ(z_leisure); the others unchanged.
    const gates = [{ column: 2, by: 0 }];
    const plain = trained.quantized;
    const gated = { ...plain, gates };
    for (const text of PROBES) {
      const p = scoreText(plain, text);
      const g = scoreText(gated, text);
      expect(g[0]).toBe(p[0]);
      expect(g[1]).toBe(p[1]);
      expect(g[2]).toBeCloseTo((p[2] as number) * (p[0] as number), 12);
    }
    for (const model of [{ ...trained.model, gates }, gated]) {
      const { onnx: bytes, manifest } = await exportModel(model, { id: "gated", version: "1" });
      const out = await runOrt(bytes, PROBES, SPEC);
      expectClose(out, model, 1e-5);
      const meta = Object.fromEntries(
        onnx.ModelProto.decode(bytes).metadataProps.map((p) => [p.key, p.value]),
      );
      expect(JSON.parse(meta.gates as string)).toEqual(gates);
      // The explanation reads the gated graph as linear: per column exact, the gated label marked.
      const graph = readExplainGraph(bytes, manifest);
      expect(graph?.kind).toBe("linear");
      expect((graph as LinearGraph).gates).toEqual(gates);
      const text = PROBES[0] as string;
      const e = explainLinear(manifest, graph as LinearGraph, text, featurizeBatchRow(text), 200);
      expect(e.method).toBe("exact-linear");
      expect(e.labels.map((l) => l.gated_by)).toEqual([undefined, undefined, "leisure"]);
      const z = logits(model, featurizeBatchRow(text));
      e.labels.forEach((l, k) => {
        expect(Math.abs(l.logit - (z[k] as number))).toBeLessThan(1e-4);
        const sum = (l.bias as number) + l.top.reduce((a, c) => a + c.contribution, 0) + (l.other as number);
        expect(Math.abs(sum - (z[k] as number))).toBeLessThan(1e-4);
      });
      const sport = e.labels[2] as (typeof e.labels)[number];
      const leisure = e.labels[0] as (typeof e.labels)[number];
      expect(out[0]?.[2]).toBeCloseTo(sigmoid(sport.logit) * sigmoid(leisure.logit), 5);
    }
    // A gate must name two different, ungated columns.
    expect(() =>
      buildOnnxModel({ ...plain, gates: [{ column: 1, by: 1 }] }, { id: "x", version: "1" }),
    ).toThrow();
    expect(() =>
      buildOnnxModel(
        {
          ...plain,
          gates: [
            { column: 1, by: 0 },
            { column: 0, by: 2 },
          ],
        },
        { id: "x", version: "1" },
      ),
    ).toThrow();
  });

  for (const { task, labels, target } of TASKS.filter((t) => t.task !== "multiclass")) {
    it(`mlp network ${task} [${labels.join(",")}]: ORT equals the trainer's int8 forward pass (≤ 1e-5)`, async () => {
      const rows: TrainingRow[] = CORPUS.map((c) => ({ text: c.text, target: target(c.topics) }));
      const targets = encodeTargets(
        task,
        labels.length,
        rows.map((r) => r.target),
      );
      const X = featurizeTexts(
        rows.map((r) => r.text),
        SPEC,
      );
      const hyperparameters = { ...DEFAULT_EMBEDBAG, dim: 8, hidden: 16, epochs: 8, learningRate: 0.01 };
      const net = trainEmbedBag({ X, targets, task, labels, spec: SPEC, hyperparameters, seed: 2 });
      const model = quantizeEmbedBag(net);
      // Learnable: the network separates the toy task.
      const truth = rows.map((r) =>
        Array.isArray(r.target) ? (r.target[labels.length - 1] as number) : r.target,
      );
      const last = rows.map((r) => {
        const p = embedBagScoreText(model, r.text);
        return p[p.length - 1] as number;
      });
      expect(rocAuc(last, truth as number[])).toBeGreaterThan(0.9);
      const { onnx: bytes, manifest } = await exportEmbedBagModel(model, { id: "parity-mlp", version: "1" });
      expect(manifest.network).toBe("mlp");
      expect(manifestSchema.safeParse(manifest).success).toBe(true);
      const out = await runOrt(bytes, PROBES, SPEC);
      PROBES.forEach((text, r) => {
        const want = embedBagScoreText(model, text);
        (out[r] as number[]).forEach((v, k) => {
          expect(Math.abs(v - (want[k] as number)), `row ${r} label ${k}`).toBeLessThanOrEqual(1e-5);
        });
      });
    });
  }

  it("NB-LR folds r into the weights: the linear graph scores NB-scaled features exactly", () => {
    const rows: TrainingRow[] = CORPUS.map((c) => ({ text: c.text, target: c.topics.includes(1) ? 1 : 0 }));
    const X = featurizeTexts(
      rows.map((r) => r.text),
      SPEC,
    );
    const targets = encodeTargets(
      "binary",
      2,
      rows.map((r) => r.target),
    );
    const hp = { ...DEFAULT_HYPERPARAMETERS, c: 4, maxIterations: 50 };
    const { model } = trainNbLinear({
      X,
      targets,
      task: "binary",
      labels: ["other", "money"],
      spec: SPEC,
      hyperparameters: hp,
      seed: 1,
      alpha: 0.01,
    });
    const r = nbRatios(X, targets.y, targets.m, 0.01);
    // Money words get positive ratios, other topics' words negative ones.
    const ratioOf = (word: string) =>
      r[featurizeTexts([word], { ...SPEC, char_ngrams: null }).ids[0] as number] as number;
    expect(ratioOf("invoice")).toBeGreaterThan(0);
    expect(ratioOf("striker")).toBeLessThan(0);
    const auc = rocAuc(
      rows.map((row) => scoreText(model, row.text)[1] as number),
      rows.map((row) => row.target as number),
    );
    expect(auc).toBeGreaterThan(0.95);
    // Prior correction moves every score's logit by the same amount.
    const shift = priorShift([0.3], [0.1]);
    expect(shift[0]).toBeCloseTo(Math.log(0.1 / 0.9) - Math.log(0.3 / 0.7), 12);
    const shifted = shiftBias(model, shift);
    const p = scoreText(model, "refund")[1] as number;
    const q = scoreText(shifted, "refund")[1] as number;
    expect(Math.log(q / (1 - q)) - Math.log(p / (1 - p))).toBeCloseTo(shift[0] as number, 4);
  });

  it("is deterministic and writes the documented ONNX header and metadata", () => {
    const rows: TrainingRow[] = CORPUS.map((c) => ({ text: c.text, target: c.topics[0] as number }));
    const opts = { rows, task: "multiclass" as const, labels: ["a", "b", "c"], spec: SPEC, seed: 5 };
    const a = trainTextModel({ ...opts, hyperparameters: { maxIterations: 20 } });
    const b = trainTextModel({ ...opts, hyperparameters: { maxIterations: 20 } });
    const bytesA = buildOnnxModel(a.quantized, { id: "det", version: "1" });
    const bytesB = buildOnnxModel(b.quantized, { id: "det", version: "1" });
    expect(bytesA).toEqual(bytesB);
    const decoded = onnx.ModelProto.decode(bytesA);
    expect(Number(decoded.irVersion)).toBe(8);
    expect(decoded.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([["", 17]]);
    const meta = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
    expect(meta.model_id).toBe("det");
    expect(JSON.parse(meta.featurizer as string)).toEqual(SPEC);
    const ops = decoded.graph?.node?.map((n) => n.opType);
    expect(ops).toEqual(["Gather", "DequantizeLinear", "Unsqueeze", "Mul", "ReduceSum", "Add", "Softmax"]);
    expect(decoded.graph?.input?.map((i) => i.name)).toEqual(["ids", "values"]);
    expect(decoded.graph?.output?.map((o) => o.name)).toEqual(["scores"]);
  });

  it("adagrad optimizer is deterministic per seed and learns the toy task", () => {
    const rows: TrainingRow[] = CORPUS.map((c) => ({ text: c.text, target: c.topics.includes(1) ? 1 : 0 }));
    const opts = {
      rows,
      evalRows: rows,
      task: "binary" as const,
      labels: ["other", "money"],
      spec: SPEC,
      hyperparameters: { optimizer: "adagrad" as const, epochs: 5 },
    };
    const a = trainTextModel({ ...opts, seed: 9 });
    const b = trainTextModel({ ...opts, seed: 9 });
    expect(a.model.weights).toEqual(b.model.weights);
    expect(a.metrics.int8.accuracy as number).toBeGreaterThan(0.9);
  });
});
