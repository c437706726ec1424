/**
 * A JPEG decoder that decodes only what a model needs: Huffman baseline and progressive files
 * (SOF0/1/2) of 1 or 3 components, any sampling factors, restart intervals, at one of two kinds of
 * output:
 *
 * - **scaled** by 1/2, 1/4 or 1/8 (or 1/1): each 8×8 block becomes an N×N block through an N-point
 *   inverse DCT of its N×N lowest frequencies (libjpeg's scaled IDCT; at 1/8 only the DC coefficient,
 *   the block's mean). A progressive file decoded at 1/8 skips its AC scans altogether;
 * - **sampled**: the full-resolution pixels at given rows × columns only (each one evaluated from its
 *   block's 64 coefficients), for point-sampled resampling (bilinear) that reads a few source pixels
 *   of a large image: the same values a full decode would have there, without decoding the rest.
 *
 * Speed (a baseline file, what cameras write): its scans are decoded by one loop
 * (`decodeBaselineScan`) that keeps the bit buffer in locals and reads each Huffman code together
 * with its value bits from a 12-bit lookup (libjpeg-turbo's approach); a block no output needs is
 * parsed without storing anything, and a needed one goes through jpeg-js's integer IDCT restricted
 * to what is needed: the row pass on the rows holding a nonzero coefficient, the column pass on the
 * needed columns only — the same integer arithmetic, so the same pixels as the full IDCT.
 *
 * Coefficients are kept as Int16 (2 bytes per coefficient of the frame's blocks; at 1/8, 2 bytes per
 * block) and the output has the scaled or sampled size, so a 12 MP photo costs ~36 MB at most (4:2:0
 * sampled; ~0.6 MB at 1/8), never its full 36 MB of RGB plus jpeg-js's per-block arrays.
 * Chroma is upsampled by replication and YCbCr → RGB computed as jpeg-js does (what the service used
 * before, and what the parity references are computed with).
 *
 * Trust: `checkJpeg` (./jpeg.ts) has already bounded segments, scans and scan work; this decoder
 * still refuses what it cannot decode (4 components, 12-bit, arithmetic coding, bad tables or
 * indices) by throwing, and reads past the end of entropy data as zero bits, as libjpeg does.
 */

/** A decode target: one of the scaled IDCT sizes, or the pixels at these full-size rows × columns. */
export type JpegDecodeTarget = { scale: 1 | 2 | 4 | 8 } | { rows: Int32Array; cols: Int32Array };

/** Decoded pixels: `width × height` (scaled, or `cols.length × rows.length`), 1 or 3 channels. */
export interface JpegPixels {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/** The header facts `decodeJpegTo` needs beyond the pixels: size and components. */
export interface JpegInfo {
  width: number;
  height: number;
  components: number;
  progressive: boolean;
  /** Blocks of all components, padded to whole MCUs (what the decoder allocates). */
  blocks: number;
}

/** Most memory for a progressive file's coefficients (all of them are kept until its last scan). */
export const MAX_COEFFICIENT_BYTES = 40 * 1024 * 1024;

const ZIGZAG = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
]);

class JpegError extends Error {}

/** Thrown when a progressive file's coefficients would exceed `MAX_COEFFICIENT_BYTES` at this target. */
export class JpegBudgetError extends Error {}

interface Huffman {
  counts: Uint8Array;
  symbols: Uint8Array;
  /** A DC table: its symbols are sizes (else run << 4 | size). */
  dc: boolean;
  /** 16-bit lookahead: (length << 8) | symbol, 0 = invalid code (progressive scans; built at first use). */
  lookup?: Uint16Array;
  /**
   * `LOOKAHEAD`-bit lookahead with the symbol's extra bits decoded too (libjpeg-turbo's approach),
   * for the baseline decoder (built at first use): `(value << 16) | (symbol << 8) | FAST | (code
   * length + size)` when the code and its extra bits (`size`: the DC symbol, or an AC symbol's low 4
   * bits) fit in the lookahead and it is not an AC end-of-block or run of 16 zeros (value: the
   * extended coefficient or DC difference), else `(symbol << 8) | code length`; 0: a longer code
   * (`slowCode`) or an invalid one.
   */
  fast?: Int32Array;
  /** Per code length 1…16: the first and last code (last −1: none), and symbol index − code. */
  mincode: Int32Array;
  maxcode: Int32Array;
  valoffset: Int32Array;
}

/** Bits of the baseline decoder's table lookahead (a 16 KB table per Huffman table, fits L1). */
const LOOKAHEAD = 12;

/** Flag of a `Huffman.fast` entry whose value is decoded. */
const FAST = 32;

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  blocksPerLine: number;
  blocksPerColumn: number;
  /** Coefficients kept per block (64, or 1 when only DC is needed). */
  stride: number;
  /** Every block's coefficients (progressive), or one block's, reused (baseline: rendered at once). */
  coefs: Int16Array;
  stored: boolean;
  /**
   * Sampled progressive decode: block → slot in `coefs` (−1: no needed pixel, only its nonzero
   * history is kept, 1 bit per coefficient in `history`, as AC refinement scans need it to parse).
   * The last slot of `coefs` is the scratch block those are decoded in.
   */
  slot?: Int32Array;
  history?: Uint8Array;
  dcTable?: Huffman;
  acTable?: Huffman;
  pred: number;
  sink: Sink;
}

/** A frame component with all its fields (one object shape for every kind of decode). */
function makeComponent(
  c: { id: number; h: number; v: number; tq: number },
  blocksPerLine: number,
  blocksPerColumn: number,
  stride: number,
  coefs: Int16Array,
  stored: boolean,
  sink: Sink,
  slot?: Int32Array,
  history?: Uint8Array,
): Component {
  return {
    id: c.id,
    h: c.h,
    v: c.v,
    tq: c.tq,
    blocksPerLine,
    blocksPerColumn,
    stride,
    coefs,
    stored,
    slot,
    history,
    dcTable: undefined,
    acTable: undefined,
    pred: 0,
    sink,
  };
}

/** Where a component's blocks are rendered: the scaled plane, or the sampled pixels only. */
interface Sink {
  plane: Uint8Array;
  /** Plane row length. */
  width: number;
  /** Sampled: component column / row → plane column / row (−1: not needed). */
  colOf?: Int32Array;
  rowOf?: Int32Array;
  /** Sampled: per block column / row, the bit mask of its 8 columns / rows that are needed. */
  colBits?: Uint8Array;
  rowBits?: Uint8Array;
}

/** A Huffman table from its DHT counts and symbols (`dc`: symbols are sizes, else run/size). */
function buildHuffman(counts: Uint8Array, symbols: Uint8Array, dc: boolean): Huffman {
  const mincode = new Int32Array(17);
  const maxcode = new Int32Array(17).fill(-1);
  const valoffset = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1] as number;
    if (n > 0) {
      if (code + n > 1 << len) throw new JpegError("JPEG Huffman table is corrupt");
      mincode[len] = code;
      valoffset[len] = k - code;
      code += n;
      k += n;
      maxcode[len] = code - 1;
    }
    code <<= 1;
  }
  return { counts, symbols, dc, lookup: undefined, fast: undefined, mincode, maxcode, valoffset };
}

/** The table's 16-bit lookup (`Huffman.lookup`), built at first use. */
function lookupOf(h: Huffman): Uint16Array {
  if (h.lookup) return h.lookup;
  const lookup = new Uint16Array(65536);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < (h.counts[len - 1] as number); i++) {
      const shift = 16 - len;
      const start = code << shift;
      lookup.fill((len << 8) | (h.symbols[k++] as number), start, start + (1 << shift));
      code++;
    }
    code <<= 1;
  }
  h.lookup = lookup;
  return lookup;
}

/** The table's combined lookahead (`Huffman.fast`), built at first use. */
function fastOf(h: Huffman): Int32Array {
  if (h.fast) return h.fast;
  const fast = new Int32Array(1 << LOOKAHEAD);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= LOOKAHEAD; len++) {
    for (let i = 0; i < (h.counts[len - 1] as number); i++) {
      const symbol = (h.symbols[k++] as number) | 0;
      const size = h.dc ? symbol : symbol & 15;
      const start = code << (LOOKAHEAD - len);
      const end = start + (1 << (LOOKAHEAD - len));
      if ((size === 0 && !h.dc) || len + size > LOOKAHEAD) fast.fill((symbol << 8) | len, start, end);
      else if (size === 0)
        fast.fill(FAST | len, start, end); // a DC difference of 0
      else {
        const span = 1 << (LOOKAHEAD - len - size);
        for (let v = 0; v < 1 << size; v++) {
          const from = start + v * span;
          fast.fill((extend(v, size) << 16) | (symbol << 8) | FAST | (len + size), from, from + span);
        }
      }
      code++;
    }
    code <<= 1;
  }
  h.fast = fast;
  return fast;
}

/**
 * A code longer than `LOOKAHEAD` bits from the next 16 bits `peek`: `(symbol << 8) | length`, or 0
 * when no code matches (libjpeg's canonical decoding).
 */
function slowCode(h: Huffman, peek: number): number {
  for (let len = LOOKAHEAD + 1; len <= 16; len++) {
    const code = peek >>> (16 - len);
    if (code <= (h.maxcode[len] as number) && code >= (h.mincode[len] as number))
      return (((h.symbols[(h.valoffset[len] as number) + code] as number) | 0) << 8) | len;
  }
  return 0;
}

/** Entropy-coded data reader: 0xFF00 unstuffing, zero bits after a marker (libjpeg's behaviour). */
class BitReader {
  buf = 0;
  bits = 0;
  constructor(
    readonly data: Uint8Array,
    public pos: number,
  ) {}
  private fill(): void {
    while (this.bits <= 24) {
      let byte = 0;
      const d = this.data;
      if (this.pos < d.length) {
        byte = d[this.pos] as number;
        if (byte === 0xff) {
          const next = d[this.pos + 1];
          if (next === 0x00) this.pos += 2;
          else byte = 0; // a marker: feed zeros, stay on it
        } else this.pos++;
      }
      this.buf = ((this.buf << 8) | byte) >>> 0;
      this.bits += 8;
    }
  }
  bit(): number {
    if (this.bits < 1) this.fill();
    this.bits--;
    return (this.buf >>> this.bits) & 1;
  }
  get(n: number): number {
    if (n === 0) return 0;
    if (this.bits < n) this.fill();
    this.bits -= n;
    return (this.buf >>> this.bits) & ((1 << n) - 1);
  }
  decode(table: Huffman): number {
    if (this.bits < 16) this.fill();
    const entry = (table.lookup ?? lookupOf(table))[(this.buf >>> (this.bits - 16)) & 0xffff] as number;
    if (entry === 0) throw new JpegError("JPEG Huffman code is invalid");
    this.bits -= entry >> 8;
    return entry & 0xff;
  }
  /** Drops buffered bits and moves past the restart marker at the data position. */
  restart(): void {
    this.buf = 0;
    this.bits = 0;
    const d = this.data;
    while (
      this.pos + 1 < d.length &&
      !(d[this.pos] === 0xff && (d[this.pos + 1] as number) >= 0xd0 && (d[this.pos + 1] as number) <= 0xd7)
    ) {
      if (d[this.pos] === 0xff && d[this.pos + 1] !== 0x00 && d[this.pos + 1] !== 0xff) return; // another marker
      this.pos++;
    }
    if (this.pos + 1 < d.length) this.pos += 2;
  }
}

function extend(v: number, n: number): number {
  return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
}

/** The JPEG's frame (size, components, progressive) without decoding; undefined when none. */
export function readJpegInfo(bytes: Uint8Array): JpegInfo | undefined {
  for (let at = 2; at + 4 <= bytes.length; ) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1] as number;
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const b = at + 4;
      const height = ((bytes[b + 1] as number) << 8) | (bytes[b + 2] as number);
      const width = ((bytes[b + 3] as number) << 8) | (bytes[b + 4] as number);
      const components = bytes[b + 5] as number;
      const factors = Array.from({ length: components }, (_, i) => bytes[b + 7 + 3 * i] ?? 0x11);
      const maxH = Math.max(1, ...factors.map((f) => f >> 4));
      const maxV = Math.max(1, ...factors.map((f) => f & 15));
      const mcus = Math.ceil(width / (8 * maxH)) * Math.ceil(height / (8 * maxV));
      const blocks = factors.reduce((sum, f) => sum + mcus * (f >> 4) * (f & 15), 0);
      return { height, width, components, progressive: marker === 0xc2, blocks };
    }
    if (marker === 0xda) return undefined;
    at += 2 + length;
  }
  return undefined;
}

/** cos((2x + 1) u π / 2N) · C(u) / 2 for N = 1, 2, 4, 8 (index [x · N + u]). */
const IDCT_TABLES = new Map<number, Float64Array>();
function idctTable(n: number): Float64Array {
  let t = IDCT_TABLES.get(n);
  if (!t) {
    t = new Float64Array(n * n);
    for (let x = 0; x < n; x++)
      for (let u = 0; u < n; u++)
        t[x * n + u] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * n));
    IDCT_TABLES.set(n, t);
  }
  return t;
}

/**
 * Decodes `bytes` (already checked by `checkJpeg`) to `target`. Throws on what it cannot decode;
 * `unsupported` is true for valid files outside this decoder's scope (4 components, 12-bit,
 * arithmetic coding), which the caller may hand to a full decoder.
 */
export function decodeJpegTo(bytes: Uint8Array, target: JpegDecodeTarget): JpegPixels {
  const n = "scale" in target ? 8 / target.scale : 8;
  const dcOnly = n === 1;
  const qt: Int32Array[] = [];
  const dcTables: Huffman[] = [];
  const acTables: Huffman[] = [];
  let components: Component[] = [];
  let width = 0;
  let height = 0;
  let progressive = false;
  let maxH = 1;
  let maxV = 1;
  let mcusPerLine = 0;
  let mcusPerColumn = 0;
  let restartInterval = 0;
  let adobeTransform: number | undefined;
  let at = 2;
  for (;;) {
    if (at + 2 > bytes.length) throw new JpegError("JPEG data is truncated");
    if (bytes[at] !== 0xff) throw new JpegError("JPEG data is corrupt");
    const marker = bytes[at + 1] as number;
    if (marker === 0xff || marker === 0x00) {
      at += marker === 0xff ? 1 : 2;
      continue;
    }
    if (marker === 0xd9) break;
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    const seg = bytes.subarray(at + 4, at + 2 + length);
    let next = at + 2 + length;
    switch (marker) {
      case 0xdb: {
        for (let i = 0; i < seg.length; ) {
          const pq = (seg[i] as number) >> 4;
          const tq = (seg[i] as number) & 15;
          const table = new Int32Array(64);
          for (let k = 0; k < 64; k++) {
            table[ZIGZAG[k] as number] =
              pq === 0
                ? (seg[i + 1 + k] as number)
                : ((seg[i + 1 + 2 * k] as number) << 8) | (seg[i + 2 + 2 * k] as number);
          }
          qt[tq] = table;
          i += 1 + 64 * (pq + 1);
        }
        break;
      }
      case 0xc4: {
        for (let i = 0; i < seg.length; ) {
          const tc = (seg[i] as number) >> 4;
          const th = (seg[i] as number) & 15;
          const counts = seg.subarray(i + 1, i + 17);
          let total = 0;
          for (const c of counts) total += c;
          const table = buildHuffman(counts, seg.subarray(i + 17, i + 17 + total), tc === 0);
          (tc === 0 ? dcTables : acTables)[th] = table;
          i += 17 + total;
        }
        break;
      }
      case 0xdd:
        restartInterval = ((seg[0] as number) << 8) | (seg[1] as number);
        break;
      case 0xee:
        if (seg.length >= 12 && String.fromCharCode(...seg.subarray(0, 5)) === "Adobe")
          adobeTransform = seg[11];
        break;
      case 0xc0:
      case 0xc1:
      case 0xc2: {
        if ((seg[0] as number) !== 8) throw new JpegError("only 8-bit JPEGs are supported");
        progressive = marker === 0xc2;
        height = ((seg[1] as number) << 8) | (seg[2] as number);
        width = ((seg[3] as number) << 8) | (seg[4] as number);
        const count = seg[5] as number;
        if (count !== 1 && count !== 3)
          throw new JpegError(`JPEGs with ${count} components are not supported`);
        const raw = Array.from({ length: count }, (_, i) => ({
          id: seg[6 + 3 * i] as number,
          h: (seg[7 + 3 * i] as number) >> 4,
          v: (seg[7 + 3 * i] as number) & 15,
          tq: (seg[8 + 3 * i] as number) & 3,
        }));
        maxH = Math.max(...raw.map((c) => c.h));
        maxV = Math.max(...raw.map((c) => c.v));
        mcusPerLine = Math.ceil(width / (8 * maxH));
        mcusPerColumn = Math.ceil(height / (8 * maxV));
        // At 1/8 only the DC coefficient is kept (and a progressive file's AC scans are skipped);
        // a baseline file's blocks are rendered as they are decoded, so only progressive ones are stored.
        const stride = dcOnly ? 1 : 64;
        const sampled = !("scale" in target);
        let bytesNeeded = 0;
        components = raw.map((c) => {
          const blocksPerLine = mcusPerLine * c.h;
          const blocksPerColumn = mcusPerColumn * c.v;
          const blocks = blocksPerLine * blocksPerColumn;
          const sink = makeSink(target, n, blocksPerLine, blocksPerColumn, c.h / maxH, c.v / maxV);
          if (!progressive) {
            return makeComponent(c, blocksPerLine, blocksPerColumn, stride, new Int16Array(64), false, sink);
          }
          if (!sampled) {
            bytesNeeded += blocks * stride * 2;
            if (bytesNeeded > MAX_COEFFICIENT_BYTES)
              throw new JpegBudgetError("progressive JPEG coefficients over budget");
            const coefs = new Int16Array(blocks * stride);
            return makeComponent(c, blocksPerLine, blocksPerColumn, stride, coefs, true, sink);
          }
          // Sampled: full coefficients only for the blocks holding a needed pixel.
          const slot = new Int32Array(blocks).fill(-1);
          const rowsNeeded = blockNeeds(sink.rowOf as Int32Array, blocksPerColumn);
          const colsNeeded = blockNeeds(sink.colOf as Int32Array, blocksPerLine);
          let count = 0;
          for (let by = 0; by < blocksPerColumn; by++)
            if (rowsNeeded[by])
              for (let bx = 0; bx < blocksPerLine; bx++)
                if (colsNeeded[bx]) slot[by * blocksPerLine + bx] = count++;
          bytesNeeded += (count + 1) * 128 + blocks * 8;
          if (bytesNeeded > MAX_COEFFICIENT_BYTES)
            throw new JpegBudgetError("progressive JPEG coefficients over budget");
          const coefs = new Int16Array((count + 1) * 64);
          const history = new Uint8Array(blocks * 8);
          return makeComponent(c, blocksPerLine, blocksPerColumn, stride, coefs, true, sink, slot, history);
        });
        break;
      }
      case 0xc3:
      case 0xc5:
      case 0xc6:
      case 0xc7:
      case 0xc9:
      case 0xca:
      case 0xcb:
      case 0xcd:
      case 0xce:
      case 0xcf:
        throw new JpegError("only Huffman baseline and progressive JPEGs are supported");
      case 0xda: {
        const count = seg[0] as number;
        const scanComps: Component[] = [];
        for (let i = 0; i < count; i++) {
          const c = components.find((x) => x.id === seg[1 + 2 * i]);
          if (!c) throw new JpegError("JPEG scan names an unknown component");
          const tables = seg[2 + 2 * i] as number;
          c.dcTable = dcTables[tables >> 4];
          c.acTable = acTables[tables & 15];
          scanComps.push(c);
        }
        const ss = seg[1 + 2 * count] as number;
        const se = seg[2 + 2 * count] as number;
        const ah = (seg[3 + 2 * count] as number) >> 4;
        const al = (seg[3 + 2 * count] as number) & 15;
        for (const c of scanComps) if (!qt[c.tq]) throw new JpegError("JPEG quantization table is missing");
        const skip = dcOnly && progressive && ss > 0;
        if (!skip) {
          next = decodeScan(bytes, next, scanComps, {
            qt,
            progressive,
            ss,
            se,
            ah,
            al,
            restartInterval,
            mcusPerLine,
            mcusPerColumn,
            width,
            height,
            maxH,
            maxV,
          });
        }
        // Move to the marker that ends the entropy data.
        while (next + 1 < bytes.length) {
          if (bytes[next] === 0xff) {
            const m = bytes[next + 1] as number;
            if (m !== 0x00 && m !== 0xff && (m < 0xd0 || m > 0xd7)) break;
          }
          next++;
        }
        break;
      }
      default:
        break;
    }
    at = next;
  }
  if (components.length === 0 || width === 0 || height === 0) throw new JpegError("JPEG has no frame");
  const rgb =
    components.length === 3 && adobeTransform !== 0 ? "ycc" : components.length === 3 ? "rgb" : "gray";
  for (const c of components) {
    if (!c.stored) continue;
    const q = qt[c.tq] as Int32Array;
    for (let by = 0; by < c.blocksPerColumn; by++) {
      for (let bx = 0; bx < c.blocksPerLine; bx++) {
        const index = by * c.blocksPerLine + bx;
        const at = c.slot ? (c.slot[index] as number) * 64 : index * c.stride;
        if (at >= 0) renderBlock(c, by, bx, c.coefs, at, q);
      }
    }
  }
  if ("scale" in target) {
    // Output pixel (x, y) of the scaled image is full-size pixel (x · s, y · s)'s block sample.
    const outW = Math.ceil((width * n) / 8);
    const outH = Math.ceil((height * n) / 8);
    return assemble(
      components,
      maxH,
      maxV,
      outW,
      outH,
      (i) => i,
      (j) => j,
      rgb,
    );
  }
  const { rows, cols } = target;
  return assemble(
    components,
    maxH,
    maxV,
    cols.length,
    rows.length,
    (i) => cols[i] as number,
    (j) => rows[j] as number,
    rgb,
  );
}

interface ScanParams {
  qt: Int32Array[];
  progressive: boolean;
  ss: number;
  se: number;
  ah: number;
  al: number;
  restartInterval: number;
  mcusPerLine: number;
  mcusPerColumn: number;
  width: number;
  height: number;
  maxH: number;
  maxV: number;
}

/** The bit buffer (`[buf, bits, pos]`) handed to `refill` by the baseline loop, which keeps it in locals. */
const BIT_STATE = new Int32Array(3);

/**
 * Refills the bit buffer byte by byte to more than 24 bits: 0xFF00 unstuffed, zero bits fed at a
 * marker (staying on it) or past the end, as libjpeg does. The baseline loop's rare path.
 */
function refill(bytes: Uint8Array, st: Int32Array): void {
  let buf = st[0] as number;
  let bits = st[1] as number;
  let pos = st[2] as number;
  while (bits <= 24) {
    let byte = 0;
    if (pos < bytes.length) {
      byte = bytes[pos] as number;
      if (byte === 0xff) {
        if (bytes[pos + 1] === 0x00) pos += 2;
        else byte = 0;
      } else pos++;
    }
    buf = (buf << 8) | byte;
    bits += 8;
  }
  st[0] = buf;
  st[1] = bits;
  st[2] = pos;
}

/** `decodeBaselineScan`'s per-component rendering: 1/8 (DC only), sampled pixels, or a scaled block. */
const DC_ONLY = 0;
const SAMPLED = 1;
const BLOCK = 2;

/**
 * A baseline scan's entropy data, each block rendered as soon as it is decoded: one loop with the
 * bit buffer in locals and the combined lookup (`Huffman.fast`: code and value bits in one step);
 * a block that no output needs (sampled) or whose AC coefficients are not needed (1/8) is parsed
 * without storing them. Returns where it stopped. Same results as the general `decodeScan` path.
 */
function decodeBaselineScan(bytes: Uint8Array, from: number, comps: Component[], p: ScanParams): number {
  const end = bytes.length;
  const st = BIT_STATE;
  let pos = from;
  let buf = 0;
  let bits = 0;
  const count = comps.length;
  // The blocks of one unit (an MCU, or one block of a single-component scan): component, row, column.
  const unit: number[] = [];
  for (let i = 0; i < count; i++) {
    const c = comps[i] as Component;
    const v = count === 1 ? 1 : c.v;
    const h = count === 1 ? 1 : c.h;
    for (let y = 0; y < v; y++) for (let x = 0; x < h; x++) unit.push(i, y, x);
  }
  const unitBlocks = Int32Array.from(unit);
  const blocksPerUnit = unit.length / 3;
  // Per component: its unit size in blocks, tables, what is rendered.
  const compV = new Int32Array(count);
  const compH = new Int32Array(count);
  const mode = new Int32Array(count);
  const rowBits: Uint8Array[] = [];
  const colBits: Uint8Array[] = [];
  const dcs: Int32Array[] = [];
  const acs: Int32Array[] = [];
  const dcHuff: Huffman[] = [];
  const acHuff: Huffman[] = [];
  const qs: Int32Array[] = [];
  const preds: number[] = [];
  const none = new Uint8Array(0);
  for (let i = 0; i < count; i++) {
    const c = comps[i] as Component;
    if (!c.dcTable || !c.acTable) throw new JpegError("JPEG scan uses a missing Huffman table");
    compV[i] = count === 1 ? 1 : c.v;
    compH[i] = count === 1 ? 1 : c.h;
    mode[i] = c.stride === 1 ? DC_ONLY : c.sink.rowBits ? SAMPLED : BLOCK;
    rowBits.push(c.sink.rowBits ?? none);
    colBits.push(c.sink.colBits ?? none);
    dcs.push(fastOf(c.dcTable));
    acs.push(fastOf(c.acTable));
    dcHuff.push(c.dcTable);
    acHuff.push(c.acTable);
    qs.push(p.qt[c.tq] as Int32Array);
    preds.push(c.pred);
  }
  let unitsPerLine: number;
  let unitLines: number;
  if (count === 1) {
    // Non-interleaved: the component's own blocks in raster order (not padded to whole MCUs).
    const c = comps[0] as Component;
    unitsPerLine = Math.ceil(Math.ceil((p.width * c.h) / p.maxH) / 8);
    unitLines = Math.ceil(Math.ceil((p.height * c.v) / p.maxV) / 8);
  } else {
    unitsPerLine = p.mcusPerLine;
    unitLines = p.mcusPerColumn;
  }
  const mask = (1 << LOOKAHEAD) - 1;
  const interval = p.restartInterval;
  // One block's coefficients (all zero between blocks: the written ones are cleared after rendering).
  const coefs = new Int16Array(64);
  const written = new Int32Array(64);
  let units = 0;
  for (let ur = 0; ur < unitLines; ur++) {
    for (let uc = 0; uc < unitsPerLine; uc++) {
      if (interval && units > 0 && units % interval === 0) {
        // Restart: drop the buffered bits, move past the RSTn marker, reset the DC predictions.
        buf = 0;
        bits = 0;
        while (
          pos + 1 < end &&
          !(bytes[pos] === 0xff && (bytes[pos + 1] as number) >= 0xd0 && (bytes[pos + 1] as number) <= 0xd7)
        ) {
          if (bytes[pos] === 0xff && bytes[pos + 1] !== 0x00 && bytes[pos + 1] !== 0xff) break;
          pos++;
        }
        if (
          pos + 1 < end &&
          bytes[pos] === 0xff &&
          (bytes[pos + 1] as number) >= 0xd0 &&
          (bytes[pos + 1] as number) <= 0xd7
        )
          pos += 2;
        for (let i = 0; i < count; i++) preds[i] = 0;
      }
      for (let b = 0; b < blocksPerUnit; b++) {
        const ci = unitBlocks[3 * b] as number;
        const by = ur * (compV[ci] as number) + (unitBlocks[3 * b + 1] as number);
        const bx = uc * (compH[ci] as number) + (unitBlocks[3 * b + 2] as number);
        const m = mode[ci] as number;
        // Whether this block's AC coefficients are needed (sampled: the block holds a needed pixel).
        let needRows = 0xff;
        let needCols = 0xff;
        if (m === SAMPLED) {
          needRows = (rowBits[ci] as Uint8Array)[by] as number;
          needCols = (colBits[ci] as Uint8Array)[bx] as number;
        }
        const store = m !== DC_ONLY && needRows !== 0 && needCols !== 0;
        // DC difference.
        if (bits < 16) {
          // Two bytes at once when neither is 0xFF (bits + 16 ≤ 31), else byte by byte.
          if (pos + 1 < end && bytes[pos] !== 0xff && bytes[pos + 1] !== 0xff) {
            buf = (buf << 16) | ((bytes[pos] as number) << 8) | (bytes[pos + 1] as number);
            bits += 16;
            pos += 2;
          } else {
            st[0] = buf;
            st[1] = bits;
            st[2] = pos;
            refill(bytes, st);
            buf = st[0] as number;
            bits = st[1] as number;
            pos = st[2] as number;
          }
        }
        let e = (dcs[ci] as Int32Array)[(buf >>> (bits - LOOKAHEAD)) & mask] as number;
        let diff: number;
        if ((e & FAST) !== 0) {
          bits -= e & 31;
          diff = e >> 16;
        } else {
          if (e === 0) {
            e = slowCode(dcHuff[ci] as Huffman, (buf >>> (bits - 16)) & 0xffff);
            if (e === 0) throw new JpegError("JPEG Huffman code is invalid");
          }
          bits -= e & 31;
          const t = (e >> 8) & 0xff;
          if (t > 16) throw new JpegError("JPEG DC difference is corrupt");
          if (bits < t) {
            st[0] = buf;
            st[1] = bits;
            st[2] = pos;
            refill(bytes, st);
            buf = st[0] as number;
            bits = st[1] as number;
            pos = st[2] as number;
          }
          bits -= t;
          diff = extend((buf >>> bits) & ((1 << t) - 1), t);
        }
        const pred = (preds[ci] as number) + diff;
        preds[ci] = pred;
        coefs[0] = pred;
        // AC coefficients (zigzag order): stored when needed (`rows`: bit mask of the block rows
        // holding one), else only parsed.
        const ac = acs[ci] as Int32Array;
        let rows = 1;
        let nw = 0;
        for (let k = 1; k < 64; ) {
          if (bits < 16) {
            if (pos + 1 < end && bytes[pos] !== 0xff && bytes[pos + 1] !== 0xff) {
              buf = (buf << 16) | ((bytes[pos] as number) << 8) | (bytes[pos + 1] as number);
              bits += 16;
              pos += 2;
            } else {
              st[0] = buf;
              st[1] = bits;
              st[2] = pos;
              refill(bytes, st);
              buf = st[0] as number;
              bits = st[1] as number;
              pos = st[2] as number;
            }
          }
          e = ac[(buf >>> (bits - LOOKAHEAD)) & mask] as number;
          if ((e & FAST) !== 0) {
            bits -= e & 31;
            k += (e >> 12) & 15;
            if (k > 63) throw new JpegError("JPEG block has too many coefficients");
            if (store) {
              const z = ZIGZAG[k] as number;
              coefs[z] = e >> 16;
              written[nw++] = z;
              rows |= 1 << (z >> 3);
            }
            k++;
            continue;
          }
          if (e === 0) {
            e = slowCode(acHuff[ci] as Huffman, (buf >>> (bits - 16)) & 0xffff);
            if (e === 0) throw new JpegError("JPEG Huffman code is invalid");
          }
          bits -= e & 31;
          const s = (e >> 8) & 15;
          const r = (e >> 12) & 15;
          if (s === 0) {
            if (r < 15) break;
            k += 16;
            continue;
          }
          k += r;
          if (k > 63) throw new JpegError("JPEG block has too many coefficients");
          if (bits < s) {
            st[0] = buf;
            st[1] = bits;
            st[2] = pos;
            refill(bytes, st);
            buf = st[0] as number;
            bits = st[1] as number;
            pos = st[2] as number;
          }
          bits -= s;
          if (store) {
            const z = ZIGZAG[k] as number;
            coefs[z] = extend((buf >>> bits) & ((1 << s) - 1), s);
            written[nw++] = z;
            rows |= 1 << (z >> 3);
          }
          k++;
        }
        const q = qs[ci] as Int32Array;
        const c = comps[ci] as Component;
        if (store) {
          if (m === SAMPLED) renderSampled(c.sink, by, bx, coefs, 0, q, rows, needRows, needCols);
          else renderBlock(c, by, bx, coefs, 0, q, rows);
          for (let i = 0; i < nw; i++) coefs[written[i] as number] = 0;
        } else if (m === DC_ONLY) {
          // 1/8: the block's DC alone (as `renderBlock` computes it).
          c.sink.plane[by * c.sink.width + bx] = clamp8(
            Math.round(((coefs[0] as number) * (q[0] as number)) / 8 + 128),
          );
        }
      }
      units++;
    }
  }
  for (let i = 0; i < count; i++) (comps[i] as Component).pred = preds[i] as number;
  return pos;
}

/** Decodes one scan's entropy data into the components' coefficients; returns where it stopped. */
function decodeScan(bytes: Uint8Array, from: number, comps: Component[], p: ScanParams): number {
  if (!p.progressive) return decodeBaselineScan(bytes, from, comps, p);
  const reader = new BitReader(bytes, from);
  const { ss, se, ah, al } = p;
  let eobrun = 0;
  type BlockDecoder = (c: Component, offset: number) => void;
  /** Decodes block (row, col) of `c` into its stored coefficients (rendered after the last scan). */
  const block = (c: Component, row: number, col: number) => {
    if (c.slot && c.history) {
      const index = row * c.blocksPerLine + col;
      const at = c.slot[index] as number;
      if (at >= 0) decode(c, at * 64);
      // A block no pixel needs: its DC parsed in the scratch slot, its AC only as nonzero history.
      else if (ss === 0) decode(c, c.coefs.length - 64);
      else if (ah === 0) acFirstHistory(c, index);
      else acRefineHistory(c, index);
    } else decode(c, (row * c.blocksPerLine + col) * c.stride);
  };
  const dcFirst: BlockDecoder = (c, o) => {
    if (!c.dcTable) throw new JpegError("JPEG scan uses a missing Huffman table");
    const t = reader.decode(c.dcTable);
    c.pred += t === 0 ? 0 : extend(reader.get(t), t);
    c.coefs[o] = c.pred * (1 << al);
  };
  const dcRefine: BlockDecoder = (c, o) => {
    if (reader.bit()) c.coefs[o] = (c.coefs[o] as number) | (1 << al);
  };
  const acFirst: BlockDecoder = (c, o) => {
    if (eobrun > 0) {
      eobrun--;
      return;
    }
    const ac = c.acTable;
    if (!ac) throw new JpegError("JPEG scan uses a missing Huffman table");
    const coefs = c.coefs;
    for (let k = ss; k <= se; k++) {
      const rs = reader.decode(ac);
      const s = rs & 15;
      const r = rs >> 4;
      if (s === 0) {
        if (r < 15) {
          eobrun = (1 << r) - 1 + reader.get(r);
          break;
        }
        k += 15;
        continue;
      }
      k += r;
      if (k > 63) throw new JpegError("JPEG block has too many coefficients");
      coefs[o + (ZIGZAG[k] as number)] = extend(reader.get(s), s) * (1 << al);
    }
  };
  const p1 = 1 << al;
  const m1 = -1 << al;
  const acRefine: BlockDecoder = (c, o) => {
    const coefs = c.coefs;
    let k = ss;
    const refine = (z: number) => {
      const v = coefs[z] as number;
      if (reader.bit() && (v & p1) === 0) coefs[z] = v >= 0 ? v + p1 : v + m1;
    };
    if (eobrun === 0) {
      const ac = c.acTable;
      if (!ac) throw new JpegError("JPEG scan uses a missing Huffman table");
      for (; k <= se; k++) {
        const rs = reader.decode(ac);
        let r = rs >> 4;
        let s = rs & 15;
        if (s) {
          if (s !== 1) throw new JpegError("JPEG refinement scan is corrupt");
          s = reader.bit() ? p1 : m1;
        } else if (r !== 15) {
          eobrun = (1 << r) + reader.get(r);
          break;
        }
        while (k <= se) {
          const z = o + (ZIGZAG[k] as number);
          if (coefs[z] !== 0) refine(z);
          else {
            if (r === 0) break;
            r--;
          }
          k++;
        }
        if (s) {
          if (k > se) throw new JpegError("JPEG refinement scan is corrupt");
          coefs[o + (ZIGZAG[k] as number)] = s;
        }
      }
    }
    if (eobrun > 0) {
      for (; k <= se; k++) {
        const z = o + (ZIGZAG[k] as number);
        if (coefs[z] !== 0) refine(z);
      }
      eobrun--;
    }
  };
  // The same two AC decoders for a block no pixel needs: only whether each coefficient is nonzero
  // is kept (bit k of `history`, zigzag order), which is all later refinement scans need to parse.
  const acFirstHistory = (c: Component, index: number) => {
    if (eobrun > 0) {
      eobrun--;
      return;
    }
    const ac = c.acTable;
    const h = c.history as Uint8Array;
    if (!ac) throw new JpegError("JPEG scan uses a missing Huffman table");
    for (let k = ss; k <= se; k++) {
      const rs = reader.decode(ac);
      const s = rs & 15;
      const r = rs >> 4;
      if (s === 0) {
        if (r < 15) {
          eobrun = (1 << r) - 1 + reader.get(r);
          break;
        }
        k += 15;
        continue;
      }
      k += r;
      if (k > 63) throw new JpegError("JPEG block has too many coefficients");
      reader.get(s);
      h[index * 8 + (k >> 3)] = (h[index * 8 + (k >> 3)] as number) | (1 << (k & 7));
    }
  };
  const acRefineHistory = (c: Component, index: number) => {
    const h = c.history as Uint8Array;
    const base = index * 8;
    let k = ss;
    if (eobrun === 0) {
      const ac = c.acTable;
      if (!ac) throw new JpegError("JPEG scan uses a missing Huffman table");
      for (; k <= se; k++) {
        const rs = reader.decode(ac);
        let r = rs >> 4;
        const s = rs & 15;
        if (s) {
          if (s !== 1) throw new JpegError("JPEG refinement scan is corrupt");
          reader.bit();
        } else if (r !== 15) {
          eobrun = (1 << r) + reader.get(r);
          break;
        }
        while (k <= se) {
          if ((((h[base + (k >> 3)] as number) >> (k & 7)) & 1) === 1) reader.bit();
          else {
            if (r === 0) break;
            r--;
          }
          k++;
        }
        if (s) {
          if (k > se) throw new JpegError("JPEG refinement scan is corrupt");
          h[base + (k >> 3)] = (h[base + (k >> 3)] as number) | (1 << (k & 7));
        }
      }
    }
    if (eobrun > 0) {
      for (; k <= se; k++) if ((((h[base + (k >> 3)] as number) >> (k & 7)) & 1) === 1) reader.bit();
      eobrun--;
    }
  };
  const decode = ss === 0 ? (ah === 0 ? dcFirst : dcRefine) : ah === 0 ? acFirst : acRefine;
  const restart = () => {
    reader.restart();
    for (const c of comps) c.pred = 0;
    eobrun = 0;
  };
  let units = 0;
  if (comps.length === 1) {
    // Non-interleaved: the component's own blocks in raster order (not padded to whole MCUs).
    const c = comps[0] as Component;
    const w = Math.ceil(Math.ceil((p.width * c.h) / p.maxH) / 8);
    const h = Math.ceil(Math.ceil((p.height * c.v) / p.maxV) / 8);
    for (let row = 0; row < h; row++) {
      for (let col = 0; col < w; col++) {
        if (p.restartInterval && units > 0 && units % p.restartInterval === 0) restart();
        block(c, row, col);
        units++;
      }
    }
  } else {
    for (let mr = 0; mr < p.mcusPerColumn; mr++) {
      for (let mc = 0; mc < p.mcusPerLine; mc++) {
        if (p.restartInterval && units > 0 && units % p.restartInterval === 0) restart();
        for (const c of comps) {
          for (let v = 0; v < c.v; v++) {
            for (let h = 0; h < c.h; h++) {
              block(c, mr * c.v + v, mc * c.h + h);
            }
          }
        }
        units++;
      }
    }
  }
  return reader.pos;
}

function clamp8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/*
 * The 8×8 inverse DCT at full size is jpeg-js 0.4.4's integer Loeffler–Ligtenberg–Moschytz IDCT
 * (pdf.js, via poppler; jpeg-js is BSD-3-Clause, its decoder "Copyright 2011 notmasteryet", Apache-2.0),
 * ported line for line so full-size pixels are exactly the ones jpeg-js gave (the parity references
 * of the shipped models were computed from those).
 */
const COS1 = 4017;
const SIN1 = 799;
const COS3 = 3406;
const SIN3 = 2276;
const COS6 = 1567;
const SIN6 = 3784;
const SQRT2 = 5793;
const SQRT1D2 = 2896;

/** Dequantizes and inverse-transforms the block at `coefs[o…]` into `out` (64 samples, 0–255). */
function idct8(coefs: Int16Array, o: number, q: Int32Array, out: Uint8Array, rows = 0xff): void {
  const p = IDCT_WORK;
  const w = IDCT_COLS;
  idctRows(coefs, o, q, p, rows);
  idctCols(p, 0xff, w);
  clearRows(p, rows);
  for (let i = 0; i < 64; ++i) out[i] = clamp8(128 + (((w[i] as number) + 8) >> 4));
}

/** Zeroes the rows in the bit mask `rows` of `p` (the IDCT's work area is all zero between blocks). */
function clearRows(p: Int32Array, rows: number): void {
  for (let i = 0; i < 8; i++) {
    if (((rows >> i) & 1) === 0) continue;
    const r = 8 * i;
    p[r] = 0;
    p[r + 1] = 0;
    p[r + 2] = 0;
    p[r + 3] = 0;
    p[r + 4] = 0;
    p[r + 5] = 0;
    p[r + 6] = 0;
    p[r + 7] = 0;
  }
}

/**
 * The IDCT's first pass: the dequantized rows of the block at `coefs[o…]` into `p`. Only the rows
 * in the bit mask `rows` may hold nonzero coefficients: the others are all zero, their result is 0
 * (as the full pass would give), and they are left as they are in `p`, which must be zero there.
 */
function idctRows(coefs: Int16Array, o: number, q: Int32Array, p: Int32Array, rows: number): void {
  let v0: number;
  let v1: number;
  let v2: number;
  let v3: number;
  let v4: number;
  let v5: number;
  let v6: number;
  let v7: number;
  let t: number;
  for (let i = 0; i < 8; ++i) {
    const r = 8 * i;
    if (((rows >> i) & 1) === 0) continue;
    const d0 = ((coefs[o + r] as number) * (q[r] as number)) | 0;
    const d1 = ((coefs[o + r + 1] as number) * (q[r + 1] as number)) | 0;
    const d2 = ((coefs[o + r + 2] as number) * (q[r + 2] as number)) | 0;
    const d3 = ((coefs[o + r + 3] as number) * (q[r + 3] as number)) | 0;
    const d4 = ((coefs[o + r + 4] as number) * (q[r + 4] as number)) | 0;
    const d5 = ((coefs[o + r + 5] as number) * (q[r + 5] as number)) | 0;
    const d6 = ((coefs[o + r + 6] as number) * (q[r + 6] as number)) | 0;
    const d7 = ((coefs[o + r + 7] as number) * (q[r + 7] as number)) | 0;
    if (d1 === 0 && d2 === 0 && d3 === 0 && d4 === 0 && d5 === 0 && d6 === 0 && d7 === 0) {
      t = (SQRT2 * d0 + 512) >> 10;
      p.fill(t, r, r + 8);
      continue;
    }
    v0 = (SQRT2 * d0 + 128) >> 8;
    v1 = (SQRT2 * d4 + 128) >> 8;
    v2 = d2;
    v3 = d6;
    v4 = (SQRT1D2 * (d1 - d7) + 128) >> 8;
    v7 = (SQRT1D2 * (d1 + d7) + 128) >> 8;
    v5 = d3 << 4;
    v6 = d5 << 4;
    t = (v0 - v1 + 1) >> 1;
    v0 = (v0 + v1 + 1) >> 1;
    v1 = t;
    t = (v2 * SIN6 + v3 * COS6 + 128) >> 8;
    v2 = (v2 * COS6 - v3 * SIN6 + 128) >> 8;
    v3 = t;
    t = (v4 - v6 + 1) >> 1;
    v4 = (v4 + v6 + 1) >> 1;
    v6 = t;
    t = (v7 + v5 + 1) >> 1;
    v5 = (v7 - v5 + 1) >> 1;
    v7 = t;
    t = (v0 - v3 + 1) >> 1;
    v0 = (v0 + v3 + 1) >> 1;
    v3 = t;
    t = (v1 - v2 + 1) >> 1;
    v1 = (v1 + v2 + 1) >> 1;
    v2 = t;
    t = (v4 * SIN3 + v7 * COS3 + 2048) >> 12;
    v4 = (v4 * COS3 - v7 * SIN3 + 2048) >> 12;
    v7 = t;
    t = (v5 * SIN1 + v6 * COS1 + 2048) >> 12;
    v5 = (v5 * COS1 - v6 * SIN1 + 2048) >> 12;
    v6 = t;
    p[r] = v0 + v7;
    p[7 + r] = v0 - v7;
    p[1 + r] = v1 + v6;
    p[6 + r] = v1 - v6;
    p[2 + r] = v2 + v5;
    p[5 + r] = v2 - v5;
    p[3 + r] = v3 + v4;
    p[4 + r] = v3 - v4;
  }
}

/** The IDCT's second pass from `p` into `out`, on the columns in the bit mask `cols` only. */
function idctCols(p: Int32Array, cols: number, out: Int32Array): void {
  let v0: number;
  let v1: number;
  let v2: number;
  let v3: number;
  let v4: number;
  let v5: number;
  let v6: number;
  let v7: number;
  let t: number;
  for (let c = 0; c < 8; ++c) {
    if (((cols >> c) & 1) === 0) continue;
    if (
      p[8 + c] === 0 &&
      p[16 + c] === 0 &&
      p[24 + c] === 0 &&
      p[32 + c] === 0 &&
      p[40 + c] === 0 &&
      p[48 + c] === 0 &&
      p[56 + c] === 0
    ) {
      t = (SQRT2 * (p[c] as number) + 8192) >> 14;
      for (let k = 0; k < 8; k++) out[8 * k + c] = t;
      continue;
    }
    v0 = (SQRT2 * (p[c] as number) + 2048) >> 12;
    v1 = (SQRT2 * (p[32 + c] as number) + 2048) >> 12;
    v2 = p[16 + c] as number;
    v3 = p[48 + c] as number;
    v4 = (SQRT1D2 * ((p[8 + c] as number) - (p[56 + c] as number)) + 2048) >> 12;
    v7 = (SQRT1D2 * ((p[8 + c] as number) + (p[56 + c] as number)) + 2048) >> 12;
    v5 = p[24 + c] as number;
    v6 = p[40 + c] as number;
    t = (v0 - v1 + 1) >> 1;
    v0 = (v0 + v1 + 1) >> 1;
    v1 = t;
    t = (v2 * SIN6 + v3 * COS6 + 2048) >> 12;
    v2 = (v2 * COS6 - v3 * SIN6 + 2048) >> 12;
    v3 = t;
    t = (v4 - v6 + 1) >> 1;
    v4 = (v4 + v6 + 1) >> 1;
    v6 = t;
    t = (v7 + v5 + 1) >> 1;
    v5 = (v7 - v5 + 1) >> 1;
    v7 = t;
    t = (v0 - v3 + 1) >> 1;
    v0 = (v0 + v3 + 1) >> 1;
    v3 = t;
    t = (v1 - v2 + 1) >> 1;
    v1 = (v1 + v2 + 1) >> 1;
    v2 = t;
    t = (v4 * SIN3 + v7 * COS3 + 2048) >> 12;
    v4 = (v4 * COS3 - v7 * SIN3 + 2048) >> 12;
    v7 = t;
    t = (v5 * SIN1 + v6 * COS1 + 2048) >> 12;
    v5 = (v5 * COS1 - v6 * SIN1 + 2048) >> 12;
    v6 = t;
    out[c] = v0 + v7;
    out[56 + c] = v0 - v7;
    out[8 + c] = v1 + v6;
    out[48 + c] = v1 - v6;
    out[16 + c] = v2 + v5;
    out[40 + c] = v2 - v5;
    out[24 + c] = v3 + v4;
    out[32 + c] = v3 - v4;
  }
}

/** The scaled (N-point) IDCT's work area. */
const SCALED_WORK = new Float64Array(16);

/** The IDCT's work area (all zero between blocks), its output, and the clamped samples. */
const IDCT_WORK = new Int32Array(64);
const IDCT_COLS = new Int32Array(64);
const IDCT_OUT = new Uint8Array(64);

/** Per block row (or column): whether any of its 8 pixel rows (columns) is needed. */
function blockNeeds(of: Int32Array, blocks: number): Uint8Array {
  const need = new Uint8Array(blocks);
  for (let i = 0; i < of.length; i++) if ((of[i] as number) >= 0) need[i >> 3] = 1;
  return need;
}

/** The scaled plane of a component, or the plane of its sampled pixels (`target.rows × cols`). */
function makeSink(
  target: JpegDecodeTarget,
  n: number,
  blocksPerLine: number,
  blocksPerColumn: number,
  sx: number,
  sy: number,
): Sink {
  if ("scale" in target) {
    const width = blocksPerLine * n;
    return {
      plane: new Uint8Array(width * blocksPerColumn * n),
      width,
      colOf: undefined,
      rowOf: undefined,
      colBits: undefined,
      rowBits: undefined,
    };
  }
  const axis = (full: Int32Array, factor: number, size: number) => {
    const of = new Int32Array(size).fill(-1);
    let count = 0;
    for (const v of full) {
      const c = Math.floor(v * factor);
      if (c < size && (of[c] as number) < 0) of[c] = count++;
    }
    return { of, count };
  };
  const cols = axis(target.cols, sx, blocksPerLine * 8);
  const rows = axis(target.rows, sy, blocksPerColumn * 8);
  const bitsOf = (of: Int32Array) => {
    const bits = new Uint8Array(of.length >> 3);
    for (let i = 0; i < of.length; i++)
      if ((of[i] as number) >= 0) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
    return bits;
  };
  return {
    plane: new Uint8Array(cols.count * rows.count),
    width: cols.count,
    colOf: cols.of,
    rowOf: rows.of,
    colBits: bitsOf(cols.of),
    rowBits: bitsOf(rows.of),
  };
}

/**
 * Renders block (row, col) of `c` (coefficients at `coefs[o…]`) into its sink; `rows`: bit mask of
 * the block's coefficient rows that may be nonzero (the others are all zero).
 */
function renderBlock(
  c: Component,
  by: number,
  bx: number,
  coefs: Int16Array,
  o: number,
  q: Int32Array,
  rows = 0xff,
): void {
  const { plane, width, colBits, rowBits } = c.sink;
  if (colBits && rowBits) {
    // Sampled: only a block holding a needed pixel is transformed, and only its needed columns.
    const needRows = rowBits[by] as number;
    const needCols = colBits[bx] as number;
    if (needRows !== 0 && needCols !== 0)
      renderSampled(c.sink, by, bx, coefs, o, q, rows, needRows, needCols);
    return;
  }
  const n = width / c.blocksPerLine;
  const base = by * n * width + bx * n;
  if (n === 1) {
    plane[base] = clamp8(Math.round(((coefs[o] as number) * (q[0] as number)) / 8 + 128));
    return;
  }
  if (n === 8) {
    idct8(coefs, o, q, IDCT_OUT, rows);
    for (let y = 0; y < 8; y++) plane.set(IDCT_OUT.subarray(y * 8, y * 8 + 8), base + y * width);
    return;
  }
  // N-point IDCT of the N×N lowest frequencies: rows, then columns. A row of zero coefficients
  // adds only zeros (skipping it leaves every sum exactly as it was).
  const t = idctTable(n);
  const tmp = SCALED_WORK;
  for (let v = 0; v < n; v++) {
    if (((rows >> v) & 1) === 0) continue;
    for (let x = 0; x < n; x++) {
      let acc = 0;
      for (let u = 0; u < n; u++)
        acc += (coefs[o + v * 8 + u] as number) * (q[v * 8 + u] as number) * (t[x * n + u] as number);
      tmp[v * n + x] = acc;
    }
  }
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let acc = 0;
      for (let v = 0; v < n; v++)
        if (((rows >> v) & 1) !== 0) acc += (tmp[v * n + x] as number) * (t[y * n + v] as number);
      plane[base + y * width + x] = clamp8(Math.round(acc + 128));
    }
  }
}

/**
 * The needed pixels of a block (`needRows × needCols`, bit masks), exactly as the full IDCT gives
 * them: the row pass on its nonzero rows, the column pass on the needed columns only.
 */
function renderSampled(
  sink: Sink,
  by: number,
  bx: number,
  coefs: Int16Array,
  o: number,
  q: Int32Array,
  rows: number,
  needRows: number,
  needCols: number,
): void {
  const w = IDCT_COLS;
  const plane = sink.plane;
  const width = sink.width;
  const rowOf = sink.rowOf as Int32Array;
  const colOf = sink.colOf as Int32Array;
  idctRows(coefs, o, q, IDCT_WORK, rows);
  idctCols(IDCT_WORK, needCols, w);
  clearRows(IDCT_WORK, rows);
  for (let y = 0; y < 8; y++) {
    if (((needRows >> y) & 1) === 0) continue;
    const r = (rowOf[by * 8 + y] as number) * width;
    for (let x = 0; x < 8; x++) {
      if (((needCols >> x) & 1) === 0) continue;
      plane[r + (colOf[bx * 8 + x] as number)] = clamp8(128 + (((w[y * 8 + x] as number) + 8) >> 4));
    }
  }
}

function toRgb(y: number, cb: number, cr: number, out: Uint8Array, i: number): void {
  // jpeg-js's constants and truncation (the Uint8Array store), so both decoders agree.
  out[i] = clamp8(y + 1.402 * (cr - 128));
  out[i + 1] = clamp8(y - 0.3441363 * (cb - 128) - 0.71413636 * (cr - 128));
  out[i + 2] = clamp8(y + 1.772 * (cb - 128));
}

/**
 * The output pixels from the components' sinks: chroma by replication (component sample at
 * `floor(x · h / maxH)`, as jpeg-js), YCbCr → RGB (or RGB as is with Adobe transform 0, or gray).
 */
function assemble(
  comps: Component[],
  maxH: number,
  maxV: number,
  outW: number,
  outH: number,
  colsFull: (i: number) => number,
  rowsFull: (j: number) => number,
  color: "ycc" | "rgb" | "gray",
): JpegPixels {
  const channels = comps.length === 3 ? 3 : 1;
  const data = new Uint8Array(outW * outH * channels);
  // Per component: the plane index of each output column, and the plane row start of each output row.
  const colIdx = comps.map((c) =>
    Int32Array.from({ length: outW }, (_, i) => {
      const x = Math.floor((colsFull(i) * c.h) / maxH);
      return c.sink.colOf ? (c.sink.colOf[x] as number) : x;
    }),
  );
  const rowStart = comps.map((c) =>
    Int32Array.from({ length: outH }, (_, j) => {
      const y = Math.floor((rowsFull(j) * c.v) / maxV);
      return (c.sink.rowOf ? (c.sink.rowOf[y] as number) : y) * c.sink.width;
    }),
  );
  const p0 = (comps[0] as Component).sink.plane;
  const c0 = colIdx[0] as Int32Array;
  const r0 = rowStart[0] as Int32Array;
  if (channels === 1) {
    for (let j = 0; j < outH; j++) {
      const a0 = r0[j] as number;
      for (let i = 0; i < outW; i++) data[j * outW + i] = p0[a0 + (c0[i] as number)] as number;
    }
    return { width: outW, height: outH, channels, data };
  }
  const p1 = (comps[1] as Component).sink.plane;
  const p2 = (comps[2] as Component).sink.plane;
  const c1 = colIdx[1] as Int32Array;
  const c2 = colIdx[2] as Int32Array;
  const r1 = rowStart[1] as Int32Array;
  const r2 = rowStart[2] as Int32Array;
  const ycc = color === "ycc";
  let o = 0;
  for (let j = 0; j < outH; j++) {
    const a0 = r0[j] as number;
    const a1 = r1[j] as number;
    const a2 = r2[j] as number;
    for (let i = 0; i < outW; i++, o += 3) {
      const v0 = p0[a0 + (c0[i] as number)] as number;
      const v1 = p1[a1 + (c1[i] as number)] as number;
      const v2 = p2[a2 + (c2[i] as number)] as number;
      if (ycc) toRgb(v0, v1, v2, data, o);
      else {
        data[o] = v0;
        data[o + 1] = v1;
        data[o + 2] = v2;
      }
    }
  }
  return { width: outW, height: outH, channels, data };
}
