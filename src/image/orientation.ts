/**
 * EXIF orientation: cameras store pixels as the sensor read them and say in the EXIF `Orientation`
 * tag (0x0112) how to turn them upright. It is read from a JPEG's APP1 `Exif` segment or a PNG's
 * `eXIf` chunk (TIFF structure, either byte order, IFD0) and applied to the pixels before any
 * preprocessing, as browsers do (CSS `image-orientation: from-image`, the default).
 *
 * The 8 values (TIFF 6.0 / EXIF 2.32), as where the stored 0th row and 0th column are shown:
 * 1 top-left (as stored), 2 top-right (mirrored), 3 bottom-right (180°), 4 bottom-left (flipped),
 * 5 left-top (transposed), 6 right-top (turned 90° clockwise to show), 7 right-bottom (transverse),
 * 8 left-bottom (turned 90° counter-clockwise). Anything else (absent, 0, > 8, malformed) is 1.
 */

import type { DecodedImage } from "./pixels";

/** EXIF orientation, 1 to 8. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/** The orientation in a TIFF structure (an EXIF payload after its header); 1 when absent or malformed. */
export function tiffOrientation(tiff: Uint8Array): Orientation {
  if (tiff.length < 8) return 1;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  if (view.getUint16(2, little) !== 42) return 1;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return 1;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + 12 * i;
    if (entry + 12 > tiff.length) return 1;
    if (view.getUint16(entry, little) !== 0x0112) continue;
    // Type SHORT (3), count 1: the value sits in the first 2 bytes of the value field.
    if (view.getUint16(entry + 2, little) !== 3 || view.getUint32(entry + 4, little) !== 1) return 1;
    const value = view.getUint16(entry + 8, little);
    return value >= 1 && value <= 8 ? (value as Orientation) : 1;
  }
  return 1;
}

const EXIF_HEADER = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00]; // "Exif\0\0"

/** A JPEG's orientation: the first APP1 `Exif` segment before the first scan (1 when none). */
export function jpegOrientation(bytes: Uint8Array): Orientation {
  for (let at = 2; at + 4 <= bytes.length; ) {
    if (bytes[at] !== 0xff) return 1;
    const marker = bytes[at + 1] as number;
    if (marker === 0xff) {
      at++;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return 1;
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    const body = at + 4;
    const end = Math.min(bytes.length, at + 2 + length);
    if (marker === 0xe1 && end - body > 6 && EXIF_HEADER.every((b, i) => bytes[body + i] === b)) {
      return tiffOrientation(bytes.subarray(body + 6, end));
    }
    at = at + 2 + length;
  }
  return 1;
}

/** A PNG's orientation: its `eXIf` chunk (a TIFF structure, no header), 1 when none. */
export function pngOrientation(bytes: Uint8Array): Orientation {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (end > bytes.length || type === "IEND") return 1;
    if (type === "eXIf") return tiffOrientation(bytes.subarray(at + 8, at + 8 + length));
    at = end;
  }
  return 1;
}

/** Whether `o` swaps width and height (5–8). */
export function swapsAxes(o: Orientation): boolean {
  return o >= 5;
}

const FLIP_X = new Set<Orientation>([2, 3, 7, 8]);
const FLIP_Y = new Set<Orientation>([3, 4, 6, 7]);

/**
 * The stored pixel shown at (x, y) of the upright image, for a stored image `storedW × storedH`:
 * x and y trade places for 5–8, then each stored axis is mirrored as `o` says.
 */
export function storedCoordinate(
  o: Orientation,
  x: number,
  y: number,
  storedW: number,
  storedH: number,
): [number, number] {
  const [sx, sy] = swapsAxes(o) ? [y, x] : [x, y];
  return [FLIP_X.has(o) ? storedW - 1 - sx : sx, FLIP_Y.has(o) ? storedH - 1 - sy : sy];
}

/** The upright image: `image` (as stored) turned and mirrored as `o` says (itself for 1). */
export function orientImage(image: DecodedImage, o: Orientation): DecodedImage {
  if (o === 1) return image;
  const { width: sw, height: sh, channels, data } = image;
  const swap = swapsAxes(o);
  const width = swap ? sh : sw;
  const height = swap ? sw : sh;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [sx, sy] = storedCoordinate(o, x, y, sw, sh);
      const from = (sy * sw + sx) * channels;
      const to = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c] as number;
    }
  }
  return { ...image, width, height, data: out };
}

/**
 * The stored rows × columns that hold the upright rows × columns `rows`, `cols` (sorted), sorted
 * too: decoding those and orienting the result (`orientImage`) gives the upright samples in order.
 */
export function storedGrid(
  o: Orientation,
  rows: Int32Array,
  cols: Int32Array,
  storedW: number,
  storedH: number,
): { rows: Int32Array; cols: Int32Array } {
  const swap = swapsAxes(o);
  const xs = swap ? rows : cols;
  const ys = swap ? cols : rows;
  const flip = (axis: Int32Array, size: number, mirrored: boolean) =>
    mirrored ? Int32Array.from(axis, (v) => size - 1 - v).reverse() : axis;
  return { cols: flip(xs, storedW, FLIP_X.has(o)), rows: flip(ys, storedH, FLIP_Y.has(o)) };
}
