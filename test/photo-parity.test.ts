/**
 * `moderation-image` on real photographs, against nsfwjs in TF.js with its own preprocessing.
 *
 * The set: every JPEG and PNG under /usr/share/backgrounds from the Debian packages
 * lomiri-wallpapers-16.04, lomiri-wallpapers-20.04, mate-backgrounds and ukui-wallpapers (installed
 * by .ci/run; licences in /usr/share/doc/<package>/copyright) that the Worker accepts (≤ 10 MiB,
 * ≤ 24 MP): 60 files, 1280×1024 to 6000×4000, JPEG baseline and progressive and PNG (RGB, RGBA,
 * palette); landscapes, animals, plants, city scenes, and abstract/drawn wallpapers. Not synthetic,
 * and never resized before the Worker gets them.
 *
 * The references (test/fixtures/photo-parity.json, by scripts/photo-reference.ts) are nsfwjs 4.4.0's
 * `classify` in TF.js (CPU backend) on each photo's full-size pixels, keyed by the file's sha256: a
 * file that changed with its package is reported and left out. Each photo goes through
 * `POST /api/v1/predict` as its original bytes (base64); the shipped int8 graph must agree with
 * TF.js on the top label for ≥ 99 % of the photos, and the largest per-label probability difference
 * must be ≤ 0.05 at the 95th percentile. Skipped, saying why, when the packages are not installed.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../src/hash";
import { resizeBilinear } from "../src/image/preprocess";
import { importedPreprocess } from "../src/keras/preprocess";
import { fixtureBytes, postJson, seedShippedModel } from "./helpers";

interface PhotoReference {
  packages: Record<string, string>;
  labels: string[];
  photos: { path: string; sha256: string; width: number; height: number; bytes: number; scores: number[] }[];
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const argmax = (a: readonly number[]) => a.indexOf(Math.max(...a));

const ref = JSON.parse(
  new TextDecoder().decode(await fixtureBytes("fixtures/photo-parity.json")),
) as PhotoReference;
const present = await (async () => {
  const found: { photo: PhotoReference["photos"][number]; bytes: Uint8Array }[] = [];
  const changed: string[] = [];
  for (const photo of ref.photos) {
    let bytes: Uint8Array;
    try {
      bytes = await fixtureBytes(`photos/${photo.path}`);
    } catch {
      continue;
    }
    if ((await sha256Hex(bytes)) === photo.sha256) found.push({ photo, bytes });
    else changed.push(photo.path);
  }
  if (changed.length > 0)
    console.warn(`photo-parity: changed since the references were made: ${changed.join(", ")}`);
  return found;
})();
const skip =
  present.length < 50
    ? `only ${present.length} of the ${ref.photos.length} reference photos are installed (apt-get install ${Object.keys(ref.packages).join(" ")})`
    : undefined;
if (skip) console.warn(`photo-parity skipped: ${skip}`);

describe.skipIf(skip !== undefined)("moderation-image agrees with nsfwjs (TF.js) on real photographs", () => {
  beforeAll(async () => {
    await seedShippedModel("moderation-image");
  });

  it(`top-1 agreement ≥ 99 % and p95 of the largest probability difference ≤ 0.05 (${present.length} photos)`, async () => {
    let agree = 0;
    const diffs: number[] = [];
    const misses: string[] = [];
    for (const { photo, bytes } of present) {
      const res = await postJson("/api/v1/predict", { model: "moderation-image", image: toBase64(bytes) });
      expect(res.status, photo.path).toBe(200);
      const body = (await res.json()) as { predictions: { label: string; score: number }[] };
      const scores = ref.labels.map((l) => body.predictions.find((p) => p.label === l)?.score as number);
      const diff = Math.max(...scores.map((s, i) => Math.abs(s - (photo.scores[i] as number))));
      diffs.push(diff);
      if (diff > 0.05)
        console.log(
          `photo parity: ${photo.path} ${photo.width}×${photo.height}: max diff ${diff.toFixed(3)}`,
        );
      if (argmax(scores) === argmax(photo.scores)) agree++;
      else
        misses.push(
          `${photo.path}: ours ${ref.labels[argmax(scores)]}, TF.js ${ref.labels[argmax(photo.scores)]}`,
        );
    }
    diffs.sort((a, b) => a - b);
    const p95 = diffs[Math.ceil(0.95 * diffs.length) - 1] as number;
    console.log(
      `photo parity: top-1 ${agree}/${present.length}, max-diff p50 ${diffs[Math.floor(diffs.length / 2)]?.toFixed(4)} p95 ${p95.toFixed(4)} max ${diffs.at(-1)?.toFixed(4)}`,
    );
    expect(misses).toEqual(misses.slice(0, Math.floor(present.length * 0.01)));
    expect(agree / present.length).toBeGreaterThanOrEqual(0.99);
    expect(p95).toBeLessThanOrEqual(0.05);
  }, 600_000);
});

describe("preprocessing as the model's origin computes it", () => {
  it("the Keras importer declares TF.js's resize (bilinear, aligned corners) and drops alpha like fromPixels", () => {
    const spec = importedPreprocess(
      { height: 224, width: 224, channels: 3 },
      { layout: "NHWC", fit: "stretch" },
    );
    expect(spec).toMatchObject({
      alpha: "ignore",
      resize: { filter: "bilinear_align_corners", fit: "stretch" },
    });
    expect(
      importedPreprocess(
        { height: 8, width: 8, channels: 1 },
        { layout: "NCHW", fit: "cover", filter: "triangle" },
      ).resize,
    ).toEqual({ filter: "triangle", fit: "cover" });
  });

  it("bilinear_align_corners samples as TF.js's resizeBilinear(alignCorners): corners kept, interior interpolated", () => {
    // 4 → 3 columns: source positions 0, 1.5, 3 (TF.js: (in − 1) / (out − 1) = 1.5).
    const plane = { width: 4, height: 1, data: Float32Array.from([0, 10, 20, 40]) };
    expect(Array.from(resizeBilinear(plane, 3, 1, true).data)).toEqual([0, 15, 40]);
    // Half-pixel (OpenCV): positions (o + 0.5) · 4/3 − 0.5 = 1/6, 1.5, 17/6.
    const half = Array.from(resizeBilinear(plane, 3, 1, false).data);
    expect(half[0]).toBeCloseTo(10 / 6, 5);
    expect(half[1]).toBeCloseTo(15, 5);
    expect(half[2]).toBeCloseTo(20 + (20 * 5) / 6, 4);
  });
});
