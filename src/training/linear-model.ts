/**
 * Linear text models: types, the float and dequantized-int8 forward passes, and int8 quantization.
 *
 * Layout: weights are row-major `[buckets, columns]` (one row per hash bucket, so a sparse input
 * touches contiguous memory), bias is `[columns]`.
 *
 * Columns ("logits") per task:
 * - `multilabel`: one column per label, each scored with a sigmoid;
 * - `multiclass`: one column per label, scored with a softmax;
 * - `binary`: ONE column, p = sigmoid(logit) is the probability of the last label; with two labels
 *   (e.g. ["negative","positive"]) the scores are [1 − p, p], with one label they are [p].
 */

import type { Gate } from "../contracts/manifest";
import { featurize, type SparseFeatures, type TextFeaturizerSpec } from "../featurizer/text";

export type { Gate };

/** The three supported tasks. */
export type Task = "multilabel" | "binary" | "multiclass";

interface LinearModelBase {
  task: Task;
  labels: string[];
  spec: TextFeaturizerSpec;
  /** Number of logit columns: `labels.length`, except `binary`, which has exactly 1. */
  columns: number;
  /** Bias per column, float32. */
  bias: Float32Array;
  /**
   * Multilabel only: gated columns (issue #28). Column `column`'s score is its own sigmoid times
   * column `by`'s score, p = σ(z_column) · σ(z_by): a label that is a kind of another one (e.g.
   * `identity_hate` of `toxic`) is that label's probability times a conditional one.
   */
  gates?: readonly Gate[];
}

/** A float32 model (what the trainer produces). */
export interface FloatLinearModel extends LinearModelBase {
  quantization: "none";
  /** `[buckets * columns]`, row-major by bucket. */
  weights: Float32Array;
}

/**
 * An int8 model: symmetric per-column quantization, `w[b, k] ≈ q[b, k] · scales[k]`, zero point 0,
 * `q ∈ [−127, 127]`, `scales[k] = max_b |w[b, k]| / 127` (1 for an all-zero column).
 */
export interface Int8LinearModel extends LinearModelBase {
  quantization: "int8";
  /** `[buckets * columns]`, row-major by bucket. */
  weights: Int8Array;
  /** `[columns]`, float32. */
  scales: Float32Array;
}

/** Either kind of model. */
export type LinearTextModel = FloatLinearModel | Int8LinearModel;

/** Number of logit columns a task needs for `labelCount` labels. */
export function columnsFor(task: Task, labelCount: number): number {
  return task === "binary" ? 1 : labelCount;
}

/** Numerically stable logistic function. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/**
 * Logits of one sparse row: `bias + Σ_j values[j] · W[ids[j], :]`, with W dequantized for int8
 * models (`q · scale`, exactly as ONNX DequantizeLinear does it in float32).
 */
export function logits(model: LinearTextModel, features: SparseFeatures, out?: Float64Array): Float64Array {
  const C = model.columns;
  const z = out ?? new Float64Array(C);
  for (let k = 0; k < C; k++) z[k] = model.bias[k] as number;
  const { ids, values } = features;
  if (model.quantization === "none") {
    const W = model.weights;
    for (let j = 0; j < ids.length; j++) {
      const base = (ids[j] as number) * C;
      const v = values[j] as number;
      for (let k = 0; k < C; k++) z[k] = (z[k] as number) + (W[base + k] as number) * v;
    }
  } else {
    const W = model.weights;
    const s = model.scales;
    for (let j = 0; j < ids.length; j++) {
      const base = (ids[j] as number) * C;
      const v = values[j] as number;
      for (let k = 0; k < C; k++) {
        z[k] = (z[k] as number) + Math.fround((W[base + k] as number) * (s[k] as number)) * v;
      }
    }
  }
  return z;
}

/**
 * Turns logits into per-label probabilities according to the task (see the module comment), with
 * multilabel `gates` applied.
 */
export function probabilities(
  task: Task,
  labelCount: number,
  z: Float64Array,
  gates?: readonly Gate[],
): Float64Array {
  if (task === "multilabel") {
    const p = z.map(sigmoid);
    for (const g of gates ?? []) p[g.column] = (p[g.column] as number) * sigmoid(z[g.by] as number);
    return p;
  }
  if (task === "binary") {
    const p = sigmoid(z[0] as number);
    return labelCount === 1 ? Float64Array.of(p) : Float64Array.of(1 - p, p);
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const v of z) max = Math.max(max, v);
  const out = z.map((v) => Math.exp(v - max));
  let sum = 0;
  for (const v of out) sum += v;
  for (let k = 0; k < out.length; k++) out[k] = (out[k] as number) / sum;
  return out;
}

/**
 * The forward pass on featurized input: one probability per label. For an int8 model this is the
 * dequantized forward pass, the same arithmetic as the exported int8 ONNX graph.
 */
export function scoreFeatures(model: LinearTextModel, features: SparseFeatures): Float64Array {
  return probabilities(model.task, model.labels.length, logits(model, features), model.gates);
}

/** `scoreFeatures(model, featurize(text, model.spec))`. */
export function scoreText(model: LinearTextModel, text: string): Float64Array {
  return scoreFeatures(model, featurize(text, model.spec));
}

/** Symmetric per-column int8 quantization of a float model (zero point 0, range ±127). */
export function quantizeInt8(model: FloatLinearModel): Int8LinearModel {
  const C = model.columns;
  const W = model.weights;
  const maxAbs = new Float64Array(C);
  for (let i = 0; i < W.length; i++) {
    const k = i % C;
    const a = Math.abs(W[i] as number);
    if (a > (maxAbs[k] as number)) maxAbs[k] = a;
  }
  const scales = new Float32Array(C);
  for (let k = 0; k < C; k++) scales[k] = (maxAbs[k] as number) > 0 ? (maxAbs[k] as number) / 127 : 1;
  const q = new Int8Array(W.length);
  for (let i = 0; i < W.length; i++) {
    const r = Math.round((W[i] as number) / (scales[i % C] as number));
    q[i] = Math.max(-127, Math.min(127, r));
  }
  return {
    task: model.task,
    labels: [...model.labels],
    spec: { ...model.spec },
    columns: C,
    bias: Float32Array.from(model.bias),
    quantization: "int8",
    weights: q,
    scales,
    ...(model.gates && { gates: model.gates.map((g) => ({ ...g })) }),
  };
}
