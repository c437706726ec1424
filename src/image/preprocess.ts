/**
 * Decoded pixels → a model's input tensor, as its manifest's `preprocess` spec declares. The one
 * preprocessing path: the Worker, the trainer (on the raw MNIST pixels) and the bench all call
 * `toModelInput`.
 *
 * Steps, in order:
 * 1. colour → gray: ITU-R BT.601 luma, `0.299 R + 0.587 G + 0.114 B`; gray is taken as is;
 * 2. alpha: composited over black (the background of MNIST-style white-on-black digits);
 * 3. resize, `fit: "contain"`: scaled by one factor for both axes so the whole image fits the
 *    model's height × width, centred, the rest black (letterbox);
 * 4. `filter: "triangle"`: separable resampling with a triangle (tent, "bilinear") kernel whose
 *    support grows with the reduction factor, so downscaling averages every source pixel (no
 *    aliasing; the same definition as Pillow's `resize(..., BILINEAR)`). Same size = identity;
 * 5. normalise: `x = (v / 255 − mean) / std`, laid out NCHW (`[1, channels, height, width]`).
 */

import type { ImagePreprocessSpec } from "../inference/manifest";
import type { DecodedImage } from "./decode";

/** One gray plane in [0, 255] (float), row-major. */
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

/** All steps: a decoded image → the model's float32 input `[channels × height × width]` (NCHW, batch 1). */
export function toModelInput(image: DecodedImage, spec: ImagePreprocessSpec): Float32Array {
  const plane = resizeContain(toGray(image), spec.width, spec.height);
  const mean = spec.normalize.mean[0] as number;
  const std = spec.normalize.std[0] as number;
  const out = new Float32Array(plane.data.length);
  for (let i = 0; i < out.length; i++) out[i] = ((plane.data[i] as number) / 255 - mean) / std;
  return out;
}
