/**
 * A non-interlaced PNG decoded row by row, in bounded memory: the image data is inflated as a stream
 * (fflate), each row unfiltered against the previous one and converted to 8-bit samples (16-bit:
 * high byte; 1/2/4-bit gray scaled to 0–255; palette expanded, with alpha from tRNS), then handed to
 * `onRow` and dropped. A 12 MP PNG thus costs two rows plus what the caller keeps (a reduced or
 * sampled image), not its full 36–48 MiB of raw data twice as fast-png needs. The same 8-bit pixels
 * as fast-png + `pngPixels` (src/image/decode.ts). The file was checked first (`checkPng`: its
 * data inflates to exactly the size the header implies).
 */

import { Unzlib } from "fflate";
import type { PngLayout } from "./png";

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Channels of the 8-bit rows `pngRows` gives for a checked PNG (palette: 3, or 4 with tRNS). */
export function pngRowChannels(layout: PngLayout, hasTrns: boolean): 1 | 2 | 3 | 4 {
  if (layout.colorType === 3) return hasTrns ? 4 : 3;
  return CHANNELS[layout.colorType] as 1 | 2 | 3 | 4;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Calls `onRow(y, row)` for every row of a checked, non-interlaced PNG (`layout.pixelChunks`), `row`
 * holding `width × channels` 8-bit samples (valid during the call only). Returns the channel count.
 * Throws on a bad filter type or palette index.
 */
export function pngRows(layout: PngLayout, onRow: (y: number, row: Uint8Array) => void): 1 | 2 | 3 | 4 {
  if (layout.interlaced) throw new Error("pngRows reads non-interlaced PNGs only");
  const bytes = layout.pixelChunks;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let palette: Uint8Array | undefined;
  let trns: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === "PLTE") palette = data;
    else if (type === "tRNS") trns = data;
    else if (type === "IDAT") idat.push(data);
    at += 12 + length;
  }
  const { width, height, depth, colorType } = layout;
  const paletted = colorType === 3;
  if (paletted && !palette) throw new Error("PNG palette missing");
  const channels = pngRowChannels(layout, paletted && trns !== undefined);
  const samples = CHANNELS[colorType] as number;
  const rowBytes = Math.ceil((width * samples * depth) / 8);
  const bpp = Math.max(1, Math.ceil((samples * depth) / 8));
  let prev = new Uint8Array(rowBytes);
  let cur = new Uint8Array(rowBytes);
  const out = new Uint8Array(width * channels);
  const maxValue = (1 << depth) - 1;
  let filter = -1;
  let filled = 0;
  let y = 0;
  const finishRow = () => {
    for (let i = 0; i < rowBytes; i++) {
      const a = i >= bpp ? (cur[i - bpp] as number) : 0;
      const b = prev[i] as number;
      const c = i >= bpp ? (prev[i - bpp] as number) : 0;
      const x = cur[i] as number;
      switch (filter) {
        case 0:
          break;
        case 1:
          cur[i] = x + a;
          break;
        case 2:
          cur[i] = x + b;
          break;
        case 3:
          cur[i] = x + ((a + b) >> 1);
          break;
        case 4:
          cur[i] = x + paeth(a, b, c);
          break;
        default:
          throw new Error(`PNG filter type ${filter} is invalid`);
      }
    }
    // To 8-bit samples.
    if (paletted) {
      const pal = palette as Uint8Array;
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        const index =
          depth === 8
            ? (cur[x] as number)
            : ((cur[bit >> 3] as number) >> (8 - depth - (bit & 7))) & maxValue;
        if (3 * index + 2 >= pal.length) throw new Error("PNG palette index out of range");
        out[x * channels] = pal[3 * index] as number;
        out[x * channels + 1] = pal[3 * index + 1] as number;
        out[x * channels + 2] = pal[3 * index + 2] as number;
        if (channels === 4) out[x * channels + 3] = (trns as Uint8Array)[index] ?? 255;
      }
    } else if (depth === 8) {
      out.set(cur);
    } else if (depth === 16) {
      for (let i = 0; i < out.length; i++) out[i] = cur[2 * i] as number;
    } else {
      const scale = 255 / maxValue;
      for (let i = 0; i < out.length; i++) {
        const bit = i * depth;
        out[i] = Math.round((((cur[bit >> 3] as number) >> (8 - depth - (bit & 7))) & maxValue) * scale);
      }
    }
    onRow(y++, out);
    [prev, cur] = [cur, prev];
    filter = -1;
    filled = 0;
  };
  const inflater = new Unzlib((chunk) => {
    for (let i = 0; i < chunk.length && y < height; ) {
      if (filter < 0) {
        filter = chunk[i++] as number;
        continue;
      }
      const take = Math.min(rowBytes - filled, chunk.length - i);
      cur.set(chunk.subarray(i, i + take), filled);
      filled += take;
      i += take;
      if (filled === rowBytes) finishRow();
    }
  });
  // Small input slices: fflate inflates each push at once, so a file written as one huge IDAT
  // would otherwise come out whole (DEFLATE's best ratio, 1032:1, bounds a 4 KiB slice's output).
  const SLICE = 4096;
  idat.forEach((part, i) => {
    const last = i === idat.length - 1;
    if (part.length === 0) inflater.push(part, last);
    for (let at = 0; at < part.length; at += SLICE) {
      inflater.push(part.subarray(at, at + SLICE), last && at + SLICE >= part.length);
    }
  });
  if (y !== height) throw new Error("PNG data is truncated");
  return channels;
}
