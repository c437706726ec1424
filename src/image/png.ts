/**
 * The PNG decode budget, checked before fast-png runs. The header (IHDR) fixes the exact size of the
 * zlib-decompressed image data (a filter byte plus the packed samples of every row, per Adam7 pass
 * when interlaced); the IDAT stream is inflated with fflate in small steps, counting and discarding
 * the output, and refused at the first step that goes past that size, so a small file whose data
 * inflates to gigabytes costs at most the header's size in work and a few hundred KiB of memory.
 * fast-png then gets only the chunks that decide the pixels (IHDR, PLTE, tRNS, IDAT, IEND): it would
 * inflate an iCCP profile without a cap and build strings for every text chunk, and we use neither.
 */

import { Unzlib } from "fflate";
import { concatBytes } from "../bytes";
import { ApiError } from "../errors";

/** Most chunks a PNG may have (libpng writes 8 KiB IDAT chunks: ~128 for a 1 MiB file). */
export const MAX_PNG_CHUNKS = 16_384;
/**
 * Most decompressed image data a PNG may imply (48 MiB: a 12.5 MP RGBA or 16 MP RGB image at 8 bits).
 * fast-png holds it and the unfiltered pixels at once, so this bounds a PNG decode at ~100 MB.
 */
export const MAX_PNG_RAW_BYTES = 48 * 1024 * 1024;

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Chunks fast-png reads to produce pixels; every other chunk is dropped before it runs. */
const PIXEL_CHUNKS = new Set(["IHDR", "PLTE", "tRNS", "IDAT", "IEND"]);
/** Samples per pixel and the allowed bit depths of each colour type (PNG spec, table 11.1). */
const COLOR_TYPES: Record<number, { channels: number; depths: number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;
/** DEFLATE's best ratio is 1032:1 (a 258-byte match in 2 bits); it sizes the inflate steps. */
const MAX_DEFLATE_RATIO = 1032;
/** Smallest compressed step near the cap: the cap is overshot by at most ~260 KiB of discarded output. */
const MIN_STEP = 256;
const MAX_STEP = 64 * 1024;

/** What the PNG check learnt: the header, the exact inflated size, and the file for the decoder. */
export interface PngLayout {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
  /** Exact size in bytes of the decompressed image data the header implies. */
  rawBytes: number;
  /** The file reduced to IHDR, PLTE, tRNS, IDAT and IEND (chunks copied unchanged, CRCs included). */
  pixelChunks: Uint8Array;
}

function invalid(detail: string, cause?: unknown): ApiError {
  return new ApiError("invalid_image", detail, cause === undefined ? {} : { cause });
}

/** Bytes of one row of packed samples (without the filter byte). */
function rowBytes(width: number, channels: number, depth: number): number {
  return Math.ceil((width * channels * depth) / 8);
}

/** Exact size of the decompressed image data: (1 + row bytes) per row, per pass when interlaced. */
export function pngRawSize(
  width: number,
  height: number,
  channels: number,
  depth: number,
  interlaced: boolean,
) {
  if (!interlaced) return height * (1 + rowBytes(width, channels, depth));
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = width > x0 ? Math.ceil((width - x0) / dx) : 0;
    const h = height > y0 ? Math.ceil((height - y0) / dy) : 0;
    if (w > 0 && h > 0) total += h * (1 + rowBytes(w, channels, depth));
  }
  return total;
}

/**
 * Walks the chunks of a PNG whose header was already checked for size (`readImageHeader`), checks
 * IHDR, and inflates the IDAT data against the size it implies. Refuses with `invalid_image` (400):
 * cut-off chunks, a missing or bad IHDR, a PLTE over 256 entries, no IDAT or IEND, image data that
 * inflates to more or less than the header implies, a corrupt zlib stream; with `image_too_large`
 * (413): more than `MAX_PNG_CHUNKS` chunks.
 */
export function checkPng(bytes: Uint8Array): PngLayout {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b))
    throw invalid("not a PNG file (bad signature)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kept: Uint8Array[] = [bytes.subarray(0, 8)];
  const idat: Uint8Array[] = [];
  let header: Omit<PngLayout, "rawBytes" | "pixelChunks"> & { channels: number } = {
    width: 0,
    height: 0,
    depth: 0,
    colorType: 0,
    interlaced: false,
    channels: 0,
  };
  let chunks = 0;
  let ended = false;
  for (let at = 8; !ended; ) {
    if (at + 12 > bytes.length) throw invalid("PNG data is truncated (a chunk or IEND is missing)");
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (length > 0x7fffffff || end > bytes.length)
      throw invalid(`PNG data is truncated (chunk ${type} is cut off)`);
    if (++chunks > MAX_PNG_CHUNKS) {
      throw new ApiError("image_too_large", `PNG has more than ${MAX_PNG_CHUNKS} chunks`, {
        extensions: { limit_chunks: MAX_PNG_CHUNKS },
      });
    }
    if (chunks === 1) {
      if (type !== "IHDR" || length !== 13) throw invalid("PNG does not start with a 13-byte IHDR chunk");
      header = readIhdr(bytes.subarray(at + 8, at + 21));
    } else if (type === "IHDR") {
      throw invalid("PNG has more than one IHDR chunk");
    }
    // fast-png reads every entry of a PLTE, however long; the spec allows 256.
    if (type === "PLTE" && (length % 3 !== 0 || length > 3 * 256)) {
      throw invalid("PNG palette (PLTE) must hold 1 to 256 RGB entries");
    }
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === "IEND") ended = true;
    if (PIXEL_CHUNKS.has(type)) kept.push(bytes.subarray(at, end));
    at = end;
  }
  if (idat.length === 0) throw invalid("PNG has no image data (IDAT)");
  const { channels, ...rest } = header;
  const rawBytes = pngRawSize(rest.width, rest.height, channels, rest.depth, rest.interlaced);
  if (rawBytes > MAX_PNG_RAW_BYTES) {
    throw new ApiError(
      "image_too_large",
      `PNG image data is ${rawBytes} bytes decompressed; the limit is ${MAX_PNG_RAW_BYTES} (send a JPEG, or 8-bit samples)`,
      { extensions: { limit_raw_bytes: MAX_PNG_RAW_BYTES } },
    );
  }
  inflateExactly(idat, rawBytes);
  return { ...rest, rawBytes, pixelChunks: kept.length === chunks + 1 ? bytes : concatBytes(kept) };
}

function readIhdr(data: Uint8Array) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const width = view.getUint32(0);
  const height = view.getUint32(4);
  const [depth, colorType, compression, filter, interlace] = data.subarray(8, 13) as unknown as number[];
  const type = COLOR_TYPES[colorType as number];
  if (!type) throw invalid(`PNG colour type ${colorType} does not exist`);
  if (!type.depths.includes(depth as number)) {
    throw invalid(`PNG bit depth ${depth} is not allowed for colour type ${colorType}`);
  }
  if (compression !== 0 || filter !== 0 || (interlace !== 0 && interlace !== 1)) {
    throw invalid("PNG header has an unknown compression, filter or interlace method");
  }
  return {
    width,
    height,
    depth: depth as number,
    colorType: colorType as number,
    interlaced: interlace === 1,
    channels: type.channels,
  };
}

/**
 * Inflates the concatenated `parts` (one zlib stream) and refuses it unless it yields exactly
 * `expected` bytes. The output is counted and dropped. Each step feeds at most as many compressed
 * bytes as could, at DEFLATE's best ratio, fill what is left of `expected` (never fewer than
 * `MIN_STEP`), so a bomb is stopped within one small step past the limit.
 */
export function inflateExactly(parts: Uint8Array[], expected: number): void {
  let produced = 0;
  let done = false;
  const inflater = new Unzlib((chunk, final) => {
    produced += chunk.length;
    if (final) done = true;
  });
  const over = () =>
    invalid(
      `PNG image data inflates to more than the ${expected} bytes its header implies (a decompression bomb)`,
    );
  try {
    for (const part of parts) {
      for (let i = 0; i < part.length; ) {
        const room = Math.max(0, expected - produced);
        const step = Math.min(MAX_STEP, Math.max(MIN_STEP, Math.floor(room / MAX_DEFLATE_RATIO)));
        inflater.push(part.subarray(i, i + step), false);
        i += step;
        if (produced > expected) throw over();
      }
    }
    inflater.push(new Uint8Array(0), true);
  } catch (cause) {
    if (cause instanceof ApiError) throw cause;
    throw invalid("PNG image data is not a valid zlib stream (truncated or corrupt)", cause);
  }
  if (produced > expected) throw over();
  if (!done || produced < expected) {
    throw invalid(
      `PNG image data is truncated: it inflates to ${produced} of the ${expected} bytes its header implies`,
    );
  }
}
