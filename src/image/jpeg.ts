/**
 * The JPEG decode budget, checked before jpeg-js runs. jpeg-js visits every block of a scan's
 * components once per scan, whatever the scan carries, so a progressive file with a 2048×2048
 * header and tens of thousands of scans that each send nothing (end-of-band runs) costs minutes.
 * This walk reads the marker segments by their lengths and skips entropy-coded data (as jpeg-js
 * does, so both see the same scans), and refuses, before any block is decoded:
 *
 * - more than `MAX_JPEG_SEGMENTS` marker segments or `MAX_JPEG_SCANS` scans (413);
 * - a scan script that is not a valid progression (400): a progressive file sends each bit of each
 *   coefficient once (first scan, then refinements one bit at a time, T.81 G.1.1.1.1), so repeated
 *   or empty scans are refused; a sequential file scans each component once;
 * - more decode work than `JPEG_WORK_FACTOR` × a baseline decode of the header's size (413), work
 *   being the coefficients the scans cover, summed over the blocks they visit;
 * - segments whose length disagrees with their content (400): jpeg-js parses those by their content,
 *   and would read markers this walk skipped.
 */

import { ApiError } from "../errors";

/** Most marker segments (not counting scans) a JPEG may have; cameras and encoders write < 40. */
export const MAX_JPEG_SEGMENTS = 256;
/** Most scans: a baseline file has 1 (or one per component), libjpeg's progressive script 10. */
export const MAX_JPEG_SCANS = 64;
/**
 * Most decode work, in baseline decodes of the same image: each coefficient of each block covered
 * this many times on average. libjpeg's progressive script covers luma ~3 times, chroma twice; the
 * most a valid progression allows is 14 (a first scan and 13 refinement bits).
 */
export const JPEG_WORK_FACTOR = 5;

/** What the walk counted (for tests and the bench). */
export interface JpegBudget {
  progressive: boolean;
  segments: number;
  scans: number;
  /** Coefficients visited by all scans, summed over blocks. */
  work: number;
  /** `JPEG_WORK_FACTOR` × 64 × the frame's blocks. */
  workLimit: number;
}

interface Component {
  id: number;
  h: number;
  v: number;
  /** Blocks jpeg-js visits in a scan of this component alone. */
  blocks: number;
  /** Per coefficient: the successive-approximation bit sent last (−1: not yet). */
  bits: Int8Array;
  scanned: boolean;
}

interface Frame {
  progressive: boolean;
  components: Component[];
  mcus: number;
}

function invalid(detail: string): ApiError {
  return new ApiError("invalid_image", detail);
}

function tooLarge(detail: string, limits: Record<string, number>): ApiError {
  return new ApiError("image_too_large", detail, { extensions: limits });
}

/**
 * Walks a JPEG (SOI already sniffed) to its End Of Image marker and checks its segments and scans
 * against the limits above; returns what it counted. A file without the EOI is refused as cut short
 * (jpeg-js would fill the missing blocks with grey); data after it is allowed (camera trailers).
 */
export function checkJpeg(bytes: Uint8Array): JpegBudget {
  const u16 = (i: number) => ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
  let frame: Frame | undefined;
  let segments = 0;
  let scans = 0;
  let work = 0;
  let workLimit = 0;
  let at = 2;
  for (;;) {
    if (at + 2 > bytes.length) throw invalid("JPEG data is truncated (no End Of Image marker)");
    if (bytes[at] !== 0xff) throw invalid("JPEG data is corrupt (a marker was expected)");
    const marker = bytes[at + 1] as number;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xd9) break;
    if (marker === 0x00) {
      at += 2; // a stray stuffed zero between segments; jpeg-js skips it too
      continue;
    }
    if (at + 4 > bytes.length) throw invalid("JPEG data is truncated (no End Of Image marker)");
    const length = u16(at + 2);
    const body = at + 4;
    const end = at + 2 + length;
    if (length < 2 || end > bytes.length)
      throw invalid("JPEG data is truncated (a marker segment is cut off)");
    if (marker === 0xda) {
      if (!frame) throw invalid("JPEG scan before its frame header");
      if (++scans > MAX_JPEG_SCANS) {
        throw tooLarge(`JPEG has more than ${MAX_JPEG_SCANS} scans`, { limit_scans: MAX_JPEG_SCANS });
      }
      work += checkScan(frame, bytes.subarray(body, end), scans);
      if (work > workLimit) {
        throw tooLarge(
          `JPEG scans would decode more than ${JPEG_WORK_FACTOR} times the coefficients of its ${frame.components.length}-component frame`,
          { limit_work_factor: JPEG_WORK_FACTOR },
        );
      }
      at = skipEntropyData(bytes, end);
      continue;
    }
    if (++segments > MAX_JPEG_SEGMENTS) {
      throw tooLarge(`JPEG has more than ${MAX_JPEG_SEGMENTS} marker segments`, {
        limit_segments: MAX_JPEG_SEGMENTS,
      });
    }
    const data = bytes.subarray(body, end);
    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) {
      if (frame) throw invalid("JPEG has more than one frame header");
      frame = readFrame(data, marker === 0xc2);
      workLimit = JPEG_WORK_FACTOR * 64 * frame.components.reduce((n, c) => n + c.blocks, 0);
    } else if (marker === 0xc4) {
      checkHuffmanTables(data);
    } else if (marker === 0xdb) {
      checkQuantizationTables(data);
    } else if (marker === 0xdd || marker === 0xdc) {
      if (length !== 4) throw invalid("JPEG DRI or DNL segment has the wrong length");
    } else if ((marker >= 0xc3 && marker <= 0xcf) || marker === 0xf7) {
      throw invalid("JPEG coding is not supported (only baseline, extended and progressive Huffman)");
    } else if (!((marker >= 0xe0 && marker <= 0xef) || marker === 0xfe)) {
      throw invalid(`JPEG has an unknown or misplaced marker FF${marker.toString(16).toUpperCase()}`);
    }
    at = end;
  }
  if (!frame || scans === 0) throw invalid("JPEG has no frame or no scan");
  return { progressive: frame.progressive, segments, scans, work, workLimit };
}

function readFrame(data: Uint8Array, progressive: boolean): Frame {
  const count = data[5] ?? 0;
  if (count < 1 || count > 4 || data.length !== 6 + 3 * count) {
    throw invalid("JPEG frame header is corrupt (component count or length)");
  }
  const height = ((data[1] as number) << 8) | (data[2] as number);
  const width = ((data[3] as number) << 8) | (data[4] as number);
  const raw = Array.from({ length: count }, (_, i) => ({
    id: data[6 + 3 * i] as number,
    h: (data[7 + 3 * i] as number) >> 4,
    v: (data[7 + 3 * i] as number) & 15,
  }));
  if (raw.some((c) => c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4))
    throw invalid("JPEG sampling factors must be 1 to 4");
  if (new Set(raw.map((c) => c.id)).size !== count) throw invalid("JPEG frame repeats a component id");
  // Block counts as jpeg-js lays them out (prepareComponents).
  const maxH = Math.max(...raw.map((c) => c.h));
  const maxV = Math.max(...raw.map((c) => c.v));
  const mcus = Math.ceil(width / 8 / maxH) * Math.ceil(height / 8 / maxV);
  const components = raw.map((c) => ({
    ...c,
    blocks: Math.ceil((Math.ceil(width / 8) * c.h) / maxH) * Math.ceil((Math.ceil(height / 8) * c.v) / maxV),
    bits: new Int8Array(64).fill(-1),
    scanned: false,
  }));
  return { progressive, components, mcus };
}

/** Checks one scan header against the frame and the scans before it; returns its work. */
function checkScan(frame: Frame, data: Uint8Array, index: number): number {
  const count = data[0] ?? 0;
  if (count < 1 || count > 4 || data.length !== 4 + 2 * count) {
    throw invalid("JPEG scan header is corrupt (component count or length)");
  }
  const comps: Component[] = [];
  for (let i = 0; i < count; i++) {
    const c = frame.components.find((x) => x.id === data[1 + 2 * i]);
    if (!c || comps.includes(c)) throw invalid("JPEG scan names an unknown or repeated component");
    comps.push(c);
  }
  const ss = data[1 + 2 * count] as number;
  const se = data[2 + 2 * count] as number;
  const ah = (data[3 + 2 * count] as number) >> 4;
  const al = (data[3 + 2 * count] as number) & 15;
  const blocks =
    count === 1 ? (comps[0] as Component).blocks : frame.mcus * comps.reduce((n, c) => n + c.h * c.v, 0);
  if (!frame.progressive) {
    for (const c of comps) {
      if (c.scanned) throw invalid(`JPEG scan ${index} repeats a component of a sequential image`);
      c.scanned = true;
    }
    return blocks * 64;
  }
  // T.81 G.1.1.1.1 and libjpeg's checks: DC and AC in separate scans, AC one component at a time,
  // refinements one bit at a time.
  const bad =
    (ss === 0 ? se !== 0 : se < ss || se > 63 || count !== 1) || al > 13 || (ah !== 0 && al !== ah - 1);
  if (bad) throw invalid(`JPEG scan ${index} has invalid progressive parameters`);
  for (const c of comps) {
    for (let k = ss; k <= se; k++) {
      const sent = c.bits[k] as number;
      if (ah === 0 ? sent !== -1 : sent !== ah) {
        throw invalid(
          `JPEG scan ${index} resends coefficients already sent (a progressive JPEG sends each bit of each coefficient once)`,
        );
      }
      c.bits[k] = al;
    }
  }
  return blocks * (se - ss + 1);
}

function checkHuffmanTables(data: Uint8Array): void {
  let i = 0;
  while (i < data.length) {
    const spec = data[i] as number;
    if (spec >> 4 > 1 || (spec & 15) > 3 || i + 17 > data.length)
      throw invalid("JPEG Huffman table is corrupt");
    let symbols = 0;
    for (let j = 1; j <= 16; j++) symbols += data[i + j] as number;
    if (symbols > 256) throw invalid("JPEG Huffman table is corrupt");
    i += 17 + symbols;
  }
  if (i !== data.length) throw invalid("JPEG Huffman table segment has the wrong length");
}

function checkQuantizationTables(data: Uint8Array): void {
  let i = 0;
  while (i < data.length) {
    const precision = (data[i] as number) >> 4;
    if (precision > 1 || ((data[i] as number) & 15) > 3) throw invalid("JPEG quantization table is corrupt");
    i += 1 + 64 * (precision + 1);
  }
  if (i !== data.length) throw invalid("JPEG quantization table segment has the wrong length");
}

/**
 * Index of the marker that ends the entropy-coded data starting at `from`: the first FF not
 * followed by a stuffed zero, a restart marker or another FF.
 */
function skipEntropyData(bytes: Uint8Array, from: number): number {
  for (let j = bytes.indexOf(0xff, from); j !== -1 && j + 1 < bytes.length; j = bytes.indexOf(0xff, j + 1)) {
    const next = bytes[j + 1] as number;
    if (next !== 0x00 && next !== 0xff && (next < 0xd0 || next > 0xd7)) return j;
  }
  throw invalid("JPEG data is truncated (no End Of Image marker)");
}
