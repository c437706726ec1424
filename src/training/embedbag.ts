/**
 * A small fastText-style network on the hashed features: embedding bag → hidden layer → heads.
 *
 *   e = Σ_j values[j] · E[ids[j], :]          E [buckets, dim]   (the featurizer's L2-normalised
 *                                                                  values weight the bag)
 *   h = relu(W1 · e + b1)                     W1 [hidden, dim]
 *   z = W2 · h + b2                           W2 [columns, hidden]
 *   p = sigmoid(z) per column (multilabel, binary; binary with two labels → [1 − p, p])
 *
 * Trained with Adam on per-row steps (the embedding rows a text touches are updated lazily, as in
 * "lazy Adam"; the dense layers are updated every step), binary cross-entropy per column with the
 * same masks/targets as the linear trainer. Runtime-agnostic and deterministic for a seed.
 */

import { featurize, type SparseFeatures, type TextFeaturizerSpec } from "../featurizer/text";
import { sigmoid, type Task } from "./linear-model";
import { createRng, shuffleInPlace } from "./prng";
import type { SparseMatrix } from "./sparse";
import type { EncodedTargets } from "./trainer";

/** Weights of the network; float32, or int8 + per-output-channel scales after `quantizeEmbedBag`. */
export interface EmbedBagModel {
  task: Task;
  labels: string[];
  spec: TextFeaturizerSpec;
  columns: number;
  dim: number;
  hidden: number;
  /** `[buckets * dim]` row-major. */
  embedding: Float32Array;
  /** `[hidden * dim]` row-major (output unit × input). */
  w1: Float32Array;
  b1: Float32Array;
  /** `[columns * hidden]` row-major. */
  w2: Float32Array;
  b2: Float32Array;
  quantization: "none" | "int8";
  /** int8 tensors and their scales (per embedding dimension for E, per output unit for W1/W2). */
  quantized?: {
    embedding: { values: Int8Array; scales: Float32Array };
    w1: { values: Int8Array; scales: Float32Array };
    w2: { values: Int8Array; scales: Float32Array };
  };
}

/** Hyperparameters of `trainEmbedBag`. */
export interface EmbedBagHyperparameters {
  dim: number;
  hidden: number;
  epochs: number;
  learningRate: number;
  /** L2 weight decay applied to the touched weights each step (AdamW style). */
  weightDecay: number;
  /** Positive-row weight per column (1 = none). */
  initScale: number;
}

export const DEFAULT_EMBEDBAG: EmbedBagHyperparameters = {
  dim: 32,
  hidden: 64,
  epochs: 6,
  learningRate: 2e-3,
  weightDecay: 0,
  initScale: 0.5,
};

/** Logits of one row (float or dequantized int8 weights, in float32 steps like the ONNX graph). */
export function embedBagLogits(model: EmbedBagModel, x: SparseFeatures): Float64Array {
  const { dim: d, hidden: H, columns: C } = model;
  const W = weightsOf(model);
  const e = new Float64Array(d);
  for (let j = 0; j < x.ids.length; j++) {
    const base = (x.ids[j] as number) * d;
    const v = x.values[j] as number;
    for (let t = 0; t < d; t++) e[t] = (e[t] as number) + (W.embedding[base + t] as number) * v;
  }
  const h = new Float64Array(H);
  for (let u = 0; u < H; u++) {
    let acc = model.b1[u] as number;
    for (let t = 0; t < d; t++) acc += (W.w1[u * d + t] as number) * (e[t] as number);
    h[u] = acc > 0 ? acc : 0;
  }
  const z = new Float64Array(C);
  for (let k = 0; k < C; k++) {
    let acc = model.b2[k] as number;
    for (let u = 0; u < H; u++) acc += (W.w2[k * H + u] as number) * (h[u] as number);
    z[k] = acc;
  }
  return z;
}

const dequantCache = new WeakMap<
  EmbedBagModel,
  { embedding: Float32Array; w1: Float32Array; w2: Float32Array }
>();

function weightsOf(model: EmbedBagModel): { embedding: Float32Array; w1: Float32Array; w2: Float32Array } {
  if (model.quantization === "none" || !model.quantized) return model;
  const hit = dequantCache.get(model);
  if (hit) return hit;
  const q = model.quantized;
  const deq = (t: { values: Int8Array; scales: Float32Array }, channelOf: (i: number) => number) =>
    Float32Array.from(t.values, (v, i) => Math.fround(v * (t.scales[channelOf(i)] as number)));
  const out = {
    embedding: deq(q.embedding, (i) => i % model.dim),
    w1: deq(q.w1, (i) => Math.floor(i / model.dim)),
    w2: deq(q.w2, (i) => Math.floor(i / model.hidden)),
  };
  dequantCache.set(model, out);
  return out;
}

/** Probabilities of one text, in label order. */
export function embedBagScoreText(model: EmbedBagModel, text: string): Float64Array {
  const z = embedBagLogits(model, featurize(text, model.spec));
  if (model.task === "binary") {
    const p = sigmoid(z[0] as number);
    return model.labels.length === 1 ? Float64Array.of(p) : Float64Array.of(1 - p, p);
  }
  return z.map(sigmoid);
}

/** Symmetric int8 quantization: E per embedding dimension, W1/W2 per output unit. */
export function quantizeEmbedBag(model: EmbedBagModel): EmbedBagModel {
  const q = (w: Float32Array, channels: number, channelOf: (i: number) => number) => {
    const maxAbs = new Float64Array(channels);
    for (let i = 0; i < w.length; i++) {
      const c = channelOf(i);
      maxAbs[c] = Math.max(maxAbs[c] as number, Math.abs(w[i] as number));
    }
    const scales = Float32Array.from(maxAbs, (m) => (m > 0 ? m / 127 : 1));
    const values = Int8Array.from(w, (v, i) =>
      Math.max(-127, Math.min(127, Math.round(v / (scales[channelOf(i)] as number)))),
    );
    return { values, scales };
  };
  return {
    ...model,
    quantization: "int8",
    quantized: {
      embedding: q(model.embedding, model.dim, (i) => i % model.dim),
      w1: q(model.w1, model.hidden, (i) => Math.floor(i / model.dim)),
      w2: q(model.w2, model.columns, (i) => Math.floor(i / model.hidden)),
    },
  };
}

/**
 * Trains the network for `epochs` passes; `onEpoch` is called after each with the model so far
 * (a snapshot the caller may score, e.g. on a validation fold to pick the epoch count).
 */
export function trainEmbedBag(options: {
  X: SparseMatrix;
  targets: EncodedTargets;
  task: Task;
  labels: readonly string[];
  spec: TextFeaturizerSpec;
  hyperparameters: EmbedBagHyperparameters;
  seed: number;
  onEpoch?: (epoch: number, model: EmbedBagModel) => void;
}): EmbedBagModel {
  const { X, targets, hyperparameters: hp } = options;
  if (targets.task === "multiclass")
    throw new Error("the embedding-bag network handles binary and multilabel tasks");
  const d = hp.dim;
  const H = hp.hidden;
  const C = targets.columns;
  const B = options.spec.buckets;
  const rng = createRng(options.seed);
  const uniform = (a: number) => (rng.next() * 2 - 1) * a;
  const E = Float32Array.from({ length: B * d }, () => uniform(hp.initScale));
  const W1 = Float32Array.from({ length: H * d }, () => uniform(Math.sqrt(6 / (d + H))));
  const b1 = new Float32Array(H).fill(0.01);
  const W2 = Float32Array.from({ length: C * H }, () => uniform(Math.sqrt(6 / (H + C))));
  const b2 = new Float32Array(C);
  // Start the heads at the label rates: fewer early steps spent learning the bias.
  for (let k = 0; k < C; k++) {
    let pos = 0;
    let known = 0;
    for (let i = 0; i < X.rows; i++) {
      if ((targets.m[i * C + k] as number) > 0) {
        known++;
        pos += targets.y[i * C + k] as number;
      }
    }
    const rate = Math.min(0.99, Math.max(0.01, pos / Math.max(1, known)));
    b2[k] = Math.log(rate / (1 - rate));
  }
  const params = [E, W1, b1, W2, b2];
  const m1 = params.map((p) => new Float32Array(p.length));
  const m2 = params.map((p) => new Float32Array(p.length));
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-8;
  // Lazy Adam for E: each row keeps the step it was last updated at, and its moments are decayed
  // for the skipped steps when it is next touched.
  const lastStep = new Int32Array(B);
  let step = 0;
  const e = new Float64Array(d);
  const a = new Float64Array(H);
  const gh = new Float64Array(H);
  const ge = new Float64Array(d);
  const r = new Float64Array(C);
  const gW1 = new Float64Array(H * d);
  const gW2 = new Float64Array(C * H);
  const order = Int32Array.from({ length: X.rows }, (_, i) => i);
  const model = (): EmbedBagModel => ({
    task: options.task,
    labels: [...options.labels],
    spec: { ...options.spec },
    columns: C,
    dim: d,
    hidden: H,
    embedding: E,
    w1: W1,
    b1,
    w2: W2,
    b2,
    quantization: "none",
  });
  const adam = (pi: number, j: number, g: number, lrT: number): void => {
    const p = params[pi] as Float32Array;
    const M = m1[pi] as Float32Array;
    const V = m2[pi] as Float32Array;
    const mj = beta1 * (M[j] as number) + (1 - beta1) * g;
    const vj = beta2 * (V[j] as number) + (1 - beta2) * g * g;
    M[j] = mj;
    V[j] = vj;
    p[j] = (p[j] as number) - lrT * (mj / (Math.sqrt(vj) + eps) + hp.weightDecay * (p[j] as number));
  };
  for (let epoch = 0; epoch < hp.epochs; epoch++) {
    shuffleInPlace(order, rng);
    for (let oi = 0; oi < X.rows; oi++) {
      const i = order[oi] as number;
      const s = X.rowPtr[i] as number;
      const end = X.rowPtr[i + 1] as number;
      step++;
      const lrT = (hp.learningRate * Math.sqrt(1 - beta2 ** step)) / (1 - beta1 ** step);
      // Forward.
      e.fill(0);
      for (let j = s; j < end; j++) {
        const base = (X.ids[j] as number) * d;
        const v = X.values[j] as number;
        for (let t = 0; t < d; t++) e[t] = (e[t] as number) + (E[base + t] as number) * v;
      }
      for (let u = 0; u < H; u++) {
        let acc = b1[u] as number;
        for (let t = 0; t < d; t++) acc += (W1[u * d + t] as number) * (e[t] as number);
        a[u] = acc > 0 ? acc : 0;
      }
      let any = false;
      for (let k = 0; k < C; k++) {
        const w = targets.m[i * C + k] as number;
        if (w === 0) {
          r[k] = 0;
          continue;
        }
        let z = b2[k] as number;
        for (let u = 0; u < H; u++) z += (W2[k * H + u] as number) * (a[u] as number);
        r[k] = w * (sigmoid(z) - (targets.y[i * C + k] as number));
        any = true;
      }
      if (!any) continue;
      // Backward.
      gh.fill(0);
      for (let k = 0; k < C; k++) {
        const rk = r[k] as number;
        if (rk === 0) continue;
        for (let u = 0; u < H; u++) {
          gW2[k * H + u] = rk * (a[u] as number);
          gh[u] = (gh[u] as number) + rk * (W2[k * H + u] as number);
        }
      }
      ge.fill(0);
      for (let u = 0; u < H; u++) {
        const g = (a[u] as number) > 0 ? (gh[u] as number) : 0;
        gh[u] = g;
        if (g === 0) continue;
        for (let t = 0; t < d; t++) {
          gW1[u * d + t] = g * (e[t] as number);
          ge[t] = (ge[t] as number) + g * (W1[u * d + t] as number);
        }
      }
      // Updates: heads, hidden layer, then the touched embedding rows.
      for (let k = 0; k < C; k++) {
        const rk = r[k] as number;
        for (let u = 0; u < H; u++) adam(3, k * H + u, rk === 0 ? 0 : (gW2[k * H + u] as number), lrT);
        adam(4, k, rk, lrT);
      }
      for (let u = 0; u < H; u++) {
        const g = gh[u] as number;
        for (let t = 0; t < d; t++) adam(1, u * d + t, g === 0 ? 0 : (gW1[u * d + t] as number), lrT);
        adam(2, u, g, lrT);
      }
      const M = m1[0] as Float32Array;
      const V = m2[0] as Float32Array;
      for (let j = s; j < end; j++) {
        const b = X.ids[j] as number;
        const v = X.values[j] as number;
        const skipped = step - 1 - (lastStep[b] as number);
        const decay1 = skipped > 0 ? beta1 ** skipped : 1;
        const decay2 = skipped > 0 ? beta2 ** skipped : 1;
        lastStep[b] = step;
        const base = b * d;
        for (let t = 0; t < d; t++) {
          const g = (ge[t] as number) * v;
          const idx = base + t;
          const mj = beta1 * decay1 * (M[idx] as number) + (1 - beta1) * g;
          const vj = beta2 * decay2 * (V[idx] as number) + (1 - beta2) * g * g;
          M[idx] = mj;
          V[idx] = vj;
          E[idx] =
            (E[idx] as number) - lrT * (mj / (Math.sqrt(vj) + eps) + hp.weightDecay * (E[idx] as number));
        }
      }
    }
    options.onEpoch?.(epoch + 1, model());
  }
  return {
    ...model(),
    embedding: Float32Array.from(E),
    w1: Float32Array.from(W1),
    b1: Float32Array.from(b1),
    w2: Float32Array.from(W2),
    b2: Float32Array.from(b2),
  };
}
