/**
 * Image bytes in, 8-bit pixels out, for untrusted input: base64 (standard or URL-safe, optional
 * `data:` prefix) → bytes → format and dimensions from the header (image-size) → PNG (fast-png) or
 * JPEG (jpeg-js) decode. Both decoders are pure JavaScript: they run unchanged in workerd and in
 * Node (the trainer and the bench use this module too), and a corrupt file is an ordinary thrown
 * error, never a trapped WebAssembly instance.
 *
 * Limits are checked before the work they bound: the base64 length before decoding it, the pixel
 * count from the header, then the decode budget of the format before its decoder runs (`checkImage`:
 * PNG image data inflated against the exact size its header implies, in ./png.ts; JPEG segments,
 * scans and scan work against what its header allows, in ./jpeg.ts). Every failure is an
 * `ApiError`: `invalid_image` (400), `image_too_large` (413) or `unsupported_image_format` (415).
 */

import { decode as decodePng } from "fast-png";
import { imageSize } from "image-size";
import { decode as decodeJpeg } from "jpeg-js";
import { base64Bytes } from "../bytes";
import type { ImagePreprocessSpec } from "../contracts/manifest";
import { ApiError } from "../errors";
import { checkJpeg } from "./jpeg";
import { decodeJpegTo, JpegBudgetError, readJpegInfo } from "./jpeg-decode";
import {
  jpegOrientation,
  type Orientation,
  orientImage,
  pngOrientation,
  storedGrid,
  swapsAxes,
} from "./orientation";
import type { DecodedImage, ImageFormat } from "./pixels";
import { checkPng, type PngLayout } from "./png";
import { pngRows } from "./png-rows";
import { sampleGrid } from "./preprocess";

/** Largest accepted image file, in decoded bytes (10 MiB: a 12 MP phone JPEG is 3–6 MB). */
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
/** Largest accepted pixel count (width × height), checked from the header before decoding (24 MP). */
export const MAX_IMAGE_PIXELS = 24 * 1024 * 1024;
/** Largest accepted width or height. */
export const MAX_IMAGE_SIDE = 8192;
/**
 * Most pixels decoded at full size (what preprocessing holds as float planes: 12 bytes per RGB
 * pixel). Larger JPEGs are decoded at 1/2, 1/4 or 1/8 scale or sampled, larger PNGs reduced
 * right after decoding, so a 24 MP photo never costs more than a 4 MP one downstream.
 */
export const MAX_DECODED_PIXELS = 4 * 1024 * 1024;
/** Longest base64 text that can hold `MAX_IMAGE_BYTES` (plus a `data:` prefix and line breaks). */
export const MAX_IMAGE_BASE64_CHARS = Math.ceil((Math.ceil(MAX_IMAGE_BYTES / 3) * 4 * 105) / 100) + 256;
/** Room for the base64 of a `MAX_IMAGE_BYTES` image plus the rest of a JSON request body. */
export const MAX_IMAGE_BODY_BYTES = MAX_IMAGE_BASE64_CHARS + 64 * 1024;

const DATA_URL = /^data:([^,]*?),/i;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function invalid(detail: string, cause?: unknown): ApiError {
  return new ApiError("invalid_image", detail, cause === undefined ? {} : { cause });
}

function tooLarge(detail: string, limits: Record<string, number>): ApiError {
  return new ApiError("image_too_large", detail, { extensions: limits });
}

/**
 * Decodes base64 image text: standard or URL-safe alphabet, padding optional, ASCII whitespace
 * ignored, optionally a `data:<type>;base64,` URL (the declared type is ignored: the bytes are
 * sniffed). Refuses more than `MAX_IMAGE_BYTES` before decoding.
 */
export function decodeBase64Image(text: string): Uint8Array {
  if (text.length > MAX_IMAGE_BASE64_CHARS) {
    throw tooLarge(`image exceeds ${MAX_IMAGE_BYTES} bytes`, { limit_bytes: MAX_IMAGE_BYTES });
  }
  let body = text.trim();
  const dataUrl = DATA_URL.exec(body);
  if (dataUrl) {
    if (!/;base64$/i.test(dataUrl[1] ?? "")) throw invalid("a data: URL image must be base64 (';base64,')");
    body = body.slice(dataUrl[0].length);
  }
  body = body.replace(/[\t\n\f\r ]+/g, "");
  if (body === "") throw invalid("image is empty");
  if (!BASE64.test(body) || body.replace(/=+$/, "").length % 4 === 1) {
    throw invalid("image is not valid base64 (standard or URL-safe alphabet)");
  }
  const unpadded = body.replace(/=+$/, "");
  const size = Math.floor((unpadded.length * 3) / 4);
  if (size > MAX_IMAGE_BYTES) {
    throw tooLarge(`image is ${size} bytes; the limit is ${MAX_IMAGE_BYTES}`, {
      limit_bytes: MAX_IMAGE_BYTES,
    });
  }
  return base64Bytes(unpadded);
}

/** Format and dimensions from the header only; refuses other formats, zero and oversized dimensions. */
export function readImageHeader(bytes: Uint8Array): { format: ImageFormat; width: number; height: number } {
  let size: { width: number; height: number; type?: string | undefined };
  try {
    size = imageSize(bytes);
  } catch (cause) {
    throw invalid("image is not a PNG or JPEG file, or its header is truncated or corrupt", cause);
  }
  const type = size.type;
  if (type !== "png" && type !== "jpg") {
    throw new ApiError(
      "unsupported_image_format",
      `image format '${type}' is not supported; send PNG or JPEG`,
      {
        extensions: { supported: ["png", "jpeg"] },
      },
    );
  }
  const { width, height } = size;
  if (!(width >= 1 && height >= 1)) throw invalid(`image has zero size (${width}×${height})`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw tooLarge(
      `image is ${width}×${height} pixels; the limits are ${MAX_IMAGE_SIDE} per side and ${MAX_IMAGE_PIXELS} pixels`,
      { limit_pixels: MAX_IMAGE_PIXELS, limit_side: MAX_IMAGE_SIDE },
    );
  }
  return { format: type === "png" ? "png" : "jpeg", width, height };
}

/** A file that passed `checkImage`: its header and, for a PNG, its checked layout. */
export interface CheckedImage {
  format: ImageFormat;
  width: number;
  height: number;
  png?: PngLayout;
}

/**
 * Everything that is refused without decoding pixels: the header (`readImageHeader`), then the
 * format's decode budget (PNG: the image data inflates to exactly the size the header implies;
 * JPEG: segment and scan counts, a valid scan script, scan work). Cheap next to a decode (a PNG's
 * data is inflated and dropped, a JPEG's segments walked), so the async route runs it before 202.
 */
export function checkImage(bytes: Uint8Array): CheckedImage {
  const header = readImageHeader(bytes);
  if (header.format === "jpeg") {
    checkJpeg(bytes);
    return header;
  }
  const png = checkPng(bytes);
  if (png.width !== header.width || png.height !== header.height) {
    throw invalid("image dimensions in the header and the image data differ");
  }
  return { ...header, png };
}

/** Decodes with `decode`, turning a decoder's own errors into 400 `invalid_image`. */
function guarded<T>(format: ImageFormat, decode: () => T): T {
  try {
    return decode();
  } catch (cause) {
    if (cause instanceof ApiError) throw cause;
    throw invalid(`${format === "png" ? "PNG" : "JPEG"} data is truncated or corrupt`, cause);
  }
}

/** The EXIF orientation of a checked file (1 when it has none). */
function orientationOf(bytes: Uint8Array, checked: CheckedImage): Orientation {
  return checked.format === "jpeg" ? jpegOrientation(bytes) : pngOrientation(bytes);
}

/** Full-size pixels as stored (PNG: fast-png; JPEG: ./jpeg-decode.ts, jpeg-js for 4 components). */
function storedPixels(bytes: Uint8Array, checked: CheckedImage): DecodedImage {
  if (checked.width * checked.height > MAX_DECODED_PIXELS) {
    throw tooLarge(
      `image is ${checked.width}×${checked.height} pixels; at most ${MAX_DECODED_PIXELS} are decoded at full size`,
      { limit_pixels: MAX_DECODED_PIXELS },
    );
  }
  const image = guarded(checked.format, () => {
    if (checked.png) return pngPixels(checked.png.pixelChunks);
    const info = readJpegInfo(bytes);
    if (info && (info.components === 1 || info.components === 3))
      return { format: "jpeg" as const, ...decodeJpegTo(bytes, { scale: 1 }) };
    return jpegPixels(bytes);
  });
  // The decoders trust their own headers: a file whose frames disagree with the first header is refused.
  if (image.width !== checked.width || image.height !== checked.height) {
    throw invalid("image dimensions in the header and the image data differ");
  }
  return image;
}

/**
 * Decodes a PNG or JPEG file at full size, upright (EXIF orientation applied); at most
 * `MAX_DECODED_PIXELS` (see `checkImage` for what is refused before decoding). For a model's input,
 * `decodeForModel` decodes only what the model reads.
 */
export function decodeImage(bytes: Uint8Array): DecodedImage {
  const checked = checkImage(bytes);
  return orientImage(storedPixels(bytes, checked), orientationOf(bytes, checked));
}

/**
 * The reduction 1, 2, 4 or 8 at which a `width × height` image still has at least as many pixels per
 * side as the model's input (so the antialiased filter still averages), and at most
 * `MAX_DECODED_PIXELS` (a larger reduction when needed, whatever the model).
 */
export function decodeScale(spec: ImagePreprocessSpec, width: number, height: number): 1 | 2 | 4 | 8 {
  const need = Math.max(spec.width, spec.height);
  let s: 1 | 2 | 4 | 8 = 1;
  for (const k of [8, 4, 2] as const) {
    if (Math.ceil(Math.min(width, height) / k) >= need) {
      s = k;
      break;
    }
  }
  while (s < 8 && Math.ceil(width / s) * Math.ceil(height / s) > MAX_DECODED_PIXELS) s = (s * 2) as 2 | 4 | 8;
  return s;
}

/** `image` reduced by `s` (each output pixel the mean of an s × s block, cut at the edges). */
function boxReduce(image: DecodedImage, s: number): DecodedImage {
  if (s === 1) return image;
  const { width, height, channels, data } = image;
  const w = Math.ceil(width / s);
  const h = Math.ceil(height / s);
  const sums = new Float64Array(w * channels);
  const out = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    sums.fill(0);
    const y1 = Math.min(height, (y + 1) * s);
    for (let sy = y * s; sy < y1; sy++) {
      for (let x = 0; x < width; x++) {
        const from = (sy * width + x) * channels;
        const to = Math.floor(x / s) * channels;
        for (let c = 0; c < channels; c++)
          sums[to + c] = (sums[to + c] as number) + (data[from + c] as number);
      }
    }
    for (let x = 0; x < w; x++) {
      const n = (y1 - y * s) * (Math.min(width, (x + 1) * s) - x * s);
      for (let c = 0; c < channels; c++)
        out[(y * w + x) * channels + c] = Math.round((sums[x * channels + c] as number) / n);
    }
  }
  return { ...image, width: w, height: h, data: out };
}

/** The pixels of `image` at `rows × cols` (sorted indices), as a compact image. */
function gather(image: DecodedImage, rows: Int32Array, cols: Int32Array): DecodedImage {
  const { width, channels, data } = image;
  const out = new Uint8Array(rows.length * cols.length * channels);
  let o = 0;
  for (const y of rows) {
    for (const x of cols) {
      const from = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) out[o++] = data[from + c] as number;
    }
  }
  return { ...image, width: cols.length, height: rows.length, data: out };
}

/**
 * A non-interlaced PNG, row by row (./png-rows.ts), reduced as it streams: the pixels at stored
 * `rows × cols`, or block means of `scale × scale` (1: every pixel). Memory: the result and two rows.
 */
function pngStreamed(
  png: PngLayout,
  target: { rows: Int32Array; cols: Int32Array } | { scale: number },
): DecodedImage {
  const { width, height } = png;
  let data: Uint8Array | undefined;
  if ("rows" in target) {
    const { rows, cols } = target;
    const rowOf = new Int32Array(height).fill(-1);
    rows.forEach((r, i) => {
      rowOf[r] = i;
    });
    const channels = pngRows(png, (y, row) => {
      const r = rowOf[y] as number;
      if (r < 0) return;
      const ch = row.length / width;
      data ??= new Uint8Array(rows.length * cols.length * ch);
      let o = r * cols.length * ch;
      for (const x of cols) for (let c = 0; c < ch; c++) data[o++] = row[x * ch + c] as number;
    });
    return {
      format: "png",
      width: cols.length,
      height: rows.length,
      channels,
      data: data ?? new Uint8Array(0),
    };
  }
  const s = target.scale;
  const w = Math.ceil(width / s);
  const h = Math.ceil(height / s);
  let sums: Float64Array | undefined;
  const channels = pngRows(png, (y, row) => {
    const ch = row.length / width;
    data ??= new Uint8Array(w * h * ch);
    if (s === 1) {
      data.set(row, y * width * ch);
      return;
    }
    sums ??= new Float64Array(w * ch);
    for (let x = 0; x < width; x++) {
      const to = Math.floor(x / s) * ch;
      for (let c = 0; c < ch; c++) sums[to + c] = (sums[to + c] as number) + (row[x * ch + c] as number);
    }
    if ((y + 1) % s === 0 || y === height - 1) {
      const oy = Math.floor(y / s);
      const n = y - oy * s + 1;
      for (let x = 0; x < w; x++) {
        const area = n * (Math.min(width, (x + 1) * s) - x * s);
        for (let c = 0; c < ch; c++)
          data[(oy * w + x) * ch + c] = Math.round((sums[x * ch + c] as number) / area);
      }
      sums.fill(0);
    }
  });
  return { format: "png", width: w, height: h, channels, data: data ?? new Uint8Array(0) };
}

/**
 * Decodes a PNG or JPEG file for a model whose input is `spec`: upright (EXIF orientation applied
 * first), and only as much of it as `toModelInput` reads:
 * - point-sampled filters (`bilinear_*`) read 2 source rows and columns per output row and column:
 *   exactly those pixels are decoded (a JPEG) or kept (a PNG), as a gridded image
 *   (`DecodedImage.grid`), so the result equals a full decode's;
 * - the antialiased `triangle` filter reads every pixel: a JPEG is decoded at 1/2, 1/4 or 1/8 scale
 *   (scaled IDCT; `decodeScale`), a PNG reduced after decoding by block means;
 * - any image is decoded to at most `MAX_DECODED_PIXELS` pixels (a progressive JPEG too large to
 *   keep its coefficients is decoded at a scale, then resampled as the spec says).
 */
export function decodeForModel(
  bytes: Uint8Array,
  spec: ImagePreprocessSpec,
  checked: CheckedImage = checkImage(bytes),
): DecodedImage {
  const o = orientationOf(bytes, checked);
  const { width: sw, height: sh } = checked;
  const [dw, dh] = swapsAxes(o) ? [sh, sw] : [sw, sh];
  const grid = sampleGrid(spec, dw, dh);
  const scale = decodeScale(spec, sw, sh);
  const info = checked.format === "jpeg" ? readJpegInfo(bytes) : undefined;
  const ours = info !== undefined && (info.components === 1 || info.components === 3);
  if (grid) {
    const stored = storedGrid(o, grid.rows, grid.cols, sw, sh);
    let sampled: DecodedImage | undefined;
    if (ours) {
      sampled = guarded("jpeg", () =>
        withinBudget(() => ({ format: "jpeg" as const, ...decodeJpegTo(bytes, stored) })),
      );
    } else if (checked.png && !checked.png.interlaced) {
      // Streamed row by row; only the sampled pixels are kept.
      const png = checked.png;
      sampled = guarded("png", () => pngStreamed(png, stored));
    } else if (sw * sh <= MAX_DECODED_PIXELS) {
      sampled = gather(storedPixels(bytes, checked), stored.rows, stored.cols);
    }
    if (sampled) return { ...orientImage(sampled, o), grid: { width: dw, height: dh, ...grid } };
  }
  let image: DecodedImage;
  if (ours) {
    // A progressive file keeps its coefficients until its last scan: too many, and only the DC
    // coefficients are kept (1/8 scale, the AC scans skipped).
    image = guarded(
      "jpeg",
      () =>
        withinBudget(() => ({ format: "jpeg" as const, ...decodeJpegTo(bytes, { scale }) })) ?? {
          format: "jpeg" as const,
          ...decodeJpegTo(bytes, { scale: 8 }),
        },
    );
  } else if (checked.png && !checked.png.interlaced) {
    // Streamed row by row, reduced as it goes.
    const png = checked.png;
    image = guarded("png", () => pngStreamed(png, { scale }));
  } else {
    image = boxReduce(storedPixels(bytes, checked), scale);
  }
  return orientImage(image, o);
}

/**
 * `decode()`, or undefined when a progressive JPEG's coefficients would exceed
 * `MAX_COEFFICIENT_BYTES` at that target (the caller then decodes at 1/8: DC coefficients only).
 */
function withinBudget<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (error) {
    if (error instanceof JpegBudgetError) return undefined;
    throw error;
  }
}

function pngPixels(bytes: Uint8Array): DecodedImage {
  const png = decodePng(bytes, { checkCrc: true });
  const { width, height, depth } = png;
  let channels = png.channels;
  let data: Uint8Array;
  if (png.palette) {
    // Indexed: expand to RGB(A) through the palette (tRNS alpha becomes a 4th component).
    const palette = png.palette;
    const comps = palette[0]?.length ?? 3;
    data = new Uint8Array(width * height * comps);
    const indices = unpackSamples(png.data, width, height, 1, depth);
    for (let i = 0; i < indices.length; i++) {
      const color = palette[indices[i] as number];
      if (!color) throw invalid("PNG palette index out of range");
      for (let c = 0; c < comps; c++) data[i * comps + c] = color[c] ?? 255;
    }
    channels = comps;
  } else if (depth === 16) {
    const wide = png.data;
    data = new Uint8Array(wide.length);
    for (let i = 0; i < wide.length; i++) data[i] = (wide[i] as number) >> 8;
  } else if (depth < 8) {
    const samples = unpackSamples(png.data, width, height, channels, depth);
    const scale = 255 / ((1 << depth) - 1);
    data = samples.map((v) => Math.round(v * scale));
  } else {
    data = png.data instanceof Uint8Array ? png.data : Uint8Array.from(png.data);
  }
  if (channels < 1 || channels > 4 || data.length !== width * height * channels) {
    throw invalid("PNG data is truncated or corrupt");
  }
  return { format: "png", width, height, channels: channels as DecodedImage["channels"], data };
}

/** Unpacks 1/2/4-bit samples (rows padded to whole bytes) to one byte per sample. */
function unpackSamples(
  packed: ArrayLike<number>,
  width: number,
  height: number,
  channels: number,
  depth: number,
): Uint8Array {
  if (depth >= 8) return Uint8Array.from(packed as ArrayLike<number>);
  const perRow = width * channels;
  const rowBytes = Math.ceil((perRow * depth) / 8);
  if (packed.length < rowBytes * height) throw invalid("PNG data is truncated or corrupt");
  const out = new Uint8Array(perRow * height);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < perRow; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)] as number;
      out[y * perRow + x] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

function jpegPixels(bytes: Uint8Array): DecodedImage {
  const jpeg = decodeJpeg(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    tolerantDecoding: false,
    maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
    maxMemoryUsageInMB: 96,
  });
  return { format: "jpeg", width: jpeg.width, height: jpeg.height, channels: 3, data: jpeg.data };
}
