/**
 * The Keras importer (src/keras/convert.ts) on models TF.js itself builds, compared with TF.js's own
 * predictions through ORT (onnxruntime-web, in Node): Dense → BatchNormalization (folded), TF.js
 * graph models refused with a message that says so, and an export over the upload limit refused
 * with its size and the limit.
 */
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import { loadKerasSource } from "../../scripts/keras-source";
import {
  DEFAULT_MAX_MODEL_BYTES,
  kerasToImageGraph,
  type LayersModelJson,
  modelSizeProblem,
} from "../../src/keras/convert";
import { buildImageGraphOnnx } from "../../src/onnx/image-graph";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

beforeAll(async () => {
  await tf.setBackend("cpu");
  ort.env.wasm.numThreads = 1;
});

/** A model's `model.json` and concatenated weights, as `tf.io` saves them. */
async function artifacts(model: tf.LayersModel): Promise<{ json: LayersModelJson; weights: Uint8Array }> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  if (!saved?.weightData || !saved.weightSpecs) throw new Error("nothing saved");
  const data = saved.weightData as ArrayBuffer;
  return {
    json: {
      format: "layers-model",
      modelTopology: saved.modelTopology,
      weightsManifest: [
        { paths: [], weights: saved.weightSpecs as LayersModelJson["weightsManifest"][0]["weights"] },
      ],
    },
    weights: new Uint8Array(data),
  };
}

/** Sets every BatchNormalization's statistics to non-trivial values (a fresh layer is the identity). */
function randomizeBatchNorm(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    layer.setWeights(
      layer.getWeights().map((w, i) =>
        // gamma, beta, moving_mean, moving_variance (kept positive)
        i === 3
          ? tf.randomUniform(w.shape, 0.5, 2, "float32", seed + i)
          : tf.randomNormal(w.shape, 0, 1, "float32", seed + i),
      ),
    );
  }
}

/** TF.js vs the converted graph run by ORT, on `n` random images. */
async function maxDiff(
  model: tf.LayersModel,
  json: LayersModelJson,
  weights: Uint8Array,
  n = 4,
): Promise<number> {
  const [, h, w, c] = model.inputs[0]?.shape as number[];
  const converted = kerasToImageGraph(json, weights, { labels: ["a", "b", "c"], layout: "NHWC" });
  const session = await ort.InferenceSession.create(
    buildImageGraphOnnx(converted.graph, "none", { id: "t", version: "1" }),
    { graphOptimizationLevel: "disabled" },
  );
  const x = tf.randomUniform([n, h as number, w as number, c as number], 0, 1, "float32", 7);
  const want = (model.predict(x) as tf.Tensor).dataSync();
  const got = (await session.run({ image: new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape) }))
    .scores?.data as Float32Array;
  await session.release();
  expect(got.length).toBe(want.length);
  return Math.max(...Array.from(got, (v, i) => Math.abs(v - (want[i] as number))));
}

describe("the Keras importer", () => {
  it("Dense → BatchNormalization converts, folded into the Dense (linear) or into the next Dense (after an activation)", async () => {
    for (const activation of ["linear", "relu"] as const) {
      const model = tf.sequential({
        layers: [
          tf.layers.flatten({ inputShape: [4, 4, 3] }),
          tf.layers.dense({ units: 8, activation }),
          tf.layers.batchNormalization(),
          tf.layers.dropout({ rate: 0.5 }),
          tf.layers.dense({ units: 3, activation: "softmax" }),
        ],
      });
      randomizeBatchNorm(model, 11);
      const { json, weights } = await artifacts(model);
      const { graph } = kerasToImageGraph(json, weights, { labels: ["a", "b", "c"] });
      // No BatchNormalization survives as its own op: it is folded into a Dense.
      expect(
        graph.ops.some((o) => o.op === "affine"),
        activation,
      ).toBe(false);
      expect(await maxDiff(model, json, weights), activation).toBeLessThan(1e-5);
    }
  });

  it("a BatchNormalization on a 2-D value with no Dense to fold into is a multiply-add", async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [2, 2, 3] }),
        tf.layers.dense({ units: 3, activation: "relu" }),
        tf.layers.batchNormalization(),
        tf.layers.softmax(),
      ],
    });
    randomizeBatchNorm(model, 5);
    const { json, weights } = await artifacts(model);
    const { graph } = kerasToImageGraph(json, weights, { labels: ["a", "b", "c"] });
    expect(graph.ops.map((o) => o.op)).toContain("affine");
    expect(await maxDiff(model, json, weights)).toBeLessThan(1e-5);
  });

  it("a TF.js graph model (nsfwjs's mobilenet_v2_mid) is refused with a message that says so", () => {
    const source = loadKerasSource(
      path.join(root, "node_modules/nsfwjs/dist/models/mobilenet_v2_mid/model.min.js"),
    );
    expect(() =>
      kerasToImageGraph(source.model, source.weightData, { labels: ["a", "b", "c", "d", "e"] }),
    ).toThrow(
      /this is a TF\.js graph model \(format "graph-model": a frozen TensorFlow graph of \d+ TensorFlow ops\), not a Keras layers model.*tfjs_layers_model/,
    );
  });

  it("an export over the upload limit says its size and the limit, and suggests int8 when it was float", async () => {
    // 1.2M float32 weights: 4.6 MiB as float, about a quarter as int8; a 4 MiB limit.
    const model = tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [20, 20, 3] }),
        tf.layers.dense({ units: 1000, activation: "relu" }),
        tf.layers.dense({ units: 3, activation: "softmax" }),
      ],
    });
    const { json, weights } = await artifacts(model);
    const { graph } = kerasToImageGraph(json, weights, { labels: ["a", "b", "c"] });
    const float = buildImageGraphOnnx(graph, "none", { id: "t", version: "1" }).byteLength;
    const int8 = buildImageGraphOnnx(graph, "int8", { id: "t", version: "1" }).byteLength;
    const limit = 4 * 1024 * 1024;
    expect(float).toBeGreaterThan(limit);
    expect(int8).toBeLessThan(limit);
    const floatProblem = modelSizeProblem(float, "none", limit, int8);
    expect(floatProblem).toContain(`${float.toLocaleString("en-US")} bytes) as float32`);
    expect(floatProblem).toContain("the upload limit (MAX_MODEL_BYTES) is 4.0 MiB (4,194,304 bytes)");
    expect(floatProblem).toContain(`Quantized to int8 (--quantize int8) it is`);
    expect(floatProblem).toContain("which fits");
    const int8Problem = modelSizeProblem(int8, "int8", 1024 * 1024);
    expect(int8Problem).toContain("as int8; the upload limit (MAX_MODEL_BYTES) is 1.0 MiB");
    expect(int8Problem).not.toContain("--quantize int8");
    expect(modelSizeProblem(int8, "int8")).toBeUndefined();
    expect(DEFAULT_MAX_MODEL_BYTES).toBe(16 * 1024 * 1024);
  });
});
