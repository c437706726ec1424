/**
 * Hostile images (issue #14): decode budgets in workerd, through the real Worker. Every file is
 * built here (test/hostile-images.ts), none is a fixture: the PNG zlib bomb (a 16×16 header whose
 * data inflates to 1,000 MiB), the progressive JPEG with 58,000 empty scans, and their variants
 * (one byte past the size the header implies, too many chunks, segments or scans, too much scan
 * work), next to valid files at the edges (the pixel limit, interlacing, every PNG bit depth,
 * libjpeg's progressive script) that must still decode. Assertions are on the answer, never on time
 * (the refusal times are in `npm run bench`).
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { checkImage, decodeForModel, decodeImage, MAX_IMAGE_BYTES } from "../src/image/decode";
import { JPEG_WORK_FACTOR, MAX_JPEG_SCANS, MAX_JPEG_SEGMENTS } from "../src/image/jpeg";
import { MAX_PNG_CHUNKS } from "../src/image/png";
import worker from "../src/index";
import { api, fixtureBytes, postJson, problem, seedShippedModel } from "./helpers";
import {
  idatChunks,
  ihdr,
  type JpegScan,
  jpegComment,
  pngChunk,
  pngFile,
  pngFromRaw,
  pngRaw,
  pngRawSize,
  progressiveJpeg,
  zlibZeroBomb,
  zlibZeros,
} from "./hostile-images";

const MiB = 1024 * 1024;

const toBase64 = (bytes: Uint8Array): string => {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
};

// --- the files -------------------------------------------------------------------------------

/** The PNG: 16×16 gray (272 bytes of image data) whose IDAT inflates to 1,000 MiB (~1 MB). */
const pngBomb = () => pngFile(ihdr(16, 16), idatChunks(zlibZeroBomb(1000 * MiB)));
const png16 = (extra: number) =>
  pngFile(ihdr(16, 16), idatChunks(zlibZeros(pngRawSize(16, 16, 8, 1) + extra)));

/** A gray progressive JPEG: DC, then `scans` more (default: none). */
const DC: JpegScan = { comps: [0], ss: 0, se: 0, ah: 0, al: 0 };
const AC_ALL: JpegScan = { comps: [0], ss: 1, se: 63, ah: 0, al: 0 };

/** The JPEG: 2048×2048, one DC scan, then 58,000 scans that each send nothing (end-of-band runs). */
const jpegScanBomb = () =>
  progressiveJpeg({
    width: 2048,
    height: 2048,
    components: 1,
    level: () => 128,
    scans: [DC, ...Array.from({ length: 58_000 }, () => AC_ALL)],
  });

/** A valid progression with one scan more than allowed: 63 single-coefficient AC scans, then a refinement. */
const tooManyScans = (): JpegScan[] => [
  DC,
  ...Array.from({ length: 63 }, (_, k) => ({ comps: [0], ss: k + 1, se: k + 1, ah: 0, al: 1 })),
  ...Array.from({ length: MAX_JPEG_SCANS - 63 }, (_, k) => ({
    comps: [0],
    ss: k + 1,
    se: k + 1,
    ah: 1,
    al: 0,
  })),
];

/** The most work a valid progression allows: every coefficient in 14 bit planes (first + 13 refinements). */
const fourteenBitPlanes = (): JpegScan[] => {
  const planes = (ss: number, se: number): JpegScan[] => [
    { comps: [0], ss, se, ah: 0, al: 13 },
    ...Array.from({ length: 13 }, (_, i) => ({ comps: [0], ss, se, ah: 13 - i, al: 12 - i })),
  ];
  return [...planes(0, 0), ...planes(1, 63)];
};

// --- the cases -------------------------------------------------------------------------------

type Case = [string, () => Uint8Array, number, string, Record<string, unknown>?];
const BOMBS: Case[] = [
  ["PNG zlib bomb: 16×16 header, IDAT inflating to 1,000 MiB", pngBomb, 400, "invalid_image"],
  [
    "PNG zlib bomb with an interlaced header (Adam7 sizes)",
    () => pngFile(ihdr(64, 64, 8, 6, 1), idatChunks(zlibZeroBomb(256 * MiB))),
    400,
    "invalid_image",
  ],
  ["PNG whose image data is 1 byte longer than IHDR implies", () => png16(1), 400, "invalid_image"],
  ["PNG whose image data is 1 byte shorter than IHDR implies", () => png16(-1), 400, "invalid_image"],
  [
    `PNG with more than ${MAX_PNG_CHUNKS} chunks (empty tEXt)`,
    () =>
      pngFile(ihdr(16, 16), [
        ...Array.from({ length: MAX_PNG_CHUNKS }, () => pngChunk("tEXt", Uint8Array.of(65, 0))),
        ...idatChunks(zlibZeros(pngRawSize(16, 16, 8, 1))),
      ]),
    413,
    "image_too_large",
    { limit_chunks: MAX_PNG_CHUNKS },
  ],
  [
    "PNG with a 1 MiB palette (349,000 entries; the spec allows 256)",
    () =>
      pngFile(ihdr(16, 16, 8, 3), [
        pngChunk("PLTE", new Uint8Array(3 * 349_000)),
        ...idatChunks(zlibZeros(pngRawSize(16, 16, 8, 1))),
      ]),
    400,
    "invalid_image",
  ],
  ["progressive JPEG 2048×2048 with 58,000 empty scans", jpegScanBomb, 400, "invalid_image"],
  [
    "progressive JPEG repeating its DC scan",
    () => progressiveJpeg({ width: 64, height: 64, components: 1, scans: [DC, DC, AC_ALL] }),
    400,
    "invalid_image",
  ],
  [
    "baseline JPEG scanning its one component twice",
    () =>
      progressiveJpeg({
        width: 64,
        height: 64,
        components: 1,
        sof: 0xc0,
        scans: [
          { comps: [0], ss: 0, se: 63, ah: 0, al: 0 },
          { comps: [0], ss: 0, se: 63, ah: 0, al: 0 },
        ],
      }),
    400,
    "invalid_image",
  ],
  [
    `progressive JPEG with a valid script of ${MAX_JPEG_SCANS + 1} scans`,
    () => progressiveJpeg({ width: 64, height: 64, components: 1, scans: tooManyScans() }),
    413,
    "image_too_large",
    { limit_scans: MAX_JPEG_SCANS },
  ],
  [
    `progressive JPEG with a valid script of 14 bit planes (over ${JPEG_WORK_FACTOR}× a baseline decode)`,
    () => progressiveJpeg({ width: 64, height: 64, components: 1, scans: fourteenBitPlanes() }),
    413,
    "image_too_large",
    { limit_work_factor: JPEG_WORK_FACTOR },
  ],
  [
    `JPEG with more than ${MAX_JPEG_SEGMENTS} marker segments (empty comments)`,
    () =>
      progressiveJpeg({
        width: 64,
        height: 64,
        components: 1,
        extra: Array.from({ length: MAX_JPEG_SEGMENTS }, () => jpegComment()),
      }),
    413,
    "image_too_large",
    { limit_segments: MAX_JPEG_SEGMENTS },
  ],
];

const post = (image: Uint8Array) => postJson("/api/v1/predict", { model: "digits", image: toBase64(image) });

beforeAll(async () => {
  await seedShippedModel("digits");
});

describe("decode budgets: bombs are refused with 400/413 before their decoder runs", () => {
  it("the bombs are the issue's: ≤ 1 MiB files, a 2048×2048 or 16×16 header", () => {
    const png = pngBomb();
    const jpeg = jpegScanBomb();
    expect(png.length).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
    expect(png.length).toBeGreaterThan(900_000);
    expect(jpeg.length).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
    expect(jpeg.length).toBeGreaterThan(900_000);
  });

  for (const [name, build, status, code, extensions] of BOMBS) {
    it(`POST /api/v1/predict: ${name} → ${status} ${code}`, async () => {
      const bytes = build();
      expect(bytes.length).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
      const res = await post(bytes);
      expect(res.status).toBe(status);
      expect(await problem(res)).toMatchObject({ code, status, ...extensions });
    });
  }

  it("the isolate still serves afterwards: health, and a digit", async () => {
    expect((await api("/api/v1/health", {}, { auth: false })).status).toBe(200);
    const { probes } = JSON.parse(
      new TextDecoder().decode(await fixtureBytes("models/digits/reference.json")),
    ) as {
      probes: { name: string; image: string; digit: string }[];
    };
    const seven = probes.find((p) => p.name === "digit-7-28.png");
    const res = await postJson("/api/v1/predict", { model: "digits", image: seven?.image, n_top: 1 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { predictions: { label: string }[] }).predictions[0]?.label).toBe("7");
  });
});

describe("the async route and its consumer run the same budget", () => {
  const count = async () =>
    (await env.DB.prepare("SELECT COUNT(*) AS n FROM predictions").first<{ n: number }>())?.n ?? 0;

  for (const [name, build, status, code] of BOMBS.filter(([n]) =>
    /zlib bomb: 16|58,000|valid script of 6/.test(n),
  )) {
    it(`POST /api/v1/predictions: ${name} → ${status} ${code}, nothing queued`, async () => {
      const before = await count();
      const res = await postJson("/api/v1/predictions", { model: "digits", image: toBase64(build()) });
      expect(res.status).toBe(status);
      expect((await problem(res)).code).toBe(code);
      expect(await count()).toBe(before);
    });
  }

  it("a bomb that reached the queue anyway fails its prediction at once (no retries)", async () => {
    const id = crypto.randomUUID();
    await env.MODELS.put(`inputs/${id}`, JSON.stringify({ image: toBase64(pngBomb()) }));
    await env.DB.prepare(
      "INSERT INTO predictions (id, model_id, model_version, status, input_key, created_at) VALUES (?, 'digits', '1', 'queued', ?, ?)",
    )
      .bind(id, `inputs/${id}`, Date.now())
      .run();
    const batch = createMessageBatch("edge-inference-predictions", [
      {
        id: crypto.randomUUID(),
        timestamp: new Date(),
        attempts: 1,
        body: { kind: "prediction", id, key: `inputs/${id}` },
      },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(1);
    expect(result.retryMessages).toEqual([]);
    const row = await env.DB.prepare("SELECT status, error FROM predictions WHERE id = ?").bind(id).first();
    expect(row).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/inflates to more than the 272 bytes/),
    });
  });
});

describe("valid files at the edges still decode", () => {
  it("a 2048×2048 RGBA PNG (16 MiB of image data, the pixel limit) → 200", async () => {
    const png = pngFile(ihdr(2048, 2048, 8, 6), idatChunks(zlibZeros(pngRawSize(2048, 2048, 8, 4))));
    const res = await post(png);
    expect(res.status).toBe(200);
  });

  it("a 2048×2048 progressive JPEG with libjpeg's 10-scan YCbCr script → 200", async () => {
    const jpeg = progressiveJpeg({ width: 2048, height: 2048, components: 3 });
    expect(checkImage(jpeg)).toMatchObject({ format: "jpeg", width: 2048, height: 2048 });
    expect((await post(jpeg)).status).toBe(200);
  });

  it("progressive JPEGs decode to their pixels (libjpeg's script in colour; DC + AC in gray)", () => {
    const level = (bx: number, by: number, c: number) => (c === 0 ? 20 + bx * 30 + by * 7 : 128);
    for (const components of [3, 1] as const) {
      const image = decodeImage(progressiveJpeg({ width: 40, height: 24, components, level }));
      // Gray files decode to one channel (jpeg-js expanded them to RGB).
      expect(image).toMatchObject({ format: "jpeg", width: 40, height: 24, channels: components });
      for (const [x, y] of [
        [0, 0],
        [13, 5],
        [39, 23],
      ] as const) {
        const want = level(Math.floor(x / 8), Math.floor(y / 8), 0);
        const at = (y * 40 + x) * components;
        expect(Array.from(image.data.subarray(at, at + components))).toEqual(
          new Array(components).fill(want),
        );
      }
    }
  });

  it("PNGs of every colour type and bit depth, interlaced or not, decode to their samples", () => {
    const palette = Uint8Array.from([0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const kinds: [number, number, number[]][] = [
      [0, 1, [1, 2, 4, 8, 16]],
      [2, 3, [8, 16]],
      [3, 1, [1, 2, 4, 8]],
      [4, 2, [8, 16]],
      [6, 4, [8, 16]],
    ];
    for (const [colorType, channels, depths] of kinds) {
      for (const depth of depths) {
        // fast-png 8 mis-reads interlaced data below 8 bits (a 400 before and after the budgets).
        for (const interlaced of depth < 8 ? [false] : [false, true]) {
          for (const [w, h] of [
            [1, 1],
            [13, 7],
            [3, 10],
          ] as const) {
            const max = colorType === 3 ? Math.min(3, (1 << depth) - 1) : (1 << depth) - 1;
            const sample = (x: number, y: number, c: number) => (x * 7919 + y * 104729 + c * 31) % (max + 1);
            const raw = pngRaw(w, h, depth, channels, interlaced, sample);
            const png = pngFromRaw(
              ihdr(w, h, depth, colorType, interlaced ? 1 : 0),
              raw,
              colorType === 3 ? palette : undefined,
            );
            const label = `type ${colorType}, ${depth} bits, ${interlaced ? "Adam7" : "plain"}, ${w}×${h}`;
            const image = decodeImage(png);
            const want: number[] = [];
            for (let i = 0; i < w * h; i++) {
              const [x, y] = [i % w, Math.floor(i / w)];
              if (colorType === 3)
                want.push(...palette.subarray(sample(x, y, 0) * 3, sample(x, y, 0) * 3 + 3));
              else {
                for (let c = 0; c < channels; c++) {
                  const v = sample(x, y, c);
                  want.push(depth === 16 ? v >> 8 : depth < 8 ? Math.round((v * 255) / max) : v);
                }
              }
            }
            expect(Array.from(image.data), label).toEqual(want);
            // The model path streams a plain PNG row by row (src/image/png-rows.ts): same pixels.
            const spec = {
              width: w,
              height: h,
              channels: 3 as const,
              layout: "NHWC" as const,
              resize: { filter: "triangle" as const, fit: "stretch" as const },
              normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
            };
            expect(Array.from(decodeForModel(png, spec).data), `${label} (streamed)`).toEqual(want);
          }
        }
      }
    }
  });

  it("a PNG whose iCCP profile is a zlib bomb decodes; the profile is never inflated", async () => {
    const iccp = pngChunk(
      "iCCP",
      Uint8Array.from([...new TextEncoder().encode("icc"), 0, 0, ...zlibZeroBomb(256 * MiB)]),
    );
    const png = pngFile(ihdr(16, 16), [iccp, ...idatChunks(zlibZeros(pngRawSize(16, 16, 8, 1)))]);
    // fast-png inflates iCCP without a cap; it is handed only the chunks that decide the pixels.
    const kept = checkImage(png).png?.pixelChunks;
    expect(kept).toBeDefined();
    expect(new TextDecoder("latin1").decode(kept)).not.toContain("iCCP");
    expect((await post(png)).status).toBe(200);
  });
});
