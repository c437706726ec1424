/**
 * Small convolutional image classifiers: model types, the forward pass (float, and dequantized int8),
 * backpropagation, mini-batch Adam training with random-shift augmentation, and int8 quantization.
 * Runtime-agnostic and deterministic for equal inputs and seed.
 *
 * Layouts match ONNX: activations are CHW per image (NCHW with the batch), conv weights
 * `[filters, inChannels, kernel, kernel]`, dense weights `[units, inputs]` (Gemm with `transB = 1`); a
 * dense layer after a 3-D activation flattens it in CHW order (ONNX `Flatten(axis = 1)`). Convs have
 * stride 1 and symmetric zero padding `pad`; pools use stride = size, no padding, and drop a
 * trailing partial window (ONNX defaults). The last layer's logits go through a softmax.
 */

import { createRng, type Rng, shuffleInPlace } from "./prng";

/** An architecture: the layer sequence without parameters. */
export type CnnLayerSpec =
  | { type: "conv"; filters: number; kernel: number; pad: number }
  | { type: "relu" }
  | { type: "maxpool"; size: number }
  | { type: "avgpool"; size: number }
  | { type: "dense"; units: number };

/** int8 form of a layer's weights: `w ≈ values · scales[out]`, zero point 0, per output channel/unit. */
export interface QuantizedWeights {
  values: Int8Array;
  scales: Float32Array;
}

/** A conv layer with its parameters. */
export interface ConvLayer {
  type: "conv";
  inChannels: number;
  filters: number;
  kernel: number;
  pad: number;
  /** `[filters, inChannels, kernel, kernel]`; for an int8 model, the dequantized values. */
  weights: Float32Array;
  bias: Float32Array;
  quantized?: QuantizedWeights;
}

/** A fully connected layer with its parameters. */
export interface DenseLayer {
  type: "dense";
  inputs: number;
  units: number;
  /** `[units, inputs]`; for an int8 model, the dequantized values. */
  weights: Float32Array;
  bias: Float32Array;
  quantized?: QuantizedWeights;
}

/** Any layer of a built model. */
export type CnnLayer =
  | ConvLayer
  | DenseLayer
  | { type: "relu" }
  | { type: "maxpool"; size: number }
  | { type: "avgpool"; size: number };

/** Input shape of one image, CHW. */
export interface CnnInputShape {
  channels: number;
  height: number;
  width: number;
}

/**
 * A multiclass image classifier. With `quantization: "int8"` every conv/dense layer carries
 * `quantized` and its `weights` are exactly `values[i] · scales[out]` rounded to float32 (what ONNX
 * `DequantizeLinear` computes).
 */
export interface CnnModel {
  task: "multiclass";
  labels: string[];
  input: CnnInputShape;
  layers: CnnLayer[];
  quantization: "none" | "int8";
}

/** Activation shape after each layer (`[c, h, w]`; a dense output is `[units, 1, 1]`). */
export function layerShapes(input: CnnInputShape, layers: readonly (CnnLayer | CnnLayerSpec)[]): number[][] {
  let [c, h, w] = [input.channels, input.height, input.width];
  const shapes: number[][] = [];
  for (const layer of layers) {
    if (layer.type === "conv") {
      [c, h, w] = [layer.filters, h + 2 * layer.pad - layer.kernel + 1, w + 2 * layer.pad - layer.kernel + 1];
    } else if (layer.type === "maxpool" || layer.type === "avgpool") {
      [h, w] = [Math.floor(h / layer.size), Math.floor(w / layer.size)];
    } else if (layer.type === "dense") {
      [c, h, w] = [layer.units, 1, 1];
    }
    if (!(c >= 1 && h >= 1 && w >= 1))
      throw new Error(`layer ${shapes.length} (${layer.type}) has an empty output`);
    shapes.push([c, h, w]);
  }
  return shapes;
}

function gaussian(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Builds a float model from an architecture with He-normal weights and zero biases. */
export function initCnn(
  input: CnnInputShape,
  specs: readonly CnnLayerSpec[],
  labels: string[],
  seed: number,
): CnnModel {
  const rng = createRng(seed);
  const shapes = layerShapes(input, specs);
  const last = specs[specs.length - 1];
  if (last?.type !== "dense" || last.units !== labels.length) {
    throw new Error("the last layer must be dense with one unit per label");
  }
  const layers = specs.map((spec, i): CnnLayer => {
    const [c, h, w] = i === 0 ? [input.channels, input.height, input.width] : (shapes[i - 1] as number[]);
    if (spec.type === "conv") {
      const fanIn = (c as number) * spec.kernel * spec.kernel;
      const weights = new Float32Array(spec.filters * fanIn).map(() => gaussian(rng) * Math.sqrt(2 / fanIn));
      return { ...spec, inChannels: c as number, weights, bias: new Float32Array(spec.filters) };
    }
    if (spec.type === "dense") {
      const inputs = (c as number) * (h as number) * (w as number);
      const weights = new Float32Array(spec.units * inputs).map(() => gaussian(rng) * Math.sqrt(2 / inputs));
      return { type: "dense", inputs, units: spec.units, weights, bias: new Float32Array(spec.units) };
    }
    return { ...spec };
  });
  return { task: "multiclass", labels: [...labels], input: { ...input }, layers, quantization: "none" };
}

/** im2col: `col[(c·K + ky)·K + kx, oy·OW + ox] = x[c, oy + ky − P, ox + kx − P]` (0 outside). */
function im2col(
  layer: ConvLayer,
  x: Float32Array,
  inShape: number[],
  outShape: number[],
  col: Float32Array,
): void {
  const [C, H, W] = inShape as [number, number, number];
  const [, OH, OW] = outShape as [number, number, number];
  const { kernel: K, pad: P } = layer;
  const plane = OH * OW;
  for (let c = 0; c < C; c++) {
    for (let ky = 0; ky < K; ky++) {
      for (let kx = 0; kx < K; kx++) {
        const row = ((c * K + ky) * K + kx) * plane;
        const ox0 = Math.max(0, P - kx);
        const ox1 = Math.min(OW, W + P - kx);
        for (let oy = 0; oy < OH; oy++) {
          const iy = oy + ky - P;
          const o = row + oy * OW;
          if (iy < 0 || iy >= H || ox0 >= ox1) {
            col.fill(0, o, o + OW);
            continue;
          }
          col.fill(0, o, o + ox0);
          const src = c * H * W + iy * W + kx - P;
          for (let ox = ox0; ox < ox1; ox++) col[o + ox] = x[src + ox] as number;
          col.fill(0, o + ox1, o + OW);
        }
      }
    }
  }
}

/** out[f, p] = bias[f] + Σ_j W[f, j] · col[j, p] (four rows of `col` per pass over `out`). */
function convForward(layer: ConvLayer, col: Float32Array, out: Float32Array, plane: number): void {
  const { weights, bias, filters: F } = layer;
  const J = weights.length / F;
  for (let f = 0; f < F; f++) {
    const o = f * plane;
    const w = f * J;
    out.fill(bias[f] as number, o, o + plane);
    let j = 0;
    for (; j + 3 < J; j += 4) {
      const [w0, w1, w2, w3] = [
        weights[w + j],
        weights[w + j + 1],
        weights[w + j + 2],
        weights[w + j + 3],
      ] as number[];
      const r = j * plane;
      for (let p = 0; p < plane; p++) {
        out[o + p] =
          (out[o + p] as number) +
          (w0 as number) * (col[r + p] as number) +
          (w1 as number) * (col[r + plane + p] as number) +
          (w2 as number) * (col[r + 2 * plane + p] as number) +
          (w3 as number) * (col[r + 3 * plane + p] as number);
      }
    }
    for (; j < J; j++) {
      const wv = weights[w + j] as number;
      const r = j * plane;
      for (let p = 0; p < plane; p++) out[o + p] = (out[o + p] as number) + wv * (col[r + p] as number);
    }
  }
}

/** Accumulates conv parameter gradients and (when `dx`) the input gradient (via `dcol`, col2im). */
function convBackward(
  layer: ConvLayer,
  col: Float32Array,
  inShape: number[],
  dy: Float32Array,
  outShape: number[],
  dW: Float32Array,
  dB: Float32Array,
  dcol: Float32Array,
  dx: Float32Array | undefined,
): void {
  const [C, H, W] = inShape as [number, number, number];
  const [F, OH, OW] = outShape as [number, number, number];
  const { kernel: K, pad: P, weights } = layer;
  const plane = OH * OW;
  const J = weights.length / F;
  for (let f = 0; f < F; f++) {
    const o = f * plane;
    let db = 0;
    for (let p = 0; p < plane; p++) db += dy[o + p] as number;
    dB[f] = (dB[f] as number) + db;
    for (let j = 0; j < J; j++) {
      const r = j * plane;
      let g = 0;
      for (let p = 0; p < plane; p++) g += (dy[o + p] as number) * (col[r + p] as number);
      dW[f * J + j] = (dW[f * J + j] as number) + g;
    }
  }
  if (!dx) return;
  // dcol[j, p] = Σ_f W[f, j] · dy[f, p], four filters per pass over dcol.
  dcol.fill(0);
  for (let j = 0; j < J; j++) {
    const r = j * plane;
    let f = 0;
    for (; f + 3 < F; f += 4) {
      const w0 = weights[f * J + j] as number;
      const w1 = weights[(f + 1) * J + j] as number;
      const w2 = weights[(f + 2) * J + j] as number;
      const w3 = weights[(f + 3) * J + j] as number;
      const o = f * plane;
      for (let p = 0; p < plane; p++) {
        dcol[r + p] =
          (dcol[r + p] as number) +
          w0 * (dy[o + p] as number) +
          w1 * (dy[o + plane + p] as number) +
          w2 * (dy[o + 2 * plane + p] as number) +
          w3 * (dy[o + 3 * plane + p] as number);
      }
    }
    for (; f < F; f++) {
      const wv = weights[f * J + j] as number;
      const o = f * plane;
      for (let p = 0; p < plane; p++) dcol[r + p] = (dcol[r + p] as number) + wv * (dy[o + p] as number);
    }
  }
  dx.fill(0);
  for (let c = 0; c < C; c++)
    for (let ky = 0; ky < K; ky++)
      for (let kx = 0; kx < K; kx++) {
        const row = ((c * K + ky) * K + kx) * plane;
        const ox0 = Math.max(0, P - kx);
        const ox1 = Math.min(OW, W + P - kx);
        for (let oy = 0; oy < OH; oy++) {
          const iy = oy + ky - P;
          if (iy < 0 || iy >= H) continue;
          const dst = c * H * W + iy * W + kx - P;
          const o = row + oy * OW;
          for (let ox = ox0; ox < ox1; ox++)
            dx[dst + ox] = (dx[dst + ox] as number) + (dcol[o + ox] as number);
        }
      }
}

function poolForward(
  kind: "maxpool" | "avgpool",
  size: number,
  x: Float32Array,
  inShape: number[],
  out: Float32Array,
  outShape: number[],
  argmax: Int32Array | undefined,
): void {
  const [, H, W] = inShape as [number, number, number];
  const [C, OH, OW] = outShape as [number, number, number];
  const area = size * size;
  for (let c = 0; c < C; c++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        let best = Number.NEGATIVE_INFINITY;
        let bestIndex = 0;
        let sum = 0;
        for (let ky = 0; ky < size; ky++) {
          for (let kx = 0; kx < size; kx++) {
            const i = c * H * W + (oy * size + ky) * W + ox * size + kx;
            const v = x[i] as number;
            sum += v;
            if (v > best) {
              best = v;
              bestIndex = i;
            }
          }
        }
        const o = (c * OH + oy) * OW + ox;
        if (kind === "maxpool") {
          out[o] = best;
          if (argmax) argmax[o] = bestIndex;
        } else out[o] = sum / area;
      }
    }
  }
}

function denseForward(layer: DenseLayer, x: Float32Array, out: Float32Array): void {
  const { inputs: I, units: U, weights, bias } = layer;
  for (let u = 0; u < U; u++) {
    let acc = bias[u] as number;
    const row = u * I;
    for (let i = 0; i < I; i++) acc += (weights[row + i] as number) * (x[i] as number);
    out[u] = acc;
  }
}

/** Softmax of `logits` (stable), as float64. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp((logits[i] as number) - max);
    sum += out[i] as number;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/** Per-image buffers for the forward and backward passes (allocated once per model shape). */
class Workspace {
  readonly shapes: number[][];
  readonly acts: Float32Array[];
  readonly grads: Float32Array[];
  readonly argmax: (Int32Array | undefined)[];
  /** Per conv layer: im2col of its input and its gradient. */
  readonly cols: (Float32Array | undefined)[];
  readonly dcols: (Float32Array | undefined)[];

  constructor(readonly model: CnnModel) {
    this.shapes = layerShapes(model.input, model.layers);
    const size = (s: number[]) => (s[0] as number) * (s[1] as number) * (s[2] as number);
    this.acts = this.shapes.map((s) => new Float32Array(size(s)));
    this.grads = this.shapes.map((s) => new Float32Array(size(s)));
    this.argmax = model.layers.map((l, i) =>
      l.type === "maxpool" ? new Int32Array(size(this.shapes[i] as number[])) : undefined,
    );
    const colSize = (l: CnnLayer, i: number) =>
      l.type === "conv"
        ? l.inChannels *
          l.kernel *
          l.kernel *
          (this.shapes[i]?.[1] as number) *
          (this.shapes[i]?.[2] as number)
        : 0;
    this.cols = model.layers.map((l, i) => (l.type === "conv" ? new Float32Array(colSize(l, i)) : undefined));
    this.dcols = model.layers.map((l, i) =>
      l.type === "conv" ? new Float32Array(colSize(l, i)) : undefined,
    );
  }

  inShape(i: number): number[] {
    const { input } = this.model;
    return i === 0 ? [input.channels, input.height, input.width] : (this.shapes[i - 1] as number[]);
  }

  /** Runs every layer on `x`; returns the logits (a view into the workspace). */
  forward(x: Float32Array): Float32Array {
    let cur = x;
    this.model.layers.forEach((layer, i) => {
      const out = this.acts[i] as Float32Array;
      const outShape = this.shapes[i] as number[];
      if (layer.type === "conv") {
        const col = this.cols[i] as Float32Array;
        im2col(layer, cur, this.inShape(i), outShape, col);
        convForward(layer, col, out, (outShape[1] as number) * (outShape[2] as number));
      } else if (layer.type === "dense") denseForward(layer, cur, out);
      else if (layer.type === "relu")
        for (let k = 0; k < out.length; k++) out[k] = Math.max(0, cur[k] as number);
      else poolForward(layer.type, layer.size, cur, this.inShape(i), out, outShape, this.argmax[i]);
      cur = out;
    });
    return cur;
  }

  /** Backpropagates `dLogits` after `forward(x)`, accumulating into `paramGrads` (per layer `[dW, dB]`). */
  backward(
    x: Float32Array,
    dLogits: Float32Array,
    paramGrads: ([Float32Array, Float32Array] | undefined)[],
  ): void {
    const layers = this.model.layers;
    (this.grads[layers.length - 1] as Float32Array).set(dLogits);
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i] as CnnLayer;
      const dy = this.grads[i] as Float32Array;
      const input = i === 0 ? x : (this.acts[i - 1] as Float32Array);
      const dx = i === 0 ? undefined : (this.grads[i - 1] as Float32Array);
      if (layer.type === "conv") {
        const [dW, dB] = paramGrads[i] as [Float32Array, Float32Array];
        const col = this.cols[i] as Float32Array;
        const dcol = this.dcols[i] as Float32Array;
        convBackward(layer, col, this.inShape(i), dy, this.shapes[i] as number[], dW, dB, dcol, dx);
      } else if (layer.type === "dense") {
        const [dW, dB] = paramGrads[i] as [Float32Array, Float32Array];
        const { inputs: I, units: U, weights } = layer;
        dx?.fill(0);
        for (let u = 0; u < U; u++) {
          const d = dy[u] as number;
          dB[u] = (dB[u] as number) + d;
          if (d === 0) continue;
          const row = u * I;
          for (let k = 0; k < I; k++) {
            dW[row + k] = (dW[row + k] as number) + d * (input[k] as number);
            if (dx) dx[k] = (dx[k] as number) + d * (weights[row + k] as number);
          }
        }
      } else if (!dx) {
        // Nothing below the first layer needs a gradient.
      } else if (layer.type === "relu") {
        const out = this.acts[i] as Float32Array;
        for (let k = 0; k < dx.length; k++) dx[k] = (out[k] as number) > 0 ? (dy[k] as number) : 0;
      } else if (layer.type === "maxpool") {
        dx.fill(0);
        const argmax = this.argmax[i] as Int32Array;
        for (let k = 0; k < dy.length; k++) {
          const j = argmax[k] as number;
          dx[j] = (dx[j] as number) + (dy[k] as number);
        }
      } else {
        dx.fill(0);
        const [, H, W] = this.inShape(i) as [number, number, number];
        const [C, OH, OW] = this.shapes[i] as [number, number, number];
        const s = layer.size;
        for (let c = 0; c < C; c++)
          for (let oy = 0; oy < OH; oy++)
            for (let ox = 0; ox < OW; ox++) {
              const g = (dy[(c * OH + oy) * OW + ox] as number) / (s * s);
              for (let ky = 0; ky < s; ky++)
                for (let kx = 0; kx < s; kx++) {
                  const j = c * H * W + (oy * s + ky) * W + ox * s + kx;
                  dx[j] = (dx[j] as number) + g;
                }
            }
      }
    }
  }
}

/** Class probabilities of one image (`[channels × height × width]`, preprocessed). */
export function predictCnn(model: CnnModel, image: Float32Array): Float64Array {
  return softmax(new Workspace(model).forward(image));
}

/** Class probabilities of `count` images stored back to back in `images`. */
export function predictCnnBatch(model: CnnModel, images: Float32Array, count: number): Float64Array[] {
  const ws = new Workspace(model);
  const size = model.input.channels * model.input.height * model.input.width;
  return Array.from({ length: count }, (_, n) =>
    softmax(ws.forward(images.subarray(n * size, (n + 1) * size))),
  );
}

/** Hyperparameters of `trainCnn`. */
export interface CnnHyperparameters {
  epochs: number;
  batchSize: number;
  /** Adam step size at the start; decays by a cosine schedule to `learningRate · finalLrFraction`. */
  learningRate: number;
  finalLrFraction: number;
  /** L2 penalty on weights (not biases), added to the gradient (`λ·w`). */
  weightDecay: number;
  /** Random translation of each training image by up to ± this many pixels per axis (0 = off). */
  maxShift: number;
}

/** Defaults used for the shipped digits model. */
export const DEFAULT_CNN_HYPERPARAMETERS: CnnHyperparameters = {
  epochs: 12,
  batchSize: 32,
  learningRate: 0.002,
  finalLrFraction: 0.05,
  weightDecay: 1e-4,
  maxShift: 2,
};

/** Options of `trainCnn`. */
export interface TrainCnnOptions {
  /** Preprocessed training images, back to back, each `[channels × height × width]`. */
  images: Float32Array;
  /** Class index per image. */
  targets: ArrayLike<number>;
  labels: string[];
  input: CnnInputShape;
  architecture: readonly CnnLayerSpec[];
  hyperparameters?: Partial<CnnHyperparameters>;
  /** Value of an empty (background) pixel after preprocessing: what shifted-in borders get. */
  background: number;
  seed: number;
  /** Called after each epoch with the mean training loss. */
  onEpoch?: (epoch: number, loss: number) => void;
}

/** Shifts `src` (CHW) by (dx, dy) pixels into `dst`, filling with `fill`. */
function shiftImage(
  src: Float32Array,
  dst: Float32Array,
  shape: CnnInputShape,
  dx: number,
  dy: number,
  fill: number,
): void {
  const { channels: C, height: H, width: W } = shape;
  dst.fill(fill);
  for (let c = 0; c < C; c++)
    for (let y = Math.max(0, dy); y < Math.min(H, H + dy); y++) {
      const from = c * H * W + (y - dy) * W;
      const to = c * H * W + y * W;
      const x0 = Math.max(0, dx);
      const x1 = Math.min(W, W + dx);
      dst.set(src.subarray(from + x0 - dx, from + x1 - dx), to + x0);
    }
}

/**
 * Trains a float model with softmax cross-entropy, mini-batch Adam (cosine learning-rate decay),
 * L2 weight decay and random-shift augmentation. Deterministic for equal inputs and seed.
 */
export function trainCnn(options: TrainCnnOptions): { model: CnnModel; hyperparameters: CnnHyperparameters } {
  const hp = { ...DEFAULT_CNN_HYPERPARAMETERS, ...options.hyperparameters };
  const { input, labels } = options;
  const model = initCnn(input, options.architecture, labels, options.seed);
  const rng = createRng(options.seed ^ 0x5bd1e995);
  const ws = new Workspace(model);
  const size = input.channels * input.height * input.width;
  const n = options.targets.length;
  if (options.images.length !== n * size) throw new Error("images and targets differ in count");

  const params = model.layers.map((l) => (l.type === "conv" || l.type === "dense" ? l : undefined));
  const grads = params.map((l): [Float32Array, Float32Array] | undefined =>
    l ? [new Float32Array(l.weights.length), new Float32Array(l.bias.length)] : undefined,
  );
  const moments = params.map((l) =>
    l
      ? {
          mW: new Float64Array(l.weights.length),
          vW: new Float64Array(l.weights.length),
          mB: new Float64Array(l.bias.length),
          vB: new Float64Array(l.bias.length),
        }
      : undefined,
  );
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-8;
  const stepsPerEpoch = Math.ceil(n / hp.batchSize);
  const totalSteps = stepsPerEpoch * hp.epochs;
  let step = 0;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const shifted = new Float32Array(size);
  const dLogits = new Float32Array(labels.length);

  const adam = (
    p: Float32Array,
    g: Float32Array,
    m: Float64Array,
    v: Float64Array,
    lr: number,
    decay: number,
    batch: number,
  ) => {
    const c1 = 1 - beta1 ** step;
    const c2 = 1 - beta2 ** step;
    for (let i = 0; i < p.length; i++) {
      const gi = (g[i] as number) / batch + decay * (p[i] as number);
      m[i] = beta1 * (m[i] as number) + (1 - beta1) * gi;
      v[i] = beta2 * (v[i] as number) + (1 - beta2) * gi * gi;
      p[i] = (p[i] as number) - (lr * ((m[i] as number) / c1)) / (Math.sqrt((v[i] as number) / c2) + eps);
    }
    g.fill(0);
  };

  for (let epoch = 0; epoch < hp.epochs; epoch++) {
    shuffleInPlace(order, rng);
    let lossSum = 0;
    for (let start = 0; start < n; start += hp.batchSize) {
      const end = Math.min(n, start + hp.batchSize);
      for (let b = start; b < end; b++) {
        const idx = order[b] as number;
        let x = options.images.subarray(idx * size, (idx + 1) * size);
        if (hp.maxShift > 0) {
          const span = 2 * hp.maxShift + 1;
          shiftImage(
            x,
            shifted,
            input,
            rng.nextInt(span) - hp.maxShift,
            rng.nextInt(span) - hp.maxShift,
            options.background,
          );
          x = shifted;
        }
        const p = softmax(ws.forward(x));
        const target = options.targets[idx] as number;
        lossSum -= Math.log(Math.max(p[target] as number, 1e-12));
        for (let k = 0; k < p.length; k++) dLogits[k] = (p[k] as number) - (k === target ? 1 : 0);
        ws.backward(x, dLogits, grads);
      }
      step++;
      const progress = step / totalSteps;
      const lr =
        hp.learningRate *
        (hp.finalLrFraction + (1 - hp.finalLrFraction) * 0.5 * (1 + Math.cos(Math.PI * progress)));
      params.forEach((l, i) => {
        if (!l) return;
        const [gW, gB] = grads[i] as [Float32Array, Float32Array];
        const m = moments[i] as NonNullable<(typeof moments)[number]>;
        adam(l.weights, gW, m.mW, m.vW, lr, hp.weightDecay, end - start);
        adam(l.bias, gB, m.mB, m.vB, lr, 0, end - start);
      });
    }
    options.onEpoch?.(epoch + 1, lossSum / n);
  }
  return { model, hyperparameters: hp };
}

/**
 * int8 quantization of every conv/dense layer: symmetric per output channel (conv filter, dense
 * unit), `scale = max|w| / 127` as float32 (1 for an all-zero channel), `q = round(w / scale)`;
 * biases stay float32. The returned model's `weights` are the dequantized values.
 */
export function quantizeCnn(model: CnnModel): CnnModel {
  const layers = model.layers.map((layer): CnnLayer => {
    if (layer.type !== "conv" && layer.type !== "dense") return layer;
    const outs = layer.type === "conv" ? layer.filters : layer.units;
    const per = layer.weights.length / outs;
    const values = new Int8Array(layer.weights.length);
    const scales = new Float32Array(outs);
    const weights = new Float32Array(layer.weights.length);
    for (let o = 0; o < outs; o++) {
      let max = 0;
      for (let i = o * per; i < (o + 1) * per; i++) max = Math.max(max, Math.abs(layer.weights[i] as number));
      const scale = Math.fround(max > 0 ? max / 127 : 1);
      scales[o] = scale;
      for (let i = o * per; i < (o + 1) * per; i++) {
        const q = Math.max(-127, Math.min(127, Math.round((layer.weights[i] as number) / scale)));
        values[i] = q;
        weights[i] = Math.fround(q * scale);
      }
    }
    return { ...layer, weights, bias: layer.bias.slice(), quantized: { values, scales } };
  });
  return { ...model, layers, quantization: "int8" };
}
