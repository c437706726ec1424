/**
 * Builders of hostile (and of valid edge-case) PNG and JPEG files, made in code so that no binary
 * fixture is needed: the PNG zlib bomb (a small header whose image data inflates to far more than
 * the header implies), progressive JPEGs with a given scan script (up to tens of thousands of scans)
 * and files with many marker segments or chunks. Pure TypeScript without Node or Worker APIs: the
 * tests (workerd) and the bench (Node) both use it.
 */
import { zlibSync } from "fflate";
import { concatBytes } from "../src/bytes";

// ---------------------------------------------------------------------------------------------
// PNG

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const part of parts) {
    for (const byte of part) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk (length, type, data, CRC). */
export function pngChunk(type: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = new Uint8Array(8);
  const view = new DataView(head.buffer);
  view.setUint32(0, data.length);
  const typeBytes = new TextEncoder().encode(type);
  head.set(typeBytes, 4);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc32([typeBytes, data]));
  return concatBytes([head, data, tail]);
}

/** IHDR data: width, height, bit depth, colour type, interlace (compression and filter method 0). */
export function ihdr(width: number, height: number, depth = 8, colorType = 0, interlace = 0): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  data.set([depth, colorType, 0, 0, interlace], 8);
  return data;
}

/** A PNG file from its chunks (signature + IHDR + `chunks` + IEND). */
export function pngFile(header: Uint8Array, chunks: Uint8Array[]): Uint8Array {
  const signature = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return concatBytes([signature, pngChunk("IHDR", header), ...chunks, pngChunk("IEND")]);
}

/** Splits `data` into IDAT chunks of at most `size` bytes. */
export function idatChunks(data: Uint8Array, size = 65536): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(pngChunk("IDAT", data.subarray(i, i + size)));
  return out;
}

/** A zlib stream of `n` zero bytes, compressed by fflate (for small, exact sizes). */
export function zlibZeros(n: number): Uint8Array {
  return zlibSync(new Uint8Array(n), { level: 9 });
}

/** Writes bits least significant first, as DEFLATE packs its header fields and extra bits. */
class DeflateBits {
  readonly bytes: number[] = [];
  private acc = 0;
  private count = 0;
  get aligned(): boolean {
    return this.count === 0;
  }
  put(value: number, n: number): void {
    for (let i = 0; i < n; i++) this.bit((value >> i) & 1);
  }
  /** A Huffman code: its bits are packed from the most significant one. */
  code(value: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) this.bit((value >> i) & 1);
  }
  bit(b: number): void {
    this.acc |= b << this.count;
    if (++this.count === 8) this.flush();
  }
  flush(): void {
    if (this.count > 0) this.bytes.push(this.acc);
    this.acc = 0;
    this.count = 0;
  }
}

/**
 * A zlib stream that inflates to `inflated` zero bytes with the best ratio DEFLATE allows (~1032:1):
 * one dynamic-Huffman block whose only length code (258) and only distance code (1) have 1-bit
 * codes, so every 258 output bytes cost two bits (0 and 0). 1,000 MiB is ~1 MB of zlib data.
 */
export function zlibZeroBomb(inflated: number): Uint8Array {
  const w = new DeflateBits();
  w.put(1, 1); // BFINAL
  w.put(2, 2); // dynamic Huffman
  w.put(29, 5); // HLIT: 286 literal/length codes
  w.put(0, 5); // HDIST: 1 distance code
  w.put(14, 4); // HCLEN: 18 code-length codes
  // Code-length code lengths in the RFC 1951 order 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1.
  for (const len of [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2]) w.put(len, 3);
  // Canonical code-length codes: 18 → 0, 1 → 10, 2 → 11.
  const cl = { 1: [0b10, 2], 2: [0b11, 2], 18: [0b0, 1] } as const;
  const zeros = (n: number) => {
    w.code(cl[18][0], cl[18][1]);
    w.put(n - 11, 7);
  };
  // Literal 0: 2 bits; 1..255 unused; 256 (end of block): 2; 257..284 unused; 285 (length 258): 1.
  w.code(cl[2][0], cl[2][1]);
  zeros(138);
  zeros(117);
  w.code(cl[2][0], cl[2][1]);
  zeros(28);
  w.code(cl[1][0], cl[1][1]);
  w.code(cl[1][0], cl[1][1]); // the one distance code (distance 1): 1 bit
  // Literal/length codes: 285 → 0, 0 → 10, 256 → 11. Distance 1 → 0.
  w.code(0b10, 2); // a literal 0
  const runs = Math.floor((inflated - 1) / 258);
  const left = inflated - 1 - runs * 258;
  // 2·runs zero bits: bit by bit up to a byte boundary, then whole zero bytes.
  let bits = 2 * runs;
  while (bits > 0 && !w.aligned) {
    w.bit(0);
    bits--;
  }
  // Here either the stream is byte-aligned or no run bits are left (then it all stays in `w`).
  const split = w.aligned;
  const prefix = split ? Uint8Array.from(w.bytes) : new Uint8Array(0);
  const zeroBytes = Math.floor(bits / 8);
  const tail = split ? new DeflateBits() : w;
  for (let i = 0; i < bits % 8; i++) tail.bit(0);
  for (let i = 0; i < left; i++) tail.code(0b10, 2);
  tail.code(0b11, 2); // end of block
  tail.flush();
  const b = inflated % 65521;
  const adler = Uint8Array.from([b >> 8, b & 0xff, 0, 1]);
  return concatBytes([
    Uint8Array.from([0x78, 0x01]),
    prefix,
    new Uint8Array(zeroBytes),
    Uint8Array.from(tail.bytes),
    adler,
  ]);
}

/** The exact size of the zlib-decompressed image data of a non-interlaced PNG (filter byte per row). */
export function pngRawSize(width: number, height: number, depth: number, channels: number): number {
  return height * (1 + Math.ceil((width * channels * depth) / 8));
}

/** Adam7 pass of pixel (x, y), 1..7, from the spec's 8×8 pattern (independent of any pass table). */
const ADAM7_PATTERN = [
  "16462646",
  "77777777",
  "56565656",
  "77777777",
  "36463646",
  "77777777",
  "56565656",
  "77777777",
];

/**
 * The raw (filtered, uncompressed) data of an image, Adam7-interlaced when `interlaced`: filter type
 * 0 on every row, samples of `depth` bits packed most significant first. `sample(x, y, c)` gives
 * each sample (already in range for the depth).
 */
export function pngRaw(
  width: number,
  height: number,
  depth: number,
  channels: number,
  interlaced: boolean,
  sample: (x: number, y: number, c: number) => number,
): Uint8Array {
  const out: number[] = [];
  const passes = interlaced ? [1, 2, 3, 4, 5, 6, 7] : [0];
  for (const pass of passes) {
    const inPass = (x: number, y: number) => pass === 0 || ADAM7_PATTERN[y % 8]?.[x % 8] === String(pass);
    const xs = Array.from({ length: width }, (_, x) => x).filter((x) =>
      Array.from({ length: height }).some((_, y) => inPass(x, y)),
    );
    const ys = Array.from({ length: height }, (_, y) => y).filter((y) => xs.some((x) => inPass(x, y)));
    for (const y of ys) {
      const row = xs.filter((x) => inPass(x, y));
      if (row.length === 0) continue;
      out.push(0);
      let acc = 0;
      let bits = 0;
      for (const x of row) {
        for (let c = 0; c < channels; c++) {
          const v = sample(x, y, c);
          if (depth === 16) out.push(v >> 8, v & 0xff);
          else if (depth === 8) out.push(v);
          else {
            acc = (acc << depth) | v;
            bits += depth;
            if (bits === 8) {
              out.push(acc);
              acc = 0;
              bits = 0;
            }
          }
        }
      }
      if (bits > 0) out.push(acc << (8 - bits));
    }
  }
  return Uint8Array.from(out);
}

/** A PNG whose IDAT holds `raw`, zlib-compressed by fflate (an optional PLTE first). */
export function pngFromRaw(header: Uint8Array, raw: Uint8Array, palette?: Uint8Array): Uint8Array {
  return pngFile(header, [...(palette ? [pngChunk("PLTE", palette)] : []), ...idatChunks(zlibSync(raw))]);
}

// ---------------------------------------------------------------------------------------------
// JPEG

/** One scan of a JPEG scan script: component indexes, spectral band and successive approximation. */
export interface JpegScan {
  comps: number[];
  ss: number;
  se: number;
  ah: number;
  al: number;
}

/** libjpeg's `jpeg_simple_progression` script for YCbCr (10 scans). */
export const LIBJPEG_PROGRESSION: JpegScan[] = [
  { comps: [0, 1, 2], ss: 0, se: 0, ah: 0, al: 1 },
  { comps: [0], ss: 1, se: 5, ah: 0, al: 2 },
  { comps: [2], ss: 1, se: 63, ah: 0, al: 1 },
  { comps: [1], ss: 1, se: 63, ah: 0, al: 1 },
  { comps: [0], ss: 6, se: 63, ah: 0, al: 2 },
  { comps: [0], ss: 1, se: 63, ah: 2, al: 1 },
  { comps: [0, 1, 2], ss: 0, se: 0, ah: 1, al: 0 },
  { comps: [2], ss: 1, se: 63, ah: 1, al: 0 },
  { comps: [1], ss: 1, se: 63, ah: 1, al: 0 },
  { comps: [0], ss: 1, se: 63, ah: 1, al: 0 },
];

/** Writes entropy-coded JPEG data: most significant bit first, 0xFF stuffed, padded with 1s. */
class JpegBits {
  readonly bytes: number[] = [];
  private acc = 0;
  private count = 0;
  put(value: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >> i) & 1);
      if (++this.count === 8) this.emit();
    }
  }
  private emit(): void {
    this.bytes.push(this.acc);
    if (this.acc === 0xff) this.bytes.push(0);
    this.acc = 0;
    this.count = 0;
  }
  finish(): number[] {
    if (this.count > 0) this.put(0x7f, 8 - this.count);
    return this.bytes;
  }
}

/** Canonical Huffman codes from the 16 code-length counts and the symbols (as in a DHT segment). */
function huffmanCodes(counts: number[], symbols: number[]): Map<number, [number, number]> {
  const codes = new Map<number, [number, number]>();
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < (counts[len - 1] ?? 0); i++) codes.set(symbols[k++] as number, [code++, len]);
    code <<= 1;
  }
  return codes;
}

// DC: the standard luminance table (categories 0..11). AC: end-of-band runs EOB0..EOB14 only (all AC
// coefficients of these images are zero), the shape an encoder writes for flat blocks.
const DC_COUNTS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_SYMBOLS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_COUNTS = [0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const AC_SYMBOLS = Array.from({ length: 15 }, (_, r) => r << 4);
const DC_CODES = huffmanCodes(DC_COUNTS, DC_SYMBOLS);
const AC_CODES = huffmanCodes(AC_COUNTS, AC_SYMBOLS);

function segment(marker: number, body: number[]): number[] {
  return [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
}

function append(out: number[], bytes: readonly number[]): void {
  for (const b of bytes) out.push(b);
}

function putCode(w: JpegBits, codes: Map<number, [number, number]>, symbol: number): void {
  const c = codes.get(symbol);
  if (!c) throw new Error(`no Huffman code for ${symbol}`);
  w.put(c[0], c[1]);
}

/** End-of-band runs covering `blocks` blocks, in as few runs (≤ 32,767 blocks) of equal length as can be. */
function eobRuns(w: JpegBits, blocks: number): void {
  const size = Math.ceil(blocks / Math.ceil(blocks / 32767));
  let left = blocks;
  while (left > 0) {
    const run = Math.min(left, size);
    const r = 31 - Math.clz32(run);
    putCode(w, AC_CODES, r << 4);
    if (r > 0) w.put(run - (1 << r), r);
    left -= run;
  }
}

/** Options of `progressiveJpeg`. */
export interface ProgressiveJpegOptions {
  width: number;
  height: number;
  /** 1 (gray) or 3 (YCbCr, all sampled 1×1). */
  components: 1 | 3;
  /** The scan script (`LIBJPEG_PROGRESSION` for 3 components by default, DC + AC for 1). */
  scans?: JpegScan[];
  /** Gray level (0..255) of the block at (bx, by) for each component; flat blocks. */
  level?: (bx: number, by: number, c: number) => number;
  /** Extra marker segments (e.g. thousands of COM segments) after the frame header. */
  extra?: number[][];
  /** Start of frame marker: 0xc2 progressive (default), 0xc0 baseline. */
  sof?: number;
}

/**
 * A JPEG made of flat 8×8 blocks (DC only; every AC coefficient zero) coded with `scans`, as an
 * encoder of a progressive (SOF2) JPEG writes it: DC first and refinement scans carry the DC values
 * bit plane by bit plane, AC scans are end-of-band runs. A scan script that repeats a scan tens of
 * thousands of times is the progressive-JPEG scan bomb.
 */
export function progressiveJpeg(options: ProgressiveJpegOptions): Uint8Array {
  const { width, height, components } = options;
  const scans =
    options.scans ??
    (components === 3
      ? LIBJPEG_PROGRESSION
      : [
          { comps: [0], ss: 0, se: 0, ah: 0, al: 0 },
          { comps: [0], ss: 1, se: 63, ah: 0, al: 0 },
        ]);
  const level =
    options.level ??
    ((bx: number, by: number, c: number) => (c === 0 ? ((bx * 37 + by * 91) % 200) + 28 : 128));
  const bw = Math.ceil(width / 8);
  const bh = Math.ceil(height / 8);
  // DC coefficient with a quantisation step of 1: 8 × (level − 128) gives that level after the IDCT.
  const dc = Array.from({ length: components }, (_, c) =>
    Int32Array.from(
      { length: bw * bh },
      (_, i) => 8 * (Math.round(level(i % bw, Math.floor(i / bw), c)) - 128),
    ),
  );
  const out: number[] = [0xff, 0xd8];
  append(out, segment(0xdb, [0, ...new Array<number>(64).fill(1)]));
  const compSpecs = Array.from({ length: components }, (_, c) => [c + 1, 0x11, 0]).flat();
  append(
    out,
    segment(options.sof ?? 0xc2, [
      8,
      height >> 8,
      height & 0xff,
      width >> 8,
      width & 0xff,
      components,
      ...compSpecs,
    ]),
  );
  append(out, segment(0xc4, [0x00, ...DC_COUNTS, ...DC_SYMBOLS]));
  append(out, segment(0xc4, [0x10, ...AC_COUNTS, ...AC_SYMBOLS]));
  for (const extra of options.extra ?? []) append(out, extra);
  for (const scan of scans) {
    append(
      out,
      segment(0xda, [
        scan.comps.length,
        ...scan.comps.flatMap((c) => [c + 1, 0x00]),
        scan.ss,
        scan.se,
        (scan.ah << 4) | scan.al,
      ]),
    );
    const w = new JpegBits();
    if (scan.ss === 0) {
      const pred = scan.comps.map(() => 0);
      for (let b = 0; b < bw * bh; b++) {
        scan.comps.forEach((c, k) => {
          const value = dc[c]?.[b] ?? 0;
          if (scan.ah === 0) {
            const v = value >> scan.al;
            const diff = v - (pred[k] as number);
            pred[k] = v;
            const cat = diff === 0 ? 0 : 32 - Math.clz32(Math.abs(diff));
            putCode(w, DC_CODES, cat);
            if (cat > 0) w.put(diff > 0 ? diff : diff + (1 << cat) - 1, cat);
            if (scan.se > 0) putCode(w, AC_CODES, 0x00); // sequential: the block's AC ends at once (EOB)
          } else {
            w.put((value >> scan.al) & 1, 1);
          }
        });
      }
    } else {
      eobRuns(w, bw * bh);
    }
    append(out, w.finish());
  }
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

/** A COM (comment) marker segment with `n` bytes of text. */
export function jpegComment(n = 0): number[] {
  return segment(0xfe, new Array<number>(n).fill(0x41));
}

/** A DHT segment redefining AC table 0 (same codes), for files with many table definitions. */
export function jpegAcTable(): number[] {
  return segment(0xc4, [0x10, ...AC_COUNTS, ...AC_SYMBOLS]);
}
