/**
 * The Keras layer handlers of `kerasToImageGraph` (src/keras/convert.ts): `LAYER_HANDLERS` maps a
 * Keras layer class name to the function that converts one such layer into graph ops, reading and
 * writing the conversion's state (`Conversion`). Layouts and scope: see convert.ts.
 */

import type { GraphOp } from "../onnx/image-graph";

/** One layer of the parsed topology. */
export interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound: string[];
}

/** Shape of a value without the batch axis: `[H, W, C]` (Keras order) or `[C]`. */
export type Shape = [number, number, number] | [number];

type Pads = [number, number, number, number];

/** The state of one conversion, shared by the layer handlers. */
export interface Conversion {
  /** The model's input layer. */
  inputName: string;
  height: number;
  width: number;
  channels: number;
  /** Layer name → how many layers read it. */
  consumers: Map<string, number>;
  /** Layer name → the graph value holding its output (identity layers alias their input). */
  values: Map<string, string>;
  shapes: Map<string, Shape>;
  /** ZeroPadding2D outputs not materialised yet: a conv reading them takes the pads itself. */
  pendingPads: Map<string, { source: string; pads: Pads }>;
  /** The op that wrote a value (to fold a following BatchNormalization into it). */
  producers: Map<string, GraphOp>;
  push(op: GraphOp): void;
  /** The graph value of the layer's input `i` (materialising a pending padding). */
  inputValue(layer: KerasLayer, i?: number): string;
  shapeOf(layer: KerasLayer, i?: number): Shape;
  spatial(layer: KerasLayer, s: Shape): [number, number, number];
  /** Applies a Keras activation to `x`; returns the value holding the result. */
  activation(layer: KerasLayer, x: string, name: string | undefined): string;
  /** The layer's weight `name` with `size` values (marked as used). */
  weight(layer: KerasLayer, name: string, size: number): Float32Array;
}

export type LayerHandler = (layer: KerasLayer, cv: Conversion) => void;

function pair(v: unknown, what: string): [number, number] {
  if (typeof v === "number") return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((n) => Number.isInteger(n))) return [v[0], v[1]];
  throw new Error(`${what} must be an integer or a pair of integers`);
}

/** TF's `same` padding: output `ceil(in / stride)`, the odd pixel of padding at the end. */
function samePads(size: number, k: number, stride: number, dilation: number): [number, number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before, out];
}

function windowOut(size: number, k: number, stride: number, dilation: number, pads: number): number {
  return Math.floor((size + pads - dilation * (k - 1) - 1) / stride) + 1;
}

const inputLayer: LayerHandler = (layer, cv) => {
  if (layer.name !== cv.inputName) throw new Error(`a second input layer '${layer.name}'`);
  cv.values.set(layer.name, "input_nchw");
  cv.shapes.set(layer.name, [cv.height, cv.width, cv.channels]);
};

const dropout: LayerHandler = (layer, cv) => {
  cv.values.set(layer.name, cv.inputValue(layer));
  cv.shapes.set(layer.name, cv.shapeOf(layer));
};

const zeroPadding2D: LayerHandler = (layer, cv) => {
  const out = layer.name;
  const [h, w, ch] = cv.spatial(layer, cv.shapeOf(layer));
  const p = layer.config.padding;
  let pads: Pads;
  if (Array.isArray(p) && Array.isArray(p[0])) {
    const [[t, b], [l, r]] = p as [[number, number], [number, number]];
    pads = [t, l, b, r];
  } else {
    const [ph, pw] = pair(p ?? 1, `layer '${layer.name}' padding`);
    pads = [ph, pw, ph, pw];
  }
  const source = cv.inputValue(layer);
  cv.values.set(out, out);
  cv.shapes.set(out, [h + pads[0] + pads[2], w + pads[1] + pads[3], ch]);
  cv.pendingPads.set(out, { source, pads });
};

/** A conv's ONNX pads (its own plus a merged ZeroPadding2D's `extra`) and output size. */
function convWindow(
  layer: KerasLayer,
  [h, w]: [number, number],
  [kh, kw]: [number, number],
  [sh, sw]: [number, number],
  [dh, dw]: [number, number],
  extra: Readonly<Pads>,
): { pads: Pads; oh: number; ow: number } {
  const padding = layer.config.padding;
  if (padding === "same") {
    const [pt, pb, oh] = samePads(h, kh, sh, dh);
    const [pl, pr, ow] = samePads(w, kw, sw, dw);
    return { pads: [pt + extra[0], pl + extra[1], pb + extra[2], pr + extra[3]], oh, ow };
  }
  if (padding === "valid") {
    return {
      pads: [extra[0], extra[1], extra[2], extra[3]],
      oh: windowOut(h, kh, sh, dh, 0),
      ow: windowOut(w, kw, sw, dw, 0),
    };
  }
  throw new Error(`layer '${layer.name}': unsupported padding '${String(padding)}'`);
}

/**
 * Keras [kh, kw, in, out] (depthwise [kh, kw, in, mult], out channel = in · mult + m) → ONNX
 * [out, in/group, kh, kw].
 */
function onnxConvKernel(
  k: Float32Array,
  [kh, kw]: [number, number],
  inC: number,
  outC: number,
  mult: number,
  depthwise: boolean,
): Float32Array {
  const inPer = depthwise ? 1 : inC;
  const onnxW = new Float32Array(outC * inPer * kh * kw);
  for (let y = 0; y < kh; y++)
    for (let xk = 0; xk < kw; xk++)
      for (let i = 0; i < inC; i++)
        for (let o = 0; o < (depthwise ? mult : outC); o++) {
          const src = ((y * kw + xk) * inC + i) * (depthwise ? mult : outC) + o;
          const oc = depthwise ? i * mult + o : o;
          const ic = depthwise ? 0 : i;
          onnxW[((oc * inPer + ic) * kh + y) * kw + xk] = k[src] as number;
        }
  return onnxW;
}

/** Conv2D and DepthwiseConv2D. */
const conv2D: LayerHandler = (layer, cv) => {
  const c = layer.config;
  const out = layer.name;
  // A ZeroPadding2D read only by this conv becomes part of the conv's own pads.
  const from = layer.inbound[0] ?? "";
  const pending = cv.consumers.get(from) === 1 ? cv.pendingPads.get(from) : undefined;
  if (pending) cv.pendingPads.delete(from);
  const extra = pending?.pads ?? ([0, 0, 0, 0] as const);
  const x = pending ? pending.source : cv.inputValue(layer);
  // The padded size: what Keras's conv sees.
  const [h, w, inC] = cv.spatial(layer, cv.shapeOf(layer));
  const kernel = pair(c.kernel_size, `layer '${layer.name}' kernel_size`);
  const strides = pair(c.strides ?? 1, `layer '${layer.name}' strides`);
  const dilations = pair(c.dilation_rate ?? 1, `layer '${layer.name}' dilation_rate`);
  const { pads, oh, ow } = convWindow(layer, [h, w], kernel, strides, dilations, extra);
  const [kh, kw] = kernel;
  const depthwise = layer.class_name === "DepthwiseConv2D";
  const mult = depthwise ? Number(c.depth_multiplier ?? 1) : 1;
  const outC = depthwise ? inC * mult : Number(c.filters);
  const k = cv.weight(
    layer,
    depthwise ? "depthwise_kernel" : "kernel",
    kh * kw * inC * (depthwise ? mult : outC),
  );
  const bias = c.use_bias === false ? new Float32Array(outC) : cv.weight(layer, "bias", outC).slice();
  cv.push({
    op: "conv",
    input: x,
    output: out,
    weights: onnxConvKernel(k, kernel, inC, outC, mult, depthwise),
    dims: [outC, depthwise ? 1 : inC, kh, kw],
    bias,
    strides,
    dilations,
    pads,
    group: depthwise ? inC : 1,
  });
  cv.values.set(out, cv.activation(layer, out, c.activation as string | undefined));
  cv.shapes.set(out, [oh, ow, outC]);
};

/** Batch normalization as a per-channel `scale · x + shift`. */
function batchNormAffine(
  layer: KerasLayer,
  cv: Conversion,
  s: Shape,
): { scale: Float32Array; shift: Float32Array } {
  const c = layer.config;
  const ch = s[s.length - 1] as number;
  const axis = c.axis;
  if (
    !(
      axis === -1 ||
      axis === s.length ||
      (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === s.length))
    )
  ) {
    throw new Error(`layer '${layer.name}': only batch normalization over the channel axis is supported`);
  }
  const eps = Number(c.epsilon ?? 1e-3);
  const gamma = c.scale === false ? new Float32Array(ch).fill(1) : cv.weight(layer, "gamma", ch);
  const beta = c.center === false ? new Float32Array(ch) : cv.weight(layer, "beta", ch);
  const mean = cv.weight(layer, "moving_mean", ch);
  const variance = cv.weight(layer, "moving_variance", ch);
  const scale = new Float32Array(ch);
  const shift = new Float32Array(ch);
  for (let i = 0; i < ch; i++) {
    scale[i] = (gamma[i] as number) / Math.sqrt((variance[i] as number) + eps);
    shift[i] = (beta[i] as number) - (mean[i] as number) * (scale[i] as number);
  }
  return { scale, shift };
}

const batchNormalization: LayerHandler = (layer, cv) => {
  const out = layer.name;
  const s = cv.shapeOf(layer);
  const ch = s[s.length - 1] as number;
  const { scale, shift } = batchNormAffine(layer, cv, s);
  const x = cv.inputValue(layer);
  const producer = cv.producers.get(x);
  const from = layer.inbound[0] ?? "";
  if (
    producer &&
    (producer.op === "conv" || producer.op === "gemm") &&
    cv.consumers.get(from) === 1 &&
    cv.values.get(from) === producer.output
  ) {
    // y = scale · (W x + b) + shift: scale each output channel's weights, fold into the bias.
    const per = producer.weights.length / ch;
    for (let o = 0; o < ch; o++) {
      const f = scale[o] as number;
      for (let i = o * per; i < (o + 1) * per; i++) producer.weights[i] = (producer.weights[i] as number) * f;
      producer.bias[o] = (producer.bias[o] as number) * f + (shift[o] as number);
    }
    cv.producers.delete(producer.output);
    producer.output = out;
    cv.producers.set(out, producer);
  } else {
    // Not foldable into what precedes it (e.g. Dense with an activation, then BN): a
    // per-channel multiply-add, folded into a following Dense afterwards when possible.
    cv.push({ op: "affine", input: x, output: out, scale, shift, ...(s.length === 1 && { flat: true }) });
  }
  cv.values.set(out, out);
  cv.shapes.set(out, s);
};

const relu: LayerHandler = (layer, cv) => {
  const c = layer.config;
  const out = layer.name;
  const x = cv.inputValue(layer);
  const max = c.max_value === null || c.max_value === undefined ? undefined : Number(c.max_value);
  const slope = Number(c.negative_slope ?? 0);
  if (Number(c.threshold ?? 0) !== 0)
    throw new Error(`layer '${layer.name}': ReLU threshold ≠ 0 is not supported`);
  if (slope !== 0 && max !== undefined)
    throw new Error(`layer '${layer.name}': ReLU with both negative_slope and max_value is not supported`);
  if (max !== undefined) cv.push({ op: "clip", input: x, output: out, min: 0, max });
  else if (slope !== 0) cv.push({ op: "leaky_relu", input: x, output: out, alpha: slope });
  else cv.push({ op: "relu", input: x, output: out });
  cv.values.set(out, out);
  cv.shapes.set(out, cv.shapeOf(layer));
};

/** Activation and Softmax. */
const activationLayer: LayerHandler = (layer, cv) => {
  const s = cv.shapeOf(layer);
  const act = layer.class_name === "Softmax" ? "softmax" : String(layer.config.activation);
  if (act === "softmax" && s.length !== 1)
    throw new Error(`layer '${layer.name}': softmax over a 4-D value is not supported`);
  const y = cv.activation(layer, cv.inputValue(layer), act);
  cv.values.set(layer.name, y);
  cv.shapes.set(layer.name, s);
};

/** Add and Concatenate (channel axis). */
const merge: LayerHandler = (layer, cv) => {
  const out = layer.name;
  const xs = layer.inbound.map((_, i) => cv.inputValue(layer, i));
  const ss = layer.inbound.map((_, i) => cv.shapeOf(layer, i));
  const first = ss[0] as Shape;
  if (layer.class_name === "Add") {
    if (!ss.every((s) => s.join() === first.join()))
      throw new Error(`layer '${layer.name}': Add inputs differ in shape`);
    cv.push({ op: "add", inputs: xs, output: out });
    cv.shapes.set(out, first);
  } else {
    const axis = Number(layer.config.axis ?? -1);
    if (axis !== -1 && axis !== first.length)
      throw new Error(`layer '${layer.name}': only concatenation over channels is supported`);
    cv.push({ op: "concat", inputs: xs, output: out });
    const total = ss.reduce((n, s) => n + (s[s.length - 1] as number), 0);
    cv.shapes.set(out, first.length === 3 ? [first[0], first[1] as number, total] : [total]);
  }
  cv.values.set(out, out);
};

/** AveragePooling2D and MaxPooling2D. */
const pooling2D: LayerHandler = (layer, cv) => {
  const c = layer.config;
  const out = layer.name;
  const [h, w, ch] = cv.spatial(layer, cv.shapeOf(layer));
  const [kh, kw] = pair(c.pool_size ?? 2, `layer '${layer.name}' pool_size`);
  const [sh, sw] = pair(c.strides ?? [kh, kw], `layer '${layer.name}' strides`);
  let pads: Pads = [0, 0, 0, 0];
  let oh = windowOut(h, kh, sh, 1, 0);
  let ow = windowOut(w, kw, sw, 1, 0);
  if (c.padding === "same") {
    const [pt, pb, hOut] = samePads(h, kh, sh, 1);
    const [pl, pr, wOut] = samePads(w, kw, sw, 1);
    pads = [pt, pl, pb, pr];
    oh = hOut;
    ow = wOut;
  } else if (c.padding !== "valid") {
    throw new Error(`layer '${layer.name}': unsupported padding '${String(c.padding)}'`);
  }
  const op = layer.class_name === "AveragePooling2D" ? "avgpool" : "maxpool";
  cv.push({ op, input: cv.inputValue(layer), output: out, kernel: [kh, kw], strides: [sh, sw], pads });
  cv.values.set(out, out);
  cv.shapes.set(out, [oh, ow, ch]);
};

const globalAveragePooling2D: LayerHandler = (layer, cv) => {
  const out = layer.name;
  const [, , ch] = cv.spatial(layer, cv.shapeOf(layer));
  const pooled = `${out}_pooled`;
  cv.push({ op: "global_avgpool", input: cv.inputValue(layer), output: pooled });
  if (layer.config.keepdims === true) {
    cv.values.set(out, pooled);
    cv.shapes.set(out, [1, 1, ch]);
  } else {
    cv.push({ op: "flatten", input: pooled, output: out });
    cv.values.set(out, out);
    cv.shapes.set(out, [ch]);
  }
};

/** Flatten and Reshape (only reshapes that do not move data). */
const reshape: LayerHandler = (layer, cv) => {
  const out = layer.name;
  const s = cv.shapeOf(layer);
  const x = cv.inputValue(layer);
  const size = s.reduce((a, b) => a * b, 1);
  const target = layer.class_name === "Flatten" ? [size] : ((layer.config.target_shape ?? []) as number[]);
  if (target.join() === s.join()) {
    cv.values.set(out, x);
  } else if (target.length === 1 && target[0] === size && s.length === 3) {
    let flat = x;
    if (s[0] * s[1] !== 1) {
      // Keras flattens in H, W, C order; the graph holds C, H, W.
      flat = `${out}_nhwc`;
      cv.push({ op: "transpose", input: x, output: flat, perm: [0, 2, 3, 1] });
    }
    cv.push({ op: "flatten", input: flat, output: out });
    cv.values.set(out, out);
  } else if (
    target.length === 3 &&
    target[0] === 1 &&
    target[1] === 1 &&
    s.length === 1 &&
    target[2] === s[0]
  ) {
    cv.push({ op: "unsqueeze_hw", input: x, output: out });
    cv.values.set(out, out);
  } else {
    throw new Error(
      `layer '${layer.name}': ${layer.class_name} from [${s}] to [${target}] is not supported (only [C] ↔ [1, 1, C] and flattening)`,
    );
  }
  cv.shapes.set(out, target.length === 3 ? (target as [number, number, number]) : [size]);
};

const dense: LayerHandler = (layer, cv) => {
  const c = layer.config;
  const out = layer.name;
  const s = cv.shapeOf(layer);
  if (s.length !== 1)
    throw new Error(`layer '${layer.name}': Dense on a 4-D value is not supported (flatten first)`);
  const inputs = s[0];
  const units = Number(c.units);
  const k = cv.weight(layer, "kernel", inputs * units);
  const w = new Float32Array(units * inputs);
  for (let i = 0; i < inputs; i++)
    for (let u = 0; u < units; u++) w[u * inputs + i] = k[i * units + u] as number;
  const bias = c.use_bias === false ? new Float32Array(units) : cv.weight(layer, "bias", units).slice();
  cv.push({ op: "gemm", input: cv.inputValue(layer), output: out, weights: w, units, bias });
  cv.values.set(out, cv.activation(layer, out, c.activation as string | undefined));
  cv.shapes.set(out, [units]);
};

/** Keras layer class → its handler; the keys, in this order, are the supported layers. */
export const LAYER_HANDLERS = {
  InputLayer: inputLayer,
  Conv2D: conv2D,
  DepthwiseConv2D: conv2D,
  BatchNormalization: batchNormalization,
  ReLU: relu,
  Activation: activationLayer,
  Softmax: activationLayer,
  ZeroPadding2D: zeroPadding2D,
  Add: merge,
  Concatenate: merge,
  AveragePooling2D: pooling2D,
  MaxPooling2D: pooling2D,
  GlobalAveragePooling2D: globalAveragePooling2D,
  Dense: dense,
  Flatten: reshape,
  Reshape: reshape,
  Dropout: dropout,
} satisfies Record<string, LayerHandler>;

export type SupportedLayer = keyof typeof LAYER_HANDLERS;

/** The handler of a layer class, if it is supported. */
export function layerHandler(className: string): LayerHandler | undefined {
  return Object.hasOwn(LAYER_HANDLERS, className) ? LAYER_HANDLERS[className as SupportedLayer] : undefined;
}
