/**
 * The imported `moderation-image` model (nsfwjs's MobileNetV2, converted by `npm run import:keras`)
 * through the real Worker: parity with TF.js's own outputs (models/moderation-image/reference.json,
 * computed in Node on reproducible synthetic images that this file rebuilds), `DEFAULT_IMAGE_MODEL`
 * for images sent without `model`, async predictions, an uploaded RGB model through the registry,
 * and the Keras converter's refusals. RGB preprocessing (fit, layout, per-channel normalisation) is
 * checked without ORT.
 */
import { encode as encodePng } from "fast-png";
import { beforeAll, describe, expect, it } from "vitest";
import { type ImageModelManifest, type ImagePreprocessSpec, imageInputDims } from "../src/contracts/manifest";
import { sha256Hex } from "../src/hash";
import type { DecodedImage } from "../src/image/pixels";
import { cropToAspect, toModelInput } from "../src/image/preprocess";
import { syntheticImage } from "../src/image/synthetic";
import { createSession, ort } from "../src/inference/ort";
import { decodeWeights, kerasToImageGraph, type LayersModelJson } from "../src/keras/convert";
import {
  buildImageGraphOnnx,
  exportImageGraph,
  type GraphOp,
  type ImageGraph,
} from "../src/onnx/image-graph";
import { api, fixtureBytes, postJson, problem, seedShippedModel } from "./helpers";
import { upload, waitForStatus } from "./registry-helpers";

interface Reference {
  generator: { seed: number; width: number; height: number; version: number };
  tolerance: number;
  labels: string[];
  quantization: "none" | "int8";
  agreement: { images: number; tfjs_top1: number[] };
  probes: { index: number; pixels_sha256: string; scores: number[]; shipped_scores?: number[] }[];
}
interface ImageResponse {
  predictions: { label: string; score: number }[];
  model: { id: string; version: string };
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function png(image: DecodedImage): string {
  return toBase64(
    encodePng({
      width: image.width,
      height: image.height,
      data: image.data,
      channels: image.channels,
      depth: 8,
    }),
  );
}

function solid(width: number, height: number, rgb: [number, number, number]): DecodedImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rgb[i % 3] as number;
  return { format: "png", width, height, channels: 3, data };
}

const json = async (path: string) => JSON.parse(new TextDecoder().decode(await fixtureBytes(path)));

describe("moderation-image through the Worker", () => {
  let ref: Reference;
  beforeAll(async () => {
    await seedShippedModel("moderation-image");
    await seedShippedModel("toxicity");
    ref = (await json("models/moderation-image/reference.json")) as Reference;
  });

  it("the importer's float conversion, run by ORT in workerd, equals TF.js's outputs within 1e-3", async () => {
    expect(ref.probes.length).toBeGreaterThanOrEqual(20);
    const model = (await json("keras/nsfwjs-mobilenet_v2/model.json")) as LayersModelJson;
    const weights = await fixtureBytes("keras/nsfwjs-mobilenet_v2/weights.bin");
    const { graph } = kerasToImageGraph(model, weights, { labels: ref.labels });
    const session = await createSession(buildImageGraphOnnx(graph, "none", { id: "float", version: "1" }));
    const manifest = (await json("models/moderation-image/manifest.json")) as ImageModelManifest;
    const { seed, width, height } = ref.generator;
    let worst = 0;
    try {
      for (const p of ref.probes) {
        const image = syntheticImage(seed, p.index, width, height);
        // Same pixels as the Node script that ran TF.js, or the comparison means nothing.
        expect(await sha256Hex(image.data), `image ${p.index}`).toBe(p.pixels_sha256);
        const input = new ort.Tensor(
          "float32",
          toModelInput(image, manifest.preprocess),
          imageInputDims(manifest.preprocess, 1),
        );
        const out = (await session.run({ image: input })).scores?.data as Float32Array;
        p.scores.forEach((want, k) => {
          worst = Math.max(worst, Math.abs((out[k] as number) - want));
        });
      }
    } finally {
      await session.release();
    }
    expect(worst).toBeLessThanOrEqual(1e-3);
  });

  it("the shipped model through the Worker reproduces the reference (PNG → decode → preprocess → ORT)", async () => {
    const { seed, width, height } = ref.generator;
    for (const p of ref.probes) {
      const image = syntheticImage(seed, p.index, width, height);
      const res = await postJson("/api/v1/predict", { model: "moderation-image", image: png(image) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as ImageResponse;
      expect(body.model.id).toBe("moderation-image");
      expect(body.predictions.map((q) => q.label).sort()).toEqual([...ref.labels].sort());
      // Float: TF.js's own scores; int8: the shipped graph's scores from ORT in Node.
      const want = ref.quantization === "int8" ? p.shipped_scores : p.scores;
      for (const { label, score } of body.predictions) {
        const diff = Math.abs(score - (want?.[ref.labels.indexOf(label)] as number));
        expect(diff, `image ${p.index} ${label}`).toBeLessThanOrEqual(ref.tolerance);
      }
    }
  });

  it("an image without `model` goes to DEFAULT_IMAGE_MODEL (moderation-image); text still to DEFAULT_MODEL", async () => {
    const image = png(syntheticImage(ref.generator.seed, 0, 224, 224));
    const res = await postJson("/api/v1/predict", { image, n_top: 2 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ImageResponse;
    expect(body.model.id).toBe("moderation-image");
    expect(body.predictions).toHaveLength(2);
    const text = await postJson("/api/v1/predict", { text: "hello there" });
    expect(((await text.json()) as { model: { id: string } }).model.id).toBe("toxicity");
  });

  it("takes any size, gray or colour, PNG or JPEG (stretched to 224×224)", async () => {
    const digits = (await json("models/digits/reference.json")) as {
      probes: { name: string; image: string }[];
    };
    const jpeg = digits.probes.find((p) => p.name.endsWith(".jpg"));
    const wide = png(syntheticImage(7, 1, 300, 120));
    for (const image of [jpeg?.image, wide]) {
      const res = await postJson("/api/v1/predict", { model: "moderation-image", image });
      expect(res.status).toBe(200);
      const body = (await res.json()) as ImageResponse;
      expect(body.predictions).toHaveLength(5);
      const sum = body.predictions.reduce((s, q) => s + q.score, 0);
      expect(sum).toBeCloseTo(1, 4);
    }
  });

  it("async predictions: an image without `model` runs moderation-image and matches the sync answer", async () => {
    const image = png(syntheticImage(ref.generator.seed, 1, 224, 224));
    const res = await postJson("/api/v1/predictions", { image, n_top: 5 });
    expect(res.status).toBe(202);
    const { status_url } = (await res.json()) as { status_url: string };
    const done = await waitForStatus<{
      status: string;
      error?: string;
      model: { id: string };
      result?: { predictions: { label: string; score: number }[] };
    }>(status_url, ["done", "failed"]);
    expect(done.error).toBeUndefined();
    expect(done.model.id).toBe("moderation-image");
    const p = ref.probes[1] as Reference["probes"][number];
    const want = ref.quantization === "int8" ? p.shipped_scores : p.scores;
    for (const { label, score } of done.result?.predictions ?? []) {
      expect(Math.abs(score - (want?.[ref.labels.indexOf(label)] as number))).toBeLessThanOrEqual(1e-3);
    }
    expect(done.result?.predictions).toHaveLength(5);
  });
  it("the shipped int8 model agrees with TF.js's top-1 class on ≥ 95 % of ≥ 100 images", async () => {
    const { images, tfjs_top1 } = ref.agreement;
    expect(images).toBeGreaterThanOrEqual(100);
    // Several classes among TF.js's answers, or agreement would be trivial.
    expect(new Set(tfjs_top1).size).toBeGreaterThanOrEqual(3);
    const manifest = (await json("models/moderation-image/manifest.json")) as ImageModelManifest;
    const session = await createSession(await fixtureBytes("models/moderation-image/model.onnx"));
    const { seed, width, height } = ref.generator;
    let agree = 0;
    try {
      for (let i = 0; i < images; i++) {
        const image = syntheticImage(seed, i, width, height);
        const input = new ort.Tensor(
          "float32",
          toModelInput(image, manifest.preprocess),
          imageInputDims(manifest.preprocess, 1),
        );
        const out = Array.from((await session.run({ image: input })).scores?.data as Float32Array);
        if (out.indexOf(Math.max(...out)) === tfjs_top1[i]) agree++;
      }
    } finally {
      await session.release();
    }
    expect(agree / images).toBeGreaterThanOrEqual(0.95);
  }, 300_000);
});

describe("an uploaded RGB (NHWC) image model works through the registry", () => {
  /**
   * A 3-channel 8×8 model with weights chosen by hand: conv channel 0 = R − B, channel 1 = B − R,
   * ReLU, global average, then a softmax over those two — "red" wins on red images, "blue" on blue.
   */
  function redBlueGraph(): ImageGraph {
    const w = new Float32Array(2 * 3);
    w.set([1, 0, -1], 0);
    w.set([-1, 0, 1], 3);
    const ops: GraphOp[] = [
      {
        op: "conv",
        input: "x",
        output: "c",
        weights: w,
        dims: [2, 3, 1, 1],
        bias: new Float32Array(2),
        strides: [1, 1],
        dilations: [1, 1],
        pads: [0, 0, 0, 0],
        group: 1,
      },
      { op: "relu", input: "c", output: "r" },
      { op: "global_avgpool", input: "r", output: "g" },
      { op: "flatten", input: "g", output: "f" },
      {
        op: "gemm",
        input: "f",
        output: "l",
        weights: Float32Array.from([4, 0, 0, 4]),
        units: 2,
        bias: new Float32Array(2),
      },
      { op: "softmax", input: "l", output: "p" },
    ];
    return { layout: "NHWC", channels: 3, height: 8, width: 8, labels: ["red", "blue"], ops, input: "x" };
  }

  it("PUT an RGB/NHWC manifest + ONNX → 201; predicting a red and a blue PNG gives red and blue", async () => {
    const preprocess: ImagePreprocessSpec = {
      height: 8,
      width: 8,
      channels: 3,
      layout: "NHWC",
      resize: { filter: "triangle", fit: "cover" },
      normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
    };
    const { onnx, manifest } = await exportImageGraph(redBlueGraph(), {
      id: "rgb-upload",
      version: "1",
      preprocess,
      quantization: "none",
    });
    const res = await upload("rgb-upload", "1", manifest, onnx, "?activate=true");
    expect(res.status, await res.clone().text()).toBe(201);
    for (const [colour, rgb] of [
      ["red", [230, 20, 10]],
      ["blue", [10, 30, 220]],
    ] as const) {
      const predicted = await postJson("/api/v1/predict", {
        model: "rgb-upload",
        image: png(solid(40, 20, [...rgb])),
      });
      expect(predicted.status).toBe(200);
      const body = (await predicted.json()) as ImageResponse;
      expect(body.predictions[0]?.label).toBe(colour);
    }
  });

  it("a manifest whose normalize does not give one value per channel is 422 invalid_model", async () => {
    const { onnx, manifest } = await exportImageGraph(redBlueGraph(), {
      id: "rgb-bad",
      version: "1",
      preprocess: {
        height: 8,
        width: 8,
        channels: 3,
        layout: "NHWC",
        resize: { filter: "triangle", fit: "stretch" },
        normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
      },
      quantization: "none",
    });
    const bad = { ...manifest, preprocess: { ...manifest.preprocess, normalize: { mean: [0], std: [1] } } };
    const res = await upload("rgb-bad", "1", bad, onnx);
    expect(res.status).toBe(422);
    expect((await problem(res)).code).toBe("invalid_model");
    expect((await api("/api/v1/models/rgb-bad")).status).toBe(404);
  });
});

describe("RGB preprocessing as the manifest declares it", () => {
  const spec = (over: Partial<ImagePreprocessSpec>): ImagePreprocessSpec => ({
    height: 2,
    width: 2,
    channels: 3,
    layout: "NHWC",
    resize: { filter: "triangle", fit: "stretch" },
    normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
    ...over,
  });

  it("NHWC interleaves R, G, B; NCHW gives planes; mean/std apply per channel", () => {
    const image = solid(2, 2, [255, 0, 51]);
    expect(Array.from(toModelInput(image, spec({})))).toEqual(
      [1, 0, 0.2, 1, 0, 0.2, 1, 0, 0.2, 1, 0, 0.2].map(Math.fround),
    );
    const nchw = toModelInput(
      image,
      spec({ layout: "NCHW", normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } }),
    );
    expect(Array.from(nchw).map((v) => Number(v.toFixed(5)))).toEqual([
      1, 1, 1, 1, -1, -1, -1, -1, -0.6, -0.6, -0.6, -0.6,
    ]);
  });

  it("gray images are replicated into R, G and B; alpha is composited over black", () => {
    const gray: DecodedImage = {
      format: "png",
      width: 2,
      height: 2,
      channels: 2,
      data: Uint8Array.from([255, 255, 255, 0, 102, 255, 0, 255]),
    };
    expect(Array.from(toModelInput(gray, spec({})))).toEqual(
      [1, 1, 1, 0, 0, 0, 0.4, 0.4, 0.4, 0, 0, 0].map(Math.fround),
    );
  });

  it("stretch fills both axes; contain letterboxes; cover crops the centre", () => {
    // 8×2: left half red, right half blue.
    const data = new Uint8Array(8 * 2 * 3);
    for (let y = 0; y < 2; y++)
      for (let x = 0; x < 8; x++) data.set(x < 4 ? [255, 0, 0] : [0, 0, 255], (y * 8 + x) * 3);
    const image: DecodedImage = { format: "png", width: 8, height: 2, channels: 3, data };
    const channel = (fit: "stretch" | "contain" | "cover", c: number) =>
      Array.from(
        toModelInput(image, spec({ resize: { filter: "triangle", fit } })).filter((_, i) => i % 3 === c),
      );
    const rounded = (xs: number[]) => xs.map((v) => Math.round(v * 100) / 100);
    // stretch: each output column is mostly its half (the triangle filter spans 4 source columns).
    expect(rounded(channel("stretch", 0))).toEqual([0.86, 0.14, 0.86, 0.14]);
    expect(rounded(channel("stretch", 2))).toEqual([0.14, 0.86, 0.14, 0.86]);
    // contain: 8×2 → 2×1 on the top row of the 2×2 (centred, rounded down); the bottom row is black.
    expect(rounded(channel("contain", 0))).toEqual([0.86, 0.14, 0, 0]);
    expect(rounded(channel("contain", 2))).toEqual([0.14, 0.86, 0, 0]);
    // cover: the centre 2×2 of the source (its 4th and 5th columns: one red, one blue).
    expect(channel("cover", 0)).toEqual([1, 0, 1, 0]);
    const crop = cropToAspect(
      { width: 6, height: 2, data: Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) },
      1,
      1,
    );
    expect(Array.from(crop.data)).toEqual([2, 3, 8, 9]);
  });
});

describe("the Keras importer", () => {
  const f32 = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
  /** A functional model: input → named layers in a chain; `layers` are `[class_name, config]`. */
  function chain(input: number[], layers: [string, Record<string, unknown>][]): LayersModelJson {
    const all = [
      {
        name: "in",
        class_name: "InputLayer",
        config: { batch_input_shape: [null, ...input] },
        inbound_nodes: [],
      },
      ...layers.map(([class_name, config], i) => ({
        name: `l${i}`,
        class_name,
        config: { name: `l${i}`, ...config },
        inbound_nodes: [[[i === 0 ? "in" : `l${i - 1}`, 0, 0, {}]]],
      })),
    ];
    return {
      modelTopology: {
        model_config: {
          class_name: "Model",
          config: {
            layers: all,
            input_layers: [["in", 0, 0]],
            output_layers: [[`l${layers.length - 1}`, 0, 0]],
          },
        },
      },
      weightsManifest: [{ paths: [], weights: [] }],
    };
  }

  it("refuses unknown layers, naming every one of them", () => {
    const model = chain(
      [4, 4, 3],
      [
        ["LSTM", {}],
        ["Conv3D", {}],
        ["Dense", { units: 2, activation: "softmax" }],
      ],
    );
    expect(() => kerasToImageGraph(model, new Uint8Array(), { labels: ["a", "b"] })).toThrow(
      /unsupported Keras layers: LSTM \('l0'\), Conv3D \('l1'\)/,
    );
  });

  it("decodes TF.js uint8-quantized weights as q · scale + min", () => {
    const weights = decodeWeights(
      [{ name: "w", shape: [3], dtype: "float32", quantization: { dtype: "uint8", min: -1, scale: 0.5 } }],
      Uint8Array.from([0, 2, 255]),
    );
    expect(Array.from(weights.get("w")?.values ?? [])).toEqual([-1, 0, 126.5]);
  });

  it("folds BatchNormalization into the conv, merges ZeroPadding2D into its pads, ReLU(6) → clip", () => {
    const model = chain(
      [4, 4, 1],
      [
        [
          "ZeroPadding2D",
          {
            padding: [
              [0, 1],
              [0, 1],
            ],
          },
        ],
        ["Conv2D", { filters: 1, kernel_size: [3, 3], strides: [2, 2], padding: "valid", use_bias: false }],
        ["BatchNormalization", { axis: -1, epsilon: 0 }],
        ["ReLU", { max_value: 6 }],
        ["GlobalAveragePooling2D", {}],
        ["Dense", { units: 2, activation: "softmax" }],
      ],
    );
    model.weightsManifest[0]?.weights.push(
      { name: "l1/kernel", shape: [3, 3, 1, 1], dtype: "float32" },
      { name: "l2/gamma", shape: [1], dtype: "float32" },
      { name: "l2/beta", shape: [1], dtype: "float32" },
      { name: "l2/moving_mean", shape: [1], dtype: "float32" },
      { name: "l2/moving_variance", shape: [1], dtype: "float32" },
      { name: "l5/kernel", shape: [1, 2], dtype: "float32" },
      { name: "l5/bias", shape: [2], dtype: "float32" },
    );
    const bytes = [f32(1, 1, 1, 1, 1, 1, 1, 1, 1), f32(2), f32(0.5), f32(1), f32(4), f32(1, -1), f32(0, 0)];
    const data = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
    let offset = 0;
    for (const b of bytes) {
      data.set(b, offset);
      offset += b.length;
    }
    const { graph } = kerasToImageGraph(model, data, { labels: ["a", "b"] });
    expect(graph.ops.map((o) => o.op)).toEqual([
      "conv",
      "clip",
      "global_avgpool",
      "flatten",
      "gemm",
      "softmax",
    ]);
    const conv = graph.ops[0] as Extract<GraphOp, { op: "conv" }>;
    expect(conv.pads).toEqual([0, 0, 1, 1]);
    expect(conv.strides).toEqual([2, 2]);
    // gamma / sqrt(var) = 2 / 2 = 1 per weight; bias = beta − mean · 1 = −0.5.
    expect(Array.from(conv.weights)).toEqual(new Array(9).fill(1));
    expect(Array.from(conv.bias)).toEqual([-0.5]);
  });

  it("a model whose output is not a softmax is refused", () => {
    const model = chain(
      [2, 2, 1],
      [
        ["Flatten", {}],
        ["Dense", { units: 2, activation: "linear", use_bias: false }],
      ],
    );
    model.weightsManifest[0]?.weights.push({ name: "l1/kernel", shape: [4, 2], dtype: "float32" });
    expect(() => kerasToImageGraph(model, f32(1, 2, 3, 4, 5, 6, 7, 8), { labels: ["a", "b"] })).toThrow(
      /softmax/,
    );
  });
});
