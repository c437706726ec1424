/**
 * Phone-size photos: a 4032×3024 (12 MP) JPEG and PNG are accepted by the image routes (the image
 * body allowance is 10 MiB of image; text bodies keep `MAX_BODY_BYTES`), and a JPEG is decoded at
 * the scale the model needs: 1/2, 1/4 and 1/8 scaled IDCT, checked against block means of the full
 * decode; and the baseline decoder's sampled pixels equal jpeg-js's on real camera-style files
 * (4:2:0, restart intervals). Costs are in `npm run bench` (`phone_photos`), not here.
 */
import { encode as encodePng } from "fast-png";
import { decode as decodeJpegJs, encode as encodeJpeg } from "jpeg-js";
import { beforeAll, describe, expect, it } from "vitest";
import type { ImagePreprocessSpec } from "../src/contracts/manifest";
import { decodeForModel, decodeImage, decodeScale, MAX_IMAGE_BYTES } from "../src/image/decode";
import { decodeJpegTo } from "../src/image/jpeg-decode";
import { fixtureBytes, postJson, seedShippedModel } from "./helpers";

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** A photo-like RGB scene: smooth gradients, a few shapes and fine noise (so it compresses like one). */
function scene(width: number, height: number, noisy = true): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  let seed = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const noise = noisy ? (seed >>> 24) % 24 : 0;
      const i = (y * width + x) * 3;
      const disc = (x - width / 3) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2;
      rgb[i] = disc ? 220 - noise : (x * 200) / width + noise;
      rgb[i + 1] = disc ? 170 - noise : (y * 180) / height + noise;
      rgb[i + 2] = disc ? 140 : 90 + noise;
    }
  }
  return rgb;
}

function jpeg(rgb: Uint8Array, width: number, height: number, quality: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  return new Uint8Array(encodeJpeg({ data: rgba, width, height }, quality).data);
}

const spec = (filter: ImagePreprocessSpec["resize"]["filter"], size: number): ImagePreprocessSpec => ({
  height: size,
  width: size,
  channels: 3,
  layout: "NHWC",
  resize: { filter, fit: "stretch" },
  normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
});

describe("12 MP photos through the image route", () => {
  const width = 4032;
  const height = 3024;
  let rgb: Uint8Array;
  beforeAll(async () => {
    await seedShippedModel("moderation-image");
    await seedShippedModel("digits");
    rgb = scene(width, height);
  });

  it("a 4032×3024 JPEG → 200 for moderation-image (sampled decode) and digits (1/8 decode)", async () => {
    const file = jpeg(rgb, width, height, 92);
    expect(file.length).toBeGreaterThan(1024 * 1024); // over the old 1 MiB limit
    expect(file.length).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
    for (const model of ["moderation-image", "digits"]) {
      const res = await postJson("/api/v1/predict", { model, image: toBase64(file) });
      expect(res.status, model).toBe(200);
    }
    // Decoded for the model, never at full size.
    expect(decodeForModel(file, spec("triangle", 28))).toMatchObject({ width: 504, height: 378 });
    const sampled = decodeForModel(file, spec("bilinear_align_corners", 224));
    expect(sampled.width * sampled.height).toBeLessThan(450 * 450);
  }, 120_000);

  it("a 4032×3024 PNG → 200 (streamed row by row)", async () => {
    // Smooth (no noise), so 12 MP fit in 10 MiB as PNG.
    const file = encodePng({ width, height, data: scene(width, height, false), channels: 3, depth: 8 });
    expect(file.length).toBeGreaterThan(1024 * 1024);
    expect(file.length).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
    const res = await postJson("/api/v1/predict", { model: "moderation-image", image: toBase64(file) });
    expect(res.status).toBe(200);
  }, 120_000);
});

describe("scaled JPEG decode", () => {
  it("1/2, 1/4, 1/8 are the block means of the full decode (within JPEG rounding)", () => {
    const w = 96;
    const h = 64;
    const file = jpeg(scene(w, h), w, h, 95);
    const full = decodeImage(file);
    for (const s of [2, 4, 8] as const) {
      const scaled = decodeJpegTo(file, { scale: s });
      expect([scaled.width, scaled.height]).toEqual([w / s, h / s]);
      let worst = 0;
      let sum = 0;
      for (let y = 0; y < h / s; y++) {
        for (let x = 0; x < w / s; x++) {
          for (let c = 0; c < 3; c++) {
            let mean = 0;
            for (let dy = 0; dy < s; dy++)
              for (let dx = 0; dx < s; dx++)
                mean += full.data[((y * s + dy) * w + x * s + dx) * 3 + c] as number;
            mean /= s * s;
            const d = Math.abs(mean - (scaled.data[(y * (w / s) + x) * 3 + c] as number));
            worst = Math.max(worst, d);
            sum += d;
          }
        }
      }
      // The scaled IDCT drops the high frequencies inside each s × s cell: close to, not exactly, the mean.
      expect(sum / ((w / s) * (h / s) * 3), `1/${s} mean`).toBeLessThan(s === 8 ? 1 : 4);
      expect(worst, `1/${s} worst`).toBeLessThan(s === 8 ? 2 : 40);
    }
  });

  it("the scale leaves at least the model's size on the shorter side, and at most 4 Mi pixels", () => {
    expect(decodeScale(spec("triangle", 224), 4032, 3024)).toBe(8);
    expect(decodeScale(spec("triangle", 512), 4032, 3024)).toBe(4);
    expect(decodeScale(spec("triangle", 1024), 4032, 3024)).toBe(2);
    expect(decodeScale(spec("triangle", 224), 640, 480)).toBe(2);
    expect(decodeScale(spec("triangle", 1024), 8192, 2048)).toBe(2); // 1/1 would be 16 Mi pixels
  });
});

/**
 * Real baseline files (Debian wallpapers, installed by .ci/run for test/photo-parity.test.ts): 4:2:0
 * chroma (lomiri-wallpapers-16.04's analogpattern, 2880×2160) and a restart interval (ukui-wallpapers'
 * the-mouse, 3840×2400, DRI 480). The sampled decode's pixels must be exactly jpeg-js's full decode's
 * (the decoder's fast paths: combined Huffman lookup, codes over 12 bits, restarts, 0xFF00 stuffing,
 * partial IDCT).
 */
const baselinePhotos = await (async () => {
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (const name of ["analogpattern_by_Peter_Nerlich.jpg", "the-mouse.jpg"]) {
    try {
      out.push({ name, bytes: await fixtureBytes(`photos/${name}`) });
    } catch {
      console.warn(
        `image-phone: photos/${name} is not installed (apt-get install lomiri-wallpapers-16.04 ukui-wallpapers)`,
      );
    }
  }
  return out;
})();

describe.skipIf(baselinePhotos.length === 0)("baseline JPEG decode on real photos", () => {
  it("sampled pixels equal jpeg-js's full decode (4:2:0; restart interval)", () => {
    for (const { name, bytes } of baselinePhotos) {
      const ref = decodeJpegJs(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 512 });
      // The rows and columns a 224×224 bilinear (aligned corners) resize reads, plus the edges.
      const grid = (n: number) => {
        const at = new Set<number>([0, n - 1]);
        for (let i = 0; i < 224; i++) {
          const x = Math.floor((i * (n - 1)) / 223);
          at.add(x);
          if (x + 1 < n) at.add(x + 1);
        }
        return Int32Array.from([...at].sort((a, b) => a - b));
      };
      const rows = grid(ref.height);
      const cols = grid(ref.width);
      const ours = decodeJpegTo(bytes, { rows, cols });
      expect([ours.width, ours.height, ours.channels], name).toEqual([cols.length, rows.length, 3]);
      let differ = 0;
      rows.forEach((y, j) => {
        cols.forEach((x, i) => {
          for (let c = 0; c < 3; c++)
            if (ours.data[(j * cols.length + i) * 3 + c] !== ref.data[(y * ref.width + x) * 3 + c]) differ++;
        });
      });
      expect(differ, name).toBe(0);
    }
  }, 120_000);
});
