/**
 * EXIF orientation (JPEG APP1 `Exif`, PNG `eXIf`), all 8 values, against the TIFF 6.0 / EXIF 2.32
 * definition written out here independently of src/image/orientation.ts: for each value, where the
 * stored 0th row and 0th column are shown. From one asymmetric upright image, each test builds the
 * 8 stored images a camera would write (so that showing them as their tag says gives the upright
 * image back), encodes them as PNG with `eXIf` (exact) and JPEG with APP1 (within JPEG's error), and
 * checks the decoder returns the upright image; then that decoding for a model (sampled decode,
 * point-sampled resize) gives exactly what a full decode would, for every orientation; and that a
 * phone photo tagged 6 is classified as its upright twin through the Worker.
 */
import { encode as encodePng } from "fast-png";
import { encode as encodeJpeg } from "jpeg-js";
import { beforeAll, describe, expect, it } from "vitest";
import { concatBytes } from "../src/bytes";
import type { ImagePreprocessSpec } from "../src/contracts/manifest";
import { decodeForModel, decodeImage } from "../src/image/decode";
import { tiffOrientation } from "../src/image/orientation";
import type { DecodedImage } from "../src/image/pixels";
import { toModelInput } from "../src/image/preprocess";
import { postJson, seedShippedModel } from "./helpers";
import { pngChunk } from "./hostile-images";

/** Where the stored 0th row and 0th column are shown, per orientation (TIFF 6.0, tag 274). */
const SPEC: Record<
  number,
  { row0: "top" | "bottom" | "left" | "right"; col0: "left" | "right" | "top" | "bottom" }
> = {
  1: { row0: "top", col0: "left" },
  2: { row0: "top", col0: "right" },
  3: { row0: "bottom", col0: "right" },
  4: { row0: "bottom", col0: "left" },
  5: { row0: "left", col0: "top" },
  6: { row0: "right", col0: "top" },
  7: { row0: "right", col0: "bottom" },
  8: { row0: "left", col0: "bottom" },
};

/** Upright: 48 × 32 RGB, smooth gradients (so JPEG keeps them) and one bright corner block. */
function upright(): DecodedImage {
  const width = 48;
  const height = 32;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = 40 + x * 4;
      data[i + 1] = 30 + y * 6;
      data[i + 2] = x < 16 && y < 8 ? 240 : 60;
    }
  }
  return { format: "png", width, height, channels: 3, data };
}

/** The stored image whose display under `o` is `image`, built from `SPEC` alone. */
function stored(image: DecodedImage, o: number): DecodedImage {
  const { row0, col0 } = SPEC[o] as (typeof SPEC)[number];
  const sideways = row0 === "left" || row0 === "right";
  const sw = sideways ? image.height : image.width;
  const sh = sideways ? image.width : image.height;
  const data = new Uint8Array(image.data.length);
  for (let r = 0; r < sh; r++) {
    for (let c = 0; c < sw; c++) {
      // Stored row r, column c is shown at (vx, vy).
      let vx: number;
      let vy: number;
      if (!sideways) {
        vy = row0 === "top" ? r : image.height - 1 - r;
        vx = col0 === "left" ? c : image.width - 1 - c;
      } else {
        vx = row0 === "left" ? r : image.width - 1 - r;
        vy = col0 === "top" ? c : image.height - 1 - c;
      }
      const from = (vy * image.width + vx) * 3;
      data.set(image.data.subarray(from, from + 3), (r * sw + c) * 3);
    }
  }
  return { ...image, width: sw, height: sh, data };
}

/** A TIFF structure with IFD0 holding Orientation = `o` (and one other tag before it). */
function tiff(o: number, little: boolean): Uint8Array {
  const bytes = new Uint8Array(8 + 2 + 2 * 12 + 4);
  const view = new DataView(bytes.buffer);
  bytes.set(little ? [0x49, 0x49] : [0x4d, 0x4d]);
  view.setUint16(2, 42, little);
  view.setUint32(4, 8, little);
  view.setUint16(8, 2, little);
  // 0x010f Make (ASCII, 4 bytes inline: "Cam\0"), then 0x0112 Orientation (SHORT, 1).
  view.setUint16(10, 0x010f, little);
  view.setUint16(12, 2, little);
  view.setUint32(14, 4, little);
  bytes.set([0x43, 0x61, 0x6d, 0], 18);
  view.setUint16(22, 0x0112, little);
  view.setUint16(24, 3, little);
  view.setUint32(26, 1, little);
  view.setUint16(30, o, little);
  return bytes;
}

function pngWithExif(image: DecodedImage, o: number): Uint8Array {
  const png = encodePng({
    width: image.width,
    height: image.height,
    data: image.data,
    channels: 3,
    depth: 8,
  });
  // eXIf goes before the first IDAT: right after IHDR (8 + 25 bytes).
  return concatBytes([png.subarray(0, 33), pngChunk("eXIf", tiff(o, true)), png.subarray(33)]);
}

function jpegWithExif(image: DecodedImage, o: number): Uint8Array {
  const rgba = new Uint8Array(image.width * image.height * 4);
  for (let i = 0; i < image.width * image.height; i++) {
    rgba.set(image.data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  const exif = concatBytes([Uint8Array.from([0x45, 0x78, 0x69, 0x66, 0, 0]), tiff(o, false)]);
  const encoded = encodeJpeg(
    { width: image.width, height: image.height, data: rgba, exifBuffer: exif } as never,
    95,
  );
  return new Uint8Array(encoded.data);
}

function meanAbsDiff(a: DecodedImage, b: DecodedImage): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs((a.data[i] as number) - (b.data[i] as number));
  return sum / a.data.length;
}

describe("EXIF orientation", () => {
  const up = upright();

  it("the TIFF reader takes both byte orders and ignores values outside 1–8", () => {
    for (let o = 1; o <= 8; o++) {
      expect(tiffOrientation(tiff(o, true))).toBe(o);
      expect(tiffOrientation(tiff(o, false))).toBe(o);
    }
    expect(tiffOrientation(tiff(0, true))).toBe(1);
    expect(tiffOrientation(tiff(9, false))).toBe(1);
    expect(tiffOrientation(new Uint8Array(5))).toBe(1);
  });

  it("PNG eXIf: all 8 orientations decode to the upright pixels exactly", () => {
    for (let o = 1; o <= 8; o++) {
      const decoded = decodeImage(pngWithExif(stored(up, o), o));
      expect({ o, width: decoded.width, height: decoded.height }).toEqual({
        o,
        width: up.width,
        height: up.height,
      });
      expect(Array.from(decoded.data)).toEqual(Array.from(up.data));
    }
  });

  it("JPEG APP1 Exif: all 8 orientations decode upright (JPEG error only), and no other orientation fits", () => {
    for (let o = 1; o <= 8; o++) {
      const decoded = decodeImage(jpegWithExif(stored(up, o), o));
      expect(meanAbsDiff(decoded, up)).toBeLessThan(3);
      // The same file read as if it had any other tag is far from upright (when the size even fits).
      const raw = stored(up, o);
      for (let other = 1; other <= 8; other++) {
        if (other === o) continue;
        const wrong = decodeImage(pngWithExif(raw, other));
        if (wrong.width === up.width) expect(meanAbsDiff(wrong, up)).toBeGreaterThan(10);
      }
    }
  });

  it("decoding for a model (sampled JPEG decode, point-sampled resize) equals a full decode, every orientation and fit", () => {
    const specs: ImagePreprocessSpec[] = [];
    for (const filter of ["bilinear_align_corners", "bilinear_half_pixel"] as const)
      for (const fit of ["stretch", "contain", "cover"] as const)
        specs.push({
          height: 10,
          width: 14,
          channels: 3,
          layout: "NHWC",
          resize: { filter, fit },
          normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
        });
    for (let o = 1; o <= 8; o++) {
      for (const file of [jpegWithExif(stored(up, o), o), pngWithExif(stored(up, o), o)]) {
        const full = decodeImage(file);
        for (const spec of specs) {
          const sampled = decodeForModel(file, spec);
          expect(sampled.grid).toBeDefined();
          expect(sampled.width * sampled.height).toBeLessThan(full.width * full.height);
          expect(Array.from(toModelInput(sampled, spec))).toEqual(Array.from(toModelInput(full, spec)));
        }
      }
    }
  });
});

describe("a phone photo through the Worker", () => {
  beforeAll(async () => {
    await seedShippedModel("moderation-image");
  });

  it("tagged 6 (turned 90° clockwise to show) is classified as its upright twin, not sideways", async () => {
    // A larger upright scene: a dark, skin-toned figure on the left third of a sky-and-grass field.
    const width = 320;
    const height = 240;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        const figure = x > 40 && x < 110 && y > 30 && y < 220;
        data.set(figure ? [224, 172, 150] : y < 120 ? [110, 160, 230] : [60, 140, 50], i);
      }
    const scene: DecodedImage = { format: "png", width, height, channels: 3, data };
    const classify = async (file: Uint8Array) => {
      let s = "";
      for (let i = 0; i < file.length; i += 0x8000) s += String.fromCharCode(...file.subarray(i, i + 0x8000));
      const res = await postJson("/api/v1/predict", { model: "moderation-image", image: btoa(s) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { predictions: { label: string; score: number }[] };
      return Object.fromEntries(body.predictions.map((p) => [p.label, p.score]));
    };
    const tagged = await classify(pngWithExif(stored(scene, 6), 6));
    const plain = await classify(pngWithExif(scene, 1));
    const sideways = await classify(pngWithExif(stored(scene, 6), 1));
    for (const label of Object.keys(plain)) expect(tagged[label]).toBeCloseTo(plain[label] as number, 6);
    // The sideways reading differs: the tag changed the answer.
    expect(
      Math.max(...Object.keys(plain).map((l) => Math.abs((sideways[l] as number) - (plain[l] as number)))),
    ).toBeGreaterThan(1e-3);
  });
});
