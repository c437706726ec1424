/**
 * TF.js references for the real-photo parity test (test/photo-parity.test.ts): nsfwjs 4.4.0's own
 * MobileNetV2 classification (`nsfwjs.load("MobileNetV2")`, `classify` on an int32 tensor of the
 * decoded pixels, i.e. what `tf.browser.fromPixels` gives: nsfwjs then divides by 255 and resizes
 * with `resizeBilinear(alignCorners = true)`) of every JPEG and PNG photo under
 * /usr/share/backgrounds that the Worker accepts (≤ 10 MiB, ≤ 24 MP), from the Debian packages
 * `.ci/run` installs. Pixels are decoded at full size by jpeg-js (JPEG) and fast-png (PNG; palette
 * expanded, 16-bit to 8, alpha dropped as `fromPixels(…, 3)` drops it), upright (EXIF orientation
 * applied, as browsers do). Writes test/fixtures/photo-parity.json (scores keyed by path and sha256).
 *
 *   npx tsx scripts/photo-reference.ts            # ~10 minutes on one core
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { decode as decodePng } from "fast-png";
import { decode as decodeJpeg } from "jpeg-js";
import * as nsfwjs from "nsfwjs";
import { sha256Hex } from "../src/hash";
import { MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS } from "../src/image/decode";
import { jpegOrientation, orientImage, pngOrientation } from "../src/image/orientation";

export const PHOTO_ROOT = "/usr/share/backgrounds";
export const PHOTO_PACKAGES = [
  "lomiri-wallpapers-16.04",
  "lomiri-wallpapers-20.04",
  "mate-backgrounds",
  "ukui-wallpapers",
];
const LABELS = ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return files(full);
    return /\.(jpe?g|png)$/i.test(name) ? [full] : [];
  });
}

/** Full-size RGB pixels as the reference decoders give them. */
function rgbPixels(bytes: Uint8Array, png: boolean): { width: number; height: number; data: Uint8Array } {
  if (!png) {
    const j = decodeJpeg(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: 100,
      maxMemoryUsageInMB: 4096,
    });
    const image = orientImage(
      { format: "jpeg", width: j.width, height: j.height, channels: 3, data: j.data },
      jpegOrientation(bytes),
    );
    return image;
  }
  const p = decodePng(bytes);
  const n = p.width * p.height;
  const data = new Uint8Array(n * 3);
  const src = p.data;
  const channels = p.channels;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      let v: number;
      if (p.palette) v = (p.palette[src[i] as number] as number[])[c] as number;
      else v = src[i * channels + (channels < 3 ? 0 : c)] as number;
      data[i * 3 + c] = p.depth === 16 ? v >> 8 : v;
    }
  }
  if (p.depth !== 8 && p.depth !== 16) throw new Error("low bit depths are not in the photo set");
  return orientImage(
    { format: "png", width: p.width, height: p.height, channels: 3, data },
    pngOrientation(bytes),
  );
}

async function main(): Promise<void> {
  await tf.setBackend("cpu");
  const model = await nsfwjs.load("MobileNetV2");
  const packages = Object.fromEntries(
    PHOTO_PACKAGES.map((p) => [p, execFileSync("dpkg-query", ["-W", `-f=$\{Version}`, p]).toString()]),
  );
  const photos = [];
  for (const file of files(PHOTO_ROOT).sort()) {
    const bytes = new Uint8Array(readFileSync(file));
    const png = file.toLowerCase().endsWith(".png");
    const image = rgbPixels(bytes, png);
    if (bytes.length > MAX_IMAGE_BYTES || image.width * image.height > MAX_IMAGE_PIXELS) {
      console.log(`skipped (over the Worker's limits): ${file}`);
      continue;
    }
    const tensor = tf.tensor3d(image.data, [image.height, image.width, 3], "int32");
    const predictions = await model.classify(tensor, LABELS.length);
    tensor.dispose();
    const scores = LABELS.map((l) => predictions.find((p) => p.className === l)?.probability as number);
    photos.push({
      path: path.relative(PHOTO_ROOT, file),
      sha256: await sha256Hex(bytes),
      format: png ? "png" : "jpeg",
      width: image.width,
      height: image.height,
      bytes: bytes.length,
      scores,
    });
    console.log(`${image.width}×${image.height} ${LABELS[scores.indexOf(Math.max(...scores))]} ${file}`);
  }
  const out = {
    description:
      "nsfwjs 4.4.0 MobileNetV2 (TF.js CPU backend) on Debian-packaged photos, full-size pixels from jpeg-js / fast-png, upright; made by scripts/photo-reference.ts",
    root: PHOTO_ROOT,
    packages,
    labels: LABELS,
    photos,
  };
  writeFileSync("test/fixtures/photo-parity.json", `${JSON.stringify(out, null, 1)}\n`);
  console.log(`${photos.length} photos`);
}

await main();
