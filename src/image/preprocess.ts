/**
 * Decoded pixels → a model's input tensor, as its manifest's `preprocess` spec declares. The one
 * preprocessing path: the Worker, the trainer (on the raw MNIST pixels), the importer's parity
 * references and the bench all call `toModelInput`.
 *
 * Steps, in order:
 * 1. colour: `channels: 1` → gray, ITU-R BT.601 luma `0.299 R + 0.587 G + 0.114 B` (gray taken as
 *    is); `channels: 3` → R, G, B planes (gray replicated into all three);
 * 2. alpha (`alpha`): composited over black (`black`, the default: the background of MNIST-style
 *    white-on-black digits), or ignored (`ignore`: the colour as stored, what TF.js's
 *    `tf.browser.fromPixels(image, 3)` gives a TF.js model);
 * 3. resize to the model's height × width, by `fit`:
 *    - `contain`: one factor for both axes so the whole image fits, centred, the rest black
 *      (letterbox);
 *    - `stretch`: each axis scaled to fit on its own (the aspect ratio is not kept);
 *    - `cover`: the centred crop of the source with the model's aspect ratio, scaled to fit (=
 *      shorter side to size, then centre crop, without resampling the cut-off parts);
 * 4. the resampling `filter`, as the model's origin computed it (same size = identity for all):
 *    - `triangle` (antialiased): separable resampling with a triangle (tent) kernel whose support
 *      grows with the reduction factor, so downscaling averages every source pixel (no aliasing;
 *      the same definition as Pillow's `resize(..., BILINEAR)`);
 *    - `bilinear_align_corners`: point-sampled bilinear interpolation with the corner pixels of
 *      source and output aligned, `src = o · (in − 1) / (out − 1)` (TF.js
 *      `tf.image.resizeBilinear(x, size, alignCorners = true)`, TF1 `align_corners=True`; what nsfwjs
 *      does); no antialiasing: a large reduction skips source pixels;
 *    - `bilinear_half_pixel`: point-sampled bilinear interpolation between pixel centres,
 *      `src = (o + 0.5) · in / out − 0.5`, clamped at the edges (OpenCV `cv2.resize(INTER_LINEAR)`,
 *      TF2 `tf.image.resize(antialias=False)`, PyTorch `interpolate(bilinear, align_corners=False)`);
 * 5. normalise per channel: `x = (v / 255 − mean[c]) / std[c]`, laid out NCHW (`[C, H, W]`) or NHWC
 *    (`[H, W, C]`), batch 1.
 */

import type { ImagePreprocessSpec } from "../contracts/manifest";
import type { DecodedImage } from "./pixels";

/** One colour plane (gray, or R, G or B) in [0, 255] (float), row-major. */
export interface GrayPlane {
  width: number;
  height: number;
  data: Float32Array;
  /** Present when the plane holds only some pixels of a larger image (sampled decoding). */
  grid?: PlaneGrid;
}

/** How alpha is treated: composited over black, or ignored (the colour as stored; TF.js `fromPixels`). */
export type AlphaMode = "black" | "ignore";

/** Steps 1–2: BT.601 luma, alpha composited over black (or ignored). */
export function toGray(image: DecodedImage, alphaMode: AlphaMode = "black"): GrayPlane {
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
    out[i] = alpha === 255 || alphaMode === "ignore" ? v : (v * alpha) / 255;
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

/** Per output index: the two source indices and the weight of the second (bilinear, point-sampled). */
interface BilinearTaps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

/** Bilinear source coordinates, computed as TF.js's `resizeBilinear` kernel does (both modes). */
function bilinearTaps(inSize: number, outSize: number, alignCorners: boolean): BilinearTaps {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  const aligned = alignCorners && outSize > 1;
  const ratio = (aligned ? inSize - 1 : inSize) / (aligned ? outSize - 1 : outSize);
  for (let o = 0; o < outSize; o++) {
    const src = alignCorners ? ratio * o : ratio * (o + 0.5) - 0.5;
    const floor = Math.max(0, Math.floor(src));
    lo[o] = floor;
    hi[o] = Math.min(inSize - 1, Math.ceil(src));
    // Below the first pixel centre (half-pixel mode) both taps are pixel 0: the weight is moot.
    frac[o] = Math.max(0, src - floor);
  }
  return { lo, hi, frac };
}

/**
 * Which pixels of a `width × height` image a gridded plane holds: the full image's size and, per full
 * column and row, its index in the plane's data (−1: not held). Sampled decoding (`sampleGrid`)
 * keeps only the pixels a point-sampled resize reads.
 */
export interface PlaneGrid {
  width: number;
  height: number;
  colOf: Int32Array;
  rowOf: Int32Array;
}

/** The logical size of a plane: the full image's for a gridded plane. */
function logicalSize(plane: GrayPlane): { width: number; height: number } {
  return plane.grid ?? plane;
}

/**
 * Point-sampled bilinear resampling of `plane` to `outW × outH` (identity when sizes match), with
 * TF.js's coordinate rules: `alignCorners` true maps corner pixel to corner pixel, false maps pixel
 * centres (half-pixel). Interpolates each row pair horizontally, then vertically, as TF.js does.
 * A gridded plane must hold every pixel the taps read (`sampleGrid` computes them).
 */
export function resizeBilinear(
  plane: GrayPlane,
  outW: number,
  outH: number,
  alignCorners: boolean,
): GrayPlane {
  const { data, grid } = plane;
  const { width, height } = logicalSize(plane);
  if (width === outW && height === outH && !grid) return plane;
  const tx = bilinearTaps(width, outW, alignCorners);
  const ty = bilinearTaps(height, outH, alignCorners);
  if (grid) {
    const map = (taps: Int32Array, of: Int32Array) => {
      for (let i = 0; i < taps.length; i++) {
        const v = of[taps[i] as number] as number;
        if (v < 0) throw new Error("sampled image lacks a pixel the resize reads");
        taps[i] = v;
      }
    };
    map(tx.lo, grid.colOf);
    map(tx.hi, grid.colOf);
    map(ty.lo, grid.rowOf);
    map(ty.hi, grid.rowOf);
  }
  const stride = plane.width;
  const out = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const top = (ty.lo[y] as number) * stride;
    const bottom = (ty.hi[y] as number) * stride;
    const fy = ty.frac[y] as number;
    for (let x = 0; x < outW; x++) {
      const l = tx.lo[x] as number;
      const r = tx.hi[x] as number;
      const fx = tx.frac[x] as number;
      const tl = data[top + l] as number;
      const bl = data[bottom + l] as number;
      const t = tl + ((data[top + r] as number) - tl) * fx;
      const b = bl + ((data[bottom + r] as number) - bl) * fx;
      out[y * outW + x] = t + (b - t) * fy;
    }
  }
  return { width: outW, height: outH, data: out };
}

/** Resampling method of a manifest's `resize.filter`. */
export type ResizeFilter = ImagePreprocessSpec["resize"]["filter"];

/** Resamples `plane` to `outW × outH` with `filter` (identity when sizes match). */
export function resample(plane: GrayPlane, outW: number, outH: number, filter: ResizeFilter): GrayPlane {
  if (filter === "triangle") {
    if (plane.grid) throw new Error("the triangle filter needs every pixel, not a sampled image");
    return resizeTriangle(plane, outW, outH);
  }
  return resizeBilinear(plane, outW, outH, filter === "bilinear_align_corners");
}

/** `contain`: the size of the image scaled by one factor to fit `width × height`. */
function containSize(srcW: number, srcH: number, width: number, height: number): { w: number; h: number } {
  const scale = Math.min(width / srcW, height / srcH);
  return {
    w: Math.min(width, Math.max(1, Math.round(srcW * scale))),
    h: Math.min(height, Math.max(1, Math.round(srcH * scale))),
  };
}

/** `cover`: the centred crop of a `srcW × srcH` image with the aspect ratio `width : height`. */
function aspectCrop(
  srcW: number,
  srcH: number,
  width: number,
  height: number,
): { x0: number; y0: number; w: number; h: number } {
  const scale = Math.max(width / srcW, height / srcH);
  const w = Math.min(srcW, Math.max(1, Math.round(width / scale)));
  const h = Math.min(srcH, Math.max(1, Math.round(height / scale)));
  return { x0: (srcW - w) >> 1, y0: (srcH - h) >> 1, w, h };
}

/** Step 3–4: scales `plane` to fit `width × height` keeping its aspect ratio, centred on black. */
export function resizeContain(
  plane: GrayPlane,
  width: number,
  height: number,
  filter: ResizeFilter = "triangle",
): GrayPlane {
  const src = logicalSize(plane);
  const { w, h } = containSize(src.width, src.height, width, height);
  const resized = resample(plane, w, h, filter);
  if (w === width && h === height) return resized;
  const out = new Float32Array(width * height);
  const x0 = (width - w) >> 1;
  const y0 = (height - h) >> 1;
  for (let y = 0; y < h; y++) out.set(resized.data.subarray(y * w, (y + 1) * w), (y0 + y) * width + x0);
  return { width, height, data: out };
}

/**
 * The full-image rows and columns (sorted, distinct) that `toModelInput` reads from a
 * `width × height` image under `spec` with a point-sampled filter (`bilinear_*`): the two taps of
 * every output row and column, inside the `cover` crop. Undefined for `triangle` (it reads every
 * pixel) and when no resampling happens (same size).
 */
export function sampleGrid(
  spec: ImagePreprocessSpec,
  width: number,
  height: number,
): { rows: Int32Array; cols: Int32Array } | undefined {
  const { filter, fit } = spec.resize;
  if (filter === "triangle") return undefined;
  let region = { x0: 0, y0: 0, w: width, h: height };
  let outW = spec.width;
  let outH = spec.height;
  if (fit === "cover") region = aspectCrop(width, height, spec.width, spec.height);
  else if (fit === "contain") ({ w: outW, h: outH } = containSize(width, height, spec.width, spec.height));
  if (region.w === outW && region.h === outH) return undefined;
  const align = filter === "bilinear_align_corners";
  const axis = (inSize: number, outSize: number, offset: number) => {
    const taps = bilinearTaps(inSize, outSize, align);
    const set = new Set<number>();
    for (let i = 0; i < outSize; i++)
      set.add((taps.lo[i] as number) + offset).add((taps.hi[i] as number) + offset);
    return Int32Array.from([...set].sort((a, b) => a - b));
  };
  return { rows: axis(region.h, outH, region.y0), cols: axis(region.w, outW, region.x0) };
}

/** Full index → index in the sorted `held` list (−1 elsewhere), for a `size`-long axis. */
export function gridIndex(held: Int32Array, size: number): Int32Array {
  const of = new Int32Array(size).fill(-1);
  held.forEach((v, i) => {
    of[v] = i;
  });
  return of;
}

/** Steps 1–2 for `channels: 3`: R, G, B planes (gray replicated), alpha composited over black. */
export function toRgbPlanes(
  image: DecodedImage,
  alphaMode: AlphaMode = "black",
): [GrayPlane, GrayPlane, GrayPlane] {
  const { width, height, channels, data } = image;
  const n = width * height;
  const r = new Float32Array(n);
  const g = new Float32Array(n);
  const b = new Float32Array(n);
  const color = channels >= 3;
  const alphaAt = alphaMode === "ignore" ? -1 : channels === 2 ? 1 : channels === 4 ? 3 : -1;
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
  const src = logicalSize(plane);
  const { x0, y0, w, h } = aspectCrop(src.width, src.height, width, height);
  if (w === src.width && h === src.height) return plane;
  if (plane.grid) {
    const { colOf, rowOf } = plane.grid;
    return {
      ...plane,
      grid: { width: w, height: h, colOf: colOf.subarray(x0, x0 + w), rowOf: rowOf.subarray(y0, y0 + h) },
    };
  }
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
  const { fit, filter } = spec.resize;
  if (fit === "contain") return resizeContain(plane, width, height, filter);
  const source = fit === "cover" ? cropToAspect(plane, width, height) : plane;
  return resample(source, width, height, filter);
}

/**
 * All steps: a decoded image → the model's float32 input, `[C, H, W]` (NCHW) or `[H, W, C]` (NHWC)
 * for one image (the graph input's dims are `imageInputDims(spec, 1)`).
 */
export function toModelInput(image: DecodedImage, spec: ImagePreprocessSpec): Float32Array {
  const alpha = spec.alpha ?? "black";
  const planes: GrayPlane[] = spec.channels === 1 ? [toGray(image, alpha)] : toRgbPlanes(image, alpha);
  if (image.grid) {
    const { width, height, rows, cols } = image.grid;
    const grid = { width, height, colOf: gridIndex(cols, width), rowOf: gridIndex(rows, height) };
    for (const plane of planes) plane.grid = grid;
  }
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
