/**
 * Decoded pixels → a model's input tensor, as its manifest's `preprocess` spec declares. The one
 * preprocessing path: the Worker, the trainer (on the raw MNIST pixels), the importer's parity
 * references and the bench all call `toModelInput`.
 *
 * Steps, in order:
 * 1. colour: `channels: 1` → gray, ITU-R BT.601 luma `0.299 R + 0.587 G + 0.114 B` (gray taken as
 *    is); `channels: 3` → R, G, B planes (gray replicated into all three);
 * 2. alpha: composited over black (the background of MNIST-style white-on-black digits);
 * 3. resize to the model's height × width, by `fit`:
 *    - `contain`: one factor for both axes so the whole image fits, centred, the rest black
 *      (letterbox);
 *    - `stretch`: each axis scaled to fit on its own (the aspect ratio is not kept);
 *    - `cover`: the centred crop of the source with the model's aspect ratio, scaled to fit (=
 *      shorter side to size, then centre crop, without resampling the cut-off parts);
 * 4. `filter: "triangle"`: separable resampling with a triangle (tent, "bilinear") kernel whose
 *    support grows with the reduction factor, so downscaling averages every source pixel (no
 *    aliasing; the same definition as Pillow's `resize(..., BILINEAR)`). Same size = identity;
 * 5. normalise per channel: `x = (v / 255 − mean[c]) / std[c]`, laid out NCHW (`[C, H, W]`) or NHWC
 *    (`[H, W, C]`), batch 1.
 */

import type { ImagePreprocessSpec } from "../contracts/manifest";
import type { DecodedImage } from "./decode";

/** One colour plane (gray, or R, G or B) in [0, 255] (float), row-major. */
export interface GrayPlane {
  width: number;
  height: number;
  data: Float32Array;
}

/** Steps 1–2: BT.601 luma, alpha composited over black. */
export function toGray(image: DecodedImage): GrayPlane {
  const { width, height, channels, data } = image;
  const out = new Float32Array(width * height);
  for (let i = 0, p = 0; i < out.length; i++, p += channels) {
    let v: number;
    let alpha = 255;
    if (channels <= 2) {
      v = data[p] as number;
      if (channels === 2) alpha = data[p + 1] as number;
    } else {
      v = 0.299 * (data[p] as number) + 0.587 * (data[p + 1] as number) + 0.114 * (data[p + 2] as number);
      if (channels === 4) alpha = data[p + 3] as number;
    }
    out[i] = alpha === 255 ? v : (v * alpha) / 255;
  }
  return { width, height, data: out };
}

/** Per output index: first source index and its normalised weights (triangle kernel). */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  maxTaps: number;
}

function triangleTaps(inSize: number, outSize: number): Taps {
  const scale = outSize / inSize;
  const support = scale < 1 ? 1 / scale : 1;
  const maxTaps = Math.ceil(support) * 2 + 2;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * maxTaps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) / scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(inSize, Math.ceil(center + support));
    let sum = 0;
    let n = 0;
    for (let i = lo; i < hi && n < maxTaps; i++, n++) {
      const w = Math.max(0, 1 - Math.abs(i + 0.5 - center) / support);
      weights[o * maxTaps + n] = w;
      sum += w;
    }
    for (let k = 0; k < n; k++) weights[o * maxTaps + k] = (weights[o * maxTaps + k] as number) / (sum || 1);
    start[o] = lo;
    count[o] = n;
  }
  return { start, count, weights, maxTaps };
}

/** Separable triangle-filter resampling of `plane` to `outW × outH` (identity when sizes match). */
export function resizeTriangle(plane: GrayPlane, outW: number, outH: number): GrayPlane {
  const { width, height, data } = plane;
  if (width === outW && height === outH) return plane;
  const tx = triangleTaps(width, outW);
  const ty = triangleTaps(height, outH);
  // Horizontal pass: height × outW.
  const mid = new Float32Array(height * outW);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < outW; x++) {
      const s = tx.start[x] as number;
      const n = tx.count[x] as number;
      const base = x * tx.maxTaps;
      let acc = 0;
      for (let k = 0; k < n; k++) acc += (tx.weights[base + k] as number) * (data[row + s + k] as number);
      mid[y * outW + x] = acc;
    }
  }
  // Vertical pass: outH × outW.
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const s = ty.start[y] as number;
    const n = ty.count[y] as number;
    const base = y * ty.maxTaps;
    for (let k = 0; k < n; k++) {
      const w = ty.weights[base + k] as number;
      const src = (s + k) * outW;
      for (let x = 0; x < outW; x++)
        out[y * outW + x] = (out[y * outW + x] as number) + w * (mid[src + x] as number);
    }
  }
  return { width: outW, height: outH, data: out };
}

/** Step 3–4: scales `plane` to fit `width × height` keeping its aspect ratio, centred on black. */
export function resizeContain(plane: GrayPlane, width: number, height: number): GrayPlane {
  const scale = Math.min(width / plane.width, height / plane.height);
  const w = Math.min(width, Math.max(1, Math.round(plane.width * scale)));
  const h = Math.min(height, Math.max(1, Math.round(plane.height * scale)));
  const resized = resizeTriangle(plane, w, h);
  if (w === width && h === height) return resized;
  const out = new Float32Array(width * height);
  const x0 = (width - w) >> 1;
  const y0 = (height - h) >> 1;
  for (let y = 0; y < h; y++) out.set(resized.data.subarray(y * w, (y + 1) * w), (y0 + y) * width + x0);
  return { width, height, data: out };
}

/** Steps 1–2 for `channels: 3`: R, G, B planes (gray replicated), alpha composited over black. */
export function toRgbPlanes(image: DecodedImage): [GrayPlane, GrayPlane, GrayPlane] {
  const { width, height, channels, data } = image;
  const n = width * height;
  const r = new Float32Array(n);
  const g = new Float32Array(n);
  const b = new Float32Array(n);
  const color = channels >= 3;
  const alphaAt = channels === 2 ? 1 : channels === 4 ? 3 : -1;
  for (let i = 0, p = 0; i < n; i++, p += channels) {
    const alpha = alphaAt < 0 ? 255 : (data[p + alphaAt] as number);
    const f = alpha === 255 ? 1 : alpha / 255;
    const v0 = data[p] as number;
    r[i] = v0 * f;
    g[i] = (color ? (data[p + 1] as number) : v0) * f;
    b[i] = (color ? (data[p + 2] as number) : v0) * f;
  }
  return [
    { width, height, data: r },
    { width, height, data: g },
    { width, height, data: b },
  ];
}

/** The centred crop of `plane` with the aspect ratio `width : height` (the whole plane if it has it). */
export function cropToAspect(plane: GrayPlane, width: number, height: number): GrayPlane {
  const scale = Math.max(width / plane.width, height / plane.height);
  const w = Math.min(plane.width, Math.max(1, Math.round(width / scale)));
  const h = Math.min(plane.height, Math.max(1, Math.round(height / scale)));
  if (w === plane.width && h === plane.height) return plane;
  const x0 = (plane.width - w) >> 1;
  const y0 = (plane.height - h) >> 1;
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const src = (y0 + y) * plane.width + x0;
    out.set(plane.data.subarray(src, src + w), y * w);
  }
  return { width: w, height: h, data: out };
}

/** Step 3–4 for one plane, by the spec's `fit`. */
export function resizePlane(plane: GrayPlane, spec: ImagePreprocessSpec): GrayPlane {
  const { width, height } = spec;
  if (spec.resize.fit === "contain") return resizeContain(plane, width, height);
  const source = spec.resize.fit === "cover" ? cropToAspect(plane, width, height) : plane;
  return resizeTriangle(source, width, height);
}

/**
 * All steps: a decoded image → the model's float32 input, `[C, H, W]` (NCHW) or `[H, W, C]` (NHWC)
 * for one image (the graph input's dims are `imageInputDims(spec, 1)`).
 */
export function toModelInput(image: DecodedImage, spec: ImagePreprocessSpec): Float32Array {
  const planes = spec.channels === 1 ? [toGray(image)] : toRgbPlanes(image);
  const C = planes.length;
  const size = spec.width * spec.height;
  const out = new Float32Array(C * size);
  planes.forEach((source, c) => {
    const plane = resizePlane(source, spec).data;
    const mean = spec.normalize.mean[c] as number;
    const std = spec.normalize.std[c] as number;
    if (spec.layout === "NCHW") {
      const base = c * size;
      for (let i = 0; i < size; i++) out[base + i] = ((plane[i] as number) / 255 - mean) / std;
    } else {
      for (let i = 0; i < size; i++) out[i * C + c] = ((plane[i] as number) / 255 - mean) / std;
    }
  });
  return out;
}
