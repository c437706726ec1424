/**
 * Phone-size photos: what a 4032×3024 (12 MP) JPEG costs the Worker next to a 640×480 one, for
 * `moderation-image` (224×224, TF.js's point-sampled bilinear resize: sampled decode) and `digits`
 * (28×28, antialiased resize: decode at 1/8 scale), plus a 12 MP PNG. Per image: the Worker's own
 * `decodeForModel` + `toModelInput` (CPU ms, min/median/max over rounds) and, once per model, the
 * ORT run; the ratio 12 MP / 640×480 of the whole (decode + preprocess + model); and the peak memory
 * the decode adds, measured in a child process (peak RSS after the decode minus before it).
 *
 * The images are made from the same content at both sizes: a Debian-packaged photo
 * (/usr/share/backgrounds/…, see test/photo-parity.test.ts) when installed, else a synthetic one
 * (`src/image/synthetic.ts`); resized with the triangle filter and encoded by jpeg-js at quality 90
 * (4:4:4 — cameras write 4:2:0, which has half the chroma blocks: this is the costlier case).
 *
 *   npx tsx bench/phone-photos.ts            (also part of `npm run bench`: `phone_photos`)
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { encode as encodePng } from "fast-png";
import { encode as encodeJpeg } from "jpeg-js";
import * as ort from "onnxruntime-web";
import { type ImagePreprocessSpec, imageInputDims, imageManifestSchema } from "../src/contracts/manifest";
import { decodeForModel, decodeImage } from "../src/image/decode";
import type { DecodedImage } from "../src/image/pixels";
import { resizeTriangle, toModelInput, toRgbPlanes } from "../src/image/preprocess";
import { syntheticImage } from "../src/image/synthetic";
import { loadShippedModel } from "./model-time";

const PHOTO = "/usr/share/backgrounds/Dragonfly_by_Bolly.jpg"; // lomiri-wallpapers-16.04, 4224×3168

/** The source picture as RGB pixels: the packaged photo (reduced to ≤ 4 Mi pixels) or synthetic. */
function source(): { image: DecodedImage; name: string } {
  if (existsSync(PHOTO)) {
    const bytes = new Uint8Array(readFileSync(PHOTO));
    const spec = { height: 1512, width: 2016 } as ImagePreprocessSpec; // decodeScale → 1/2
    return {
      image: decodeForModel(bytes, {
        ...spec,
        channels: 3,
        layout: "NHWC",
        resize: { filter: "triangle", fit: "stretch" },
        normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
      }),
      name: path.basename(PHOTO),
    };
  }
  return { image: syntheticImage(20261206, 0, 2016, 1512), name: "synthetic" };
}

/** `image` resized to `width × height` (triangle filter per channel), RGB bytes. */
function resized(image: DecodedImage, width: number, height: number): Uint8Array {
  const planes = toRgbPlanes(image).map((p) => resizeTriangle(p, width, height).data);
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++)
    for (let c = 0; c < 3; c++)
      out[i * 3 + c] = Math.max(0, Math.min(255, Math.round(planes[c]?.[i] as number)));
  return out;
}

function jpeg(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  return new Uint8Array(encodeJpeg({ data: rgba, width, height }, 90).data);
}

/** The bench files: 640×480 and 4032×3024 JPEGs of the same picture, and the 12 MP one as PNG. */
export function phoneFiles(): { picture: string; files: Record<string, Uint8Array> } {
  const { image, name } = source();
  const small = resized(image, 640, 480);
  const large = resized(image, 4032, 3024);
  return {
    picture: name,
    files: {
      jpeg_640x480: jpeg(small, 640, 480),
      jpeg_4032x3024: jpeg(large, 4032, 3024),
      png_4032x3024: encodePng({ width: 4032, height: 3024, data: large, channels: 3, depth: 8 }),
    },
  };
}

const r = (x: number) => Math.round(x * 10) / 10;

function stats(samples: number[]): { min: number; median: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  return {
    min: r(s[0] as number),
    median: r(s[Math.floor(s.length / 2)] as number),
    max: r(s.at(-1) as number),
  };
}

/** CPU ms of `fn` (process user + system), per run, over `rounds` runs after one warm-up. */
function cpuTimes(fn: () => unknown, rounds: number): number[] {
  fn();
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    out.push((c.user + c.system) / 1000);
  }
  return out;
}

/** Peak RSS growth (MiB) of decoding `file` for `spec` once, in a fresh child process. */
function decodePeakMib(file: string, spec: ImagePreprocessSpec, full: boolean): number {
  const script = fileURLToPath(import.meta.url);
  const out = execFileSync(
    process.execPath,
    [
      "--expose-gc",
      "--import",
      "tsx",
      script,
      "--child",
      file,
      JSON.stringify(spec),
      full ? "full" : "model",
    ],
    { encoding: "utf8" },
  );
  return Number(out.trim());
}

export interface PhonePhotoTimes {
  picture: string;
  rounds: number;
  files: Record<string, number>;
  models: Record<
    string,
    {
      model_cpu_ms: number;
      images: Record<string, { decode_preprocess_cpu_ms: ReturnType<typeof stats>; decode_peak_mib: number }>;
      /** (decode + preprocess + model) of the 12 MP JPEG over the 640×480 one, medians. */
      ratio_12mp_to_640: number;
    }
  >;
  /** The decoder before (jpeg-js, full size, then preprocessing), for the 640×480 JPEG. */
  full_decode_640_cpu_ms: Record<string, ReturnType<typeof stats>>;
}

export async function measurePhonePhotos(root: string, rounds = 7): Promise<PhonePhotoTimes> {
  const { picture, files } = phoneFiles();
  const dir = tmpdir();
  const paths = Object.fromEntries(
    Object.entries(files).map(([name, bytes]) => {
      const file = path.join(dir, `edge-inference-bench-${name}`);
      writeFileSync(file, bytes);
      return [name, file];
    }),
  );
  const out: PhonePhotoTimes = {
    picture,
    rounds,
    files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.length])),
    models: {},
    full_decode_640_cpu_ms: {},
  };
  for (const id of ["moderation-image", "digits"]) {
    const { manifest, session } = await loadShippedModel(root, id, imageManifestSchema);
    const spec = manifest.preprocess;
    const feeds = {
      [manifest.inputs.image]: new ort.Tensor(
        "float32",
        toModelInput(decodeForModel(files.jpeg_640x480 as Uint8Array, spec), spec),
        imageInputDims(spec, 1),
      ),
    };
    const modelCpu = stats(
      await (async () => {
        for (let i = 0; i < 5; i++) await session.run(feeds);
        const t: number[] = [];
        for (let i = 0; i < rounds; i++) {
          const c0 = process.cpuUsage();
          await session.run(feeds);
          const c = process.cpuUsage(c0);
          t.push((c.user + c.system) / 1000);
        }
        return t;
      })(),
    ).median;
    await session.release();
    const images: PhonePhotoTimes["models"][string]["images"] = {};
    for (const [name, bytes] of Object.entries(files)) {
      images[name] = {
        decode_preprocess_cpu_ms: stats(
          cpuTimes(() => toModelInput(decodeForModel(bytes, spec), spec), rounds),
        ),
        decode_peak_mib: decodePeakMib(paths[name] as string, spec, false),
      };
    }
    const whole = (name: string) => (images[name]?.decode_preprocess_cpu_ms.median as number) + modelCpu;
    out.models[id] = {
      model_cpu_ms: modelCpu,
      images,
      ratio_12mp_to_640: Math.round((whole("jpeg_4032x3024") / whole("jpeg_640x480")) * 100) / 100,
    };
    out.full_decode_640_cpu_ms[id] = stats(
      cpuTimes(() => toModelInput(decodeImage(files.jpeg_640x480 as Uint8Array), spec), rounds),
    );
  }
  return out;
}

if (process.argv[2] === "--child") {
  // Child: peak RSS growth of one decode + preprocess (MiB), the file already read and the modules
  // loaded: Linux's peak RSS (VmHWM) is reset through /proc/self/clear_refs just before the decode.
  const [file, specJson, mode] = process.argv.slice(3);
  const bytes = new Uint8Array(readFileSync(file as string));
  const spec = JSON.parse(specJson as string) as ImagePreprocessSpec;
  const status = (key: string) =>
    Number(
      new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? Number.NaN,
    );
  (globalThis as { gc?: () => void }).gc?.();
  writeFileSync("/proc/self/clear_refs", "5");
  const before = status("VmRSS");
  const image = mode === "full" ? decodeImage(bytes) : decodeForModel(bytes, spec);
  toModelInput(image, spec);
  console.log(Math.round((status("VmHWM") - before) / 102.4) / 10);
} else if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  console.log(
    JSON.stringify(await measurePhonePhotos(root, Number(process.env.BENCH_PHONE_ROUNDS ?? 7)), null, 2),
  );
}
