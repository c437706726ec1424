/**
 * Imports a Keras image classifier in TF.js layers format as one of our ONNX image models:
 *
 *   npm run import:keras -- <model.json | model.min.js> --out models/<id>/ --labels a,b,c [options]
 *
 * Reads the model (`model.json` + shards, or the JS-module form nsfwjs ships; `scripts/keras-source.ts`),
 * converts it (`src/keras/convert.ts`), writes `model.onnx` and `manifest.json` with our exporter
 * (`src/onnx/image-graph.ts`), and — unless `--no-reference` — checks the export against TF.js itself
 * (`@tensorflow/tfjs`, CPU backend, in Node) on reproducible synthetic images
 * (`src/image/synthetic.ts`): the float graph's outputs must equal TF.js's within `--tolerance`, and
 * an int8 export is compared by top-1 agreement over `--agreement` images. Writes `reference.json`
 * (TF.js's scores for the first `--reference` images, which the tests reproduce through the Worker)
 * and prints the figures (also stored in the manifest's `metrics`).
 *
 * Options: --id (default: the --out folder's name), --version (1), --labels (required),
 * --quantize none|int8 (none), --fit stretch|contain|cover (stretch), --filter (the resize method;
 * default TF.js's `bilinear_align_corners`, see src/keras/preprocess.ts), --mean / --std (per channel,
 * comma-separated; default 0 / 1 = pixels scaled to [0, 1]), --layout NHWC|NCHW (NHWC),
 * --description, --reference N (20), --agreement N (100), --seed (20261130), --tolerance (1e-3),
 * --max-bytes (16777216, the Worker's MAX_MODEL_BYTES: a larger export is refused with its size).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-web";
import {
  type ImagePreprocessSpec,
  imageInputDims,
  imageManifestSchema,
  RESIZE_FILTERS,
} from "../src/contracts/manifest";
import { sha256Hex } from "../src/hash";
import { toModelInput } from "../src/image/preprocess";
import { SYNTHETIC_IMAGE_VERSION, syntheticImage } from "../src/image/synthetic";
import { DEFAULT_MAX_MODEL_BYTES, kerasToImageGraph, modelSizeProblem } from "../src/keras/convert";
import { importedPreprocess } from "../src/keras/preprocess";
import { buildImageGraphOnnx, exportImageGraph } from "../src/onnx/image-graph";
import { type KerasSource, loadKerasSource } from "./keras-source";

/** What `reference.json` holds for an imported model (read by the tests). */
export interface KerasReference {
  source: string;
  generator: { name: "synthetic"; version: number; seed: number; width: number; height: number };
  /** Largest |ONNX − expected| allowed through the Worker. */
  tolerance: number;
  /** The shipped graph's quantization; for int8, `shipped_scores` is what the Worker must give. */
  quantization: "none" | "int8";
  labels: string[];
  /** TF.js's top-1 class index on each of the first `images` synthetic images (int8 agreement check). */
  agreement: { images: number; tfjs_top1: number[] };
  /** `scores`: TF.js's own outputs; `shipped_scores` (int8 only): the shipped ONNX graph's, from ORT in Node. */
  probes: { index: number; pixels_sha256: string; scores: number[]; shipped_scores?: number[] }[];
}

function list(v: string | undefined, what: string): number[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(",").map(Number);
  if (out.some((n) => !Number.isFinite(n))) throw new Error(`${what}: comma-separated numbers expected`);
  return out;
}

function argmax(a: ArrayLike<number>): number {
  let k = 0;
  for (let j = 1; j < a.length; j++) if ((a[j] as number) > (a[k] as number)) k = j;
  return k;
}

/** TF.js's own model from the same files (CPU backend). */
async function tfjsModel(source: KerasSource): Promise<tf.LayersModel> {
  await tf.setBackend("cpu");
  const weightData = source.weightData.buffer.slice(
    source.weightData.byteOffset,
    source.weightData.byteOffset + source.weightData.byteLength,
  ) as ArrayBuffer;
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: source.model.modelTopology as tf.io.ModelArtifacts["modelTopology"],
      weightSpecs: source.model.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
      weightData,
    }),
  );
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: "string" },
      id: { type: "string" },
      version: { type: "string", default: "1" },
      labels: { type: "string" },
      quantize: { type: "string", default: "none" },
      fit: { type: "string", default: "stretch" },
      filter: { type: "string" },
      mean: { type: "string" },
      std: { type: "string" },
      layout: { type: "string", default: "NHWC" },
      description: { type: "string" },
      reference: { type: "string", default: "20" },
      agreement: { type: "string", default: "100" },
      seed: { type: "string", default: "20261130" },
      tolerance: { type: "string", default: "1e-3" },
      "no-reference": { type: "boolean", default: false },
      "max-bytes": { type: "string", default: String(DEFAULT_MAX_MODEL_BYTES) },
    },
  });
  const file = positionals[0];
  if (!file || !values.out || !values.labels) {
    throw new Error(
      "usage: npm run import:keras -- <model.json|model.min.js> --out models/<id>/ --labels a,b,c",
    );
  }
  const quantization = values.quantize === "int8" ? "int8" : values.quantize === "none" ? "none" : undefined;
  if (!quantization) throw new Error("--quantize must be none or int8");
  const layout = values.layout === "NCHW" ? "NCHW" : "NHWC";
  const outDir = path.resolve(values.out);
  const id = values.id ?? path.basename(outDir);
  const labels = values.labels.split(",").map((l) => l.trim());

  const source = loadKerasSource(file);
  const started = Date.now();
  const converted = kerasToImageGraph(source.model, source.weightData, { labels, layout });
  const { graph } = converted;
  const channels = graph.channels === 1 ? 1 : graph.channels === 3 ? 3 : undefined;
  if (!channels) throw new Error(`the model takes ${graph.channels} channels; images give 1 or 3`);
  const filter = values.filter as ImagePreprocessSpec["resize"]["filter"] | undefined;
  if (filter !== undefined && !(RESIZE_FILTERS as readonly string[]).includes(filter)) {
    throw new Error(`--filter must be one of ${RESIZE_FILTERS.join(", ")}`);
  }
  const preprocess = importedPreprocess(
    { height: graph.height, width: graph.width, channels },
    {
      layout,
      fit: values.fit as "stretch" | "contain" | "cover",
      filter,
      mean: list(values.mean, "--mean"),
      std: list(values.std, "--std"),
    },
  );
  const metrics: Record<string, number> = { parameters: converted.parameters };
  const meta = {
    id,
    version: values.version,
    ...(values.description ? { description: values.description } : {}),
  };
  const floatBytes = buildImageGraphOnnx(graph, "none", meta);
  // Refuse before the reference run: a model the Worker would not accept is not worth checking.
  const int8Bytes = buildImageGraphOnnx(graph, "int8", meta).byteLength;
  const tooLarge = modelSizeProblem(
    quantization === "int8" ? int8Bytes : floatBytes.byteLength,
    quantization,
    Number(values["max-bytes"]),
    int8Bytes,
  );
  if (tooLarge) throw new Error(tooLarge);
  console.log(
    `converted ${file}: ${Object.entries(converted.layerCounts)
      .map(([k, n]) => `${n} ${k}`)
      .join(
        ", ",
      )} → ${graph.ops.length} ops, ${converted.parameters} parameters (${Date.now() - started} ms)`,
  );

  let reference: KerasReference | undefined;
  if (!values["no-reference"]) {
    const seed = Number(values.seed);
    const tolerance = Number(values.tolerance);
    const nRef = Number(values.reference);
    const nAgree = quantization === "int8" ? Math.max(nRef, Number(values.agreement)) : nRef;
    const model = await tfjsModel(source);
    ort.env.wasm.numThreads = 1;
    const floatSession = await ort.InferenceSession.create(floatBytes, { graphOptimizationLevel: "all" });
    const int8Session =
      quantization === "int8"
        ? await ort.InferenceSession.create(buildImageGraphOnnx(graph, "int8", meta), {
            graphOptimizationLevel: "all",
          })
        : undefined;
    const dims = imageInputDims(preprocess, 1);
    let maxDiff = 0;
    let maxDiffInt8 = 0;
    let agree = 0;
    const tfTop: number[] = new Array(labels.length).fill(0);
    const tfTop1: number[] = [];
    const probes: KerasReference["probes"] = [];
    for (let i = 0; i < nAgree; i++) {
      const image = syntheticImage(seed, i, graph.width, graph.height);
      // The Worker's own preprocessing (at the model's size it is exactly v / 255 for [0, 1]).
      const input = toModelInput(image, preprocess);
      const nhwc = layout === "NHWC" ? input : toModelInput(image, { ...preprocess, layout: "NHWC" });
      const want = Array.from(
        tf.tidy(() =>
          (
            model.predict(tf.tensor4d(nhwc, [1, graph.height, graph.width, channels])) as tf.Tensor
          ).dataSync(),
        ),
      );
      const feeds = { image: new ort.Tensor("float32", input, dims) };
      const got = (await floatSession.run(feeds)).scores?.data as Float32Array;
      for (let k = 0; k < labels.length; k++)
        maxDiff = Math.max(maxDiff, Math.abs((got[k] as number) - (want[k] as number)));
      tfTop[argmax(want)] = (tfTop[argmax(want)] as number) + 1;
      tfTop1.push(argmax(want));
      let shipped: number[] | undefined;
      if (int8Session) {
        const q = (await int8Session.run(feeds)).scores?.data as Float32Array;
        shipped = Array.from(q);
        for (let k = 0; k < labels.length; k++)
          maxDiffInt8 = Math.max(maxDiffInt8, Math.abs((q[k] as number) - (want[k] as number)));
        if (argmax(q) === argmax(want)) agree++;
      }
      if (i < nRef) {
        probes.push({
          index: i,
          pixels_sha256: await sha256Hex(image.data),
          scores: want,
          ...(shipped ? { shipped_scores: shipped } : {}),
        });
      }
      if ((i + 1) % 10 === 0) console.log(`  ${i + 1}/${nAgree} images`);
    }
    console.log(`float ONNX vs TF.js on ${nAgree} images: max |diff| ${maxDiff.toExponential(3)}`);
    console.log(`TF.js top-1 classes: ${labels.map((l, k) => `${l} ${tfTop[k]}`).join(", ")}`);
    if (maxDiff > tolerance) throw new Error(`float parity ${maxDiff} exceeds the tolerance ${tolerance}`);
    metrics.parity_images = nAgree;
    metrics.parity_max_abs_diff_float = maxDiff;
    if (int8Session) {
      console.log(
        `int8 ONNX: top-1 agreement with TF.js ${agree}/${nAgree}, max |diff| ${maxDiffInt8.toFixed(4)}`,
      );
      metrics.int8_top1_agreement = agree / nAgree;
      metrics.int8_max_abs_diff = maxDiffInt8;
    }
    reference = {
      source: path.relative(process.cwd(), path.resolve(file)),
      generator: {
        name: "synthetic",
        version: SYNTHETIC_IMAGE_VERSION,
        seed,
        width: graph.width,
        height: graph.height,
      },
      tolerance,
      quantization,
      agreement: { images: nAgree, tfjs_top1: tfTop1 },
      labels,
      probes,
    };
  }

  const { onnx, manifest } = await exportImageGraph(graph, {
    ...meta,
    preprocess,
    quantization,
    metrics,
  });
  imageManifestSchema.parse(manifest);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "model.onnx"), onnx);
  writeFileSync(path.join(outDir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  if (reference)
    writeFileSync(path.join(outDir, "reference.json"), `${JSON.stringify(reference, null, 2)}\n`);
  console.log(
    `wrote ${path.relative(process.cwd(), outDir)}/: model.onnx (${onnx.byteLength} bytes, ${quantization})`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
