/**
 * Image predict inputs for the bench and their cost split, in Node: decode (PNG/JPEG → pixels) and
 * preprocessing (gray, resize, normalise) with the Worker's own code, and model-only time
 * (onnxruntime-web WASM, one thread, same session options as the Worker) on a preprocessed input;
 * and the time the decoder takes to refuse hostile files (decode bombs) or to decode valid ones at
 * the pixel limit.
 */

import { encode as encodeJpeg } from "jpeg-js";
import * as ort from "onnxruntime-web";
import { base64, drawDigit, grayJpeg, grayPng } from "../scripts/digit-images";
import { imageInputDims, imageManifestSchema } from "../src/contracts/manifest";
import { decodeForModel, decodeImage } from "../src/image/decode";
import { toModelInput } from "../src/image/preprocess";
import { syntheticImage } from "../src/image/synthetic";
import {
  idatChunks,
  ihdr,
  type JpegScan,
  jpegAcTable,
  pngChunk,
  pngFile,
  pngRawSize,
  progressiveJpeg,
  zlibZeroBomb,
  zlibZeros,
} from "../test/hostile-images";
import { loadShippedModel } from "./model-time";

let ortMemory: WebAssembly.Memory | undefined;

/**
 * Keeps a handle on ORT's WASM memory when ORT instantiates its module, so the bench can report the
 * memory a model's session and runs need (the same WASM build as in the Worker). Call before ORT's
 * first session; instantiation itself is delegated unchanged.
 */
export function watchOrtMemory(): void {
  const original = WebAssembly.instantiate.bind(WebAssembly) as (...args: unknown[]) => Promise<unknown>;
  WebAssembly.instantiate = (async (...args: unknown[]) => {
    const result = (await original(...args)) as { instance?: WebAssembly.Instance } & WebAssembly.Instance;
    const exports = (result.instance ?? result).exports ?? {};
    const imports = Object.values((args[1] ?? {}) as Record<string, Record<string, unknown>>).flatMap((ns) =>
      Object.values(ns),
    );
    for (const v of [...Object.values(exports), ...imports])
      if (v instanceof WebAssembly.Memory) ortMemory = v;
    return result;
  }) as typeof WebAssembly.instantiate;
}

/** ORT's WASM memory in MiB (0 before `watchOrtMemory` saw an instantiation). */
function ortMemoryMib(): number {
  return Math.round(((ortMemory?.buffer.byteLength ?? 0) / 2 ** 20) * 10) / 10;
}

/** The two bench images: a 28×28 PNG and a 640×480 JPEG (resized by the Worker), as base64. */
export function benchImages(): { png28: string; jpeg640: string } {
  return {
    png28: base64(grayPng(drawDigit("7", 28, 28), 28, 28)),
    jpeg640: base64(grayJpeg(drawDigit("3", 640, 480, 440), 640, 480, 90)),
  };
}

/** A synthetic colour image (`src/image/synthetic.ts`) as a quality-90 JPEG, base64. */
export function colourJpeg(width: number, height: number, index = 0): string {
  const { data } = syntheticImage(20261130, index, width, height);
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  return base64(encodeJpeg({ data: rgba, width, height }, 90).data);
}

/** The moderation bench images: a 224×224 JPEG (the model's size) and a 640×480 JPEG. */
export function moderationImages(): { jpeg224: string; jpeg640: string } {
  return { jpeg224: colourJpeg(224, 224), jpeg640: colourJpeg(640, 480, 1) };
}

/** Milliseconds: the model once (its input size is fixed), decode and preprocess per image. */
export interface ImageTime {
  model_ms: number;
  /** Process CPU per model run (ms), over the timed runs. */
  model_cpu_ms: number;
  /** ORT's WASM memory (MiB) before this model's session, after creating it, after its runs. */
  ort_wasm_mib: { before: number; after_session: number; after_runs: number };
  images: Record<string, { decode_ms: number; preprocess_ms: number }>;
}

/** Measures the bench images against the `id` model in models/ (means over `iterations` runs). */
export async function measureImageTime(
  root: string,
  id: string,
  images: Record<string, string>,
  iterations = 200,
): Promise<ImageTime> {
  const before = ortMemoryMib();
  const { manifest, session } = await loadShippedModel(root, id, imageManifestSchema);
  const afterSession = ortMemoryMib();
  const mean = (fn: () => unknown, n: number) => {
    for (let i = 0; i < Math.min(20, n); i++) fn();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    return (performance.now() - t0) / n;
  };
  const r = (x: number) => Math.round(x * 1000) / 1000;
  const decoded = Object.entries(images).map(([name, b64]) => {
    const bytes = new Uint8Array(Buffer.from(b64, "base64"));
    return { name, bytes, image: decodeForModel(bytes, manifest.preprocess) };
  });
  // Model first, before the decoders' allocations can put the GC inside the timed loop.
  const first = decoded[0];
  if (!first) throw new Error("no bench images");
  const input = toModelInput(first.image, manifest.preprocess);
  const feeds = {
    [manifest.inputs.image]: new ort.Tensor("float32", input, imageInputDims(manifest.preprocess, 1)),
  };
  for (let i = 0; i < Math.min(50, iterations); i++) await session.run(feeds);
  const afterRuns = ortMemoryMib();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await session.run(feeds);
  const modelMs = (performance.now() - t0) / iterations;
  const cpu = process.cpuUsage(cpu0);
  await session.release();
  const out: ImageTime = {
    model_ms: r(modelMs),
    model_cpu_ms: r((cpu.user + cpu.system) / 1000 / iterations),
    ort_wasm_mib: { before, after_session: afterSession, after_runs: afterRuns },
    images: {},
  };
  for (const { name, bytes, image } of decoded) {
    out.images[name] = {
      decode_ms: r(mean(() => decodeForModel(bytes, manifest.preprocess), Math.ceil(iterations / 4))),
      preprocess_ms: r(mean(() => toModelInput(image, manifest.preprocess), Math.ceil(iterations / 4))),
    };
  }
  return out;
}

/** One hostile (or edge) file: what the decoder answered and how long it took, over rounds. */
export interface BombTime {
  bytes: number;
  /** `ok`, or the `ApiError` code (with the HTTP status) the decoder refused it with. */
  outcome: string;
  min_ms: number;
  median_ms: number;
  max_ms: number;
  rounds: number;
  /** How far the process's peak RSS rose during this file's runs (0 when it stayed below an earlier peak). */
  peak_rss_growth_mb: number;
}

/**
 * The hostile files of test/image-hostile.test.ts (built the same way) and two valid ones at the
 * pixel limit, for the decode budget's cost: the time `decode` takes to refuse (or decode) each,
 * min/median/max over `rounds` runs after one warm-up, and how far the peak RSS rose meanwhile.
 * `decode` is the Worker's `decodeImage` unless another decoder is compared (e.g. an older one).
 */
export function measureBombTimes(
  rounds = 7,
  decode: (bytes: Uint8Array) => unknown = decodeImage,
  only?: readonly string[],
): Record<string, BombTime> {
  const MiB = 1024 * 1024;
  const DC: JpegScan = { comps: [0], ss: 0, se: 0, ah: 0, al: 0 };
  const AC: JpegScan = { comps: [0], ss: 1, se: 63, ah: 0, al: 0 };
  const planes = (comps: number[], ss: number, se: number): JpegScan[] => [
    { comps, ss, se, ah: 0, al: 13 },
    ...Array.from({ length: 13 }, (_, i) => ({ comps, ss, se, ah: 13 - i, al: 12 - i })),
  ];
  const files: Record<string, () => Uint8Array> = {
    png_zlib_bomb_16x16_to_1000mib: () => pngFile(ihdr(16, 16), idatChunks(zlibZeroBomb(1000 * MiB))),
    png_idat_1_byte_over: () => pngFile(ihdr(16, 16), idatChunks(zlibZeros(pngRawSize(16, 16, 8, 1) + 1))),
    png_iccp_bomb_to_1000mib: () =>
      pngFile(ihdr(16, 16), [
        pngChunk("iCCP", Uint8Array.from([0x69, 0, 0, ...zlibZeroBomb(1000 * MiB)])),
        ...idatChunks(zlibZeros(pngRawSize(16, 16, 8, 1))),
      ]),
    png_80k_text_chunks: () =>
      pngFile(ihdr(16, 16), [
        ...Array.from({ length: 80_000 }, () => pngChunk("tEXt", Uint8Array.of(65, 0))),
        ...idatChunks(zlibZeros(pngRawSize(16, 16, 8, 1))),
      ]),
    jpeg_2048_58000_empty_scans: () =>
      progressiveJpeg({
        width: 2048,
        height: 2048,
        components: 1,
        level: () => 128,
        scans: [DC, ...Array.from({ length: 58_000 }, () => AC)],
      }),
    jpeg_2048_14_bit_planes_valid: () =>
      progressiveJpeg({
        width: 2048,
        height: 2048,
        components: 3,
        level: () => 128,
        scans: [...planes([0, 1, 2], 0, 0), ...[0, 1, 2].flatMap((c) => planes([c], 1, 63))],
      }),
    jpeg_2048_190_single_coefficient_scans_valid: () =>
      progressiveJpeg({
        width: 2048,
        height: 2048,
        components: 3,
        level: () => 128,
        scans: [
          { comps: [0, 1, 2], ss: 0, se: 0, ah: 0, al: 0 },
          ...[0, 1, 2].flatMap((c) =>
            Array.from({ length: 63 }, (_, k) => ({ comps: [c], ss: k + 1, se: k + 1, ah: 0, al: 0 })),
          ),
        ],
      }),
    jpeg_29k_huffman_tables: () =>
      progressiveJpeg({
        width: 64,
        height: 64,
        components: 1,
        extra: Array.from({ length: 29_000 }, () => jpegAcTable()),
      }),
    valid_png_2048_rgba: () =>
      pngFile(ihdr(2048, 2048, 8, 6), idatChunks(zlibZeros(pngRawSize(2048, 2048, 8, 4)))),
    valid_jpeg_2048_libjpeg_progressive: () => progressiveJpeg({ width: 2048, height: 2048, components: 3 }),
  };
  const r = (x: number) => Math.round(x * 10) / 10;
  const out: Record<string, BombTime> = {};
  for (const [name, build] of Object.entries(files)) {
    if (only && !only.includes(name)) continue;
    const bytes = build();
    const peakBefore = process.resourceUsage().maxRSS;
    const once = () => {
      const t0 = performance.now();
      let outcome = "ok";
      try {
        decode(bytes);
      } catch (error) {
        // By shape, not class: a compared decoder may come with its own copy of ApiError.
        const e = error as { status?: unknown; code?: unknown };
        outcome =
          typeof e.code === "string" ? `${e.status} ${e.code}` : `thrown: ${String(error).slice(0, 80)}`;
      }
      return { ms: performance.now() - t0, outcome };
    };
    const { outcome } = once();
    const times = Array.from({ length: rounds }, () => once().ms).sort((a, b) => a - b);
    out[name] = {
      bytes: bytes.length,
      outcome,
      min_ms: r(times[0] as number),
      median_ms: r(times[Math.floor((times.length - 1) / 2)] as number),
      max_ms: r(times[times.length - 1] as number),
      rounds,
      peak_rss_growth_mb: Math.round((process.resourceUsage().maxRSS - peakBefore) / 1024),
    };
  }
  return out;
}
