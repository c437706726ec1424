/**
 * Writes the reference profile (src/drift/profile.ts, docs/drift.md) of shipped models:
 * `models/<id>/profile.json`, computed over the TRAIN split of the model's dataset in
 * `../shared/datasets` (split rule: data row i is TEST when i % 5 == 4; profiles never read test
 * rows) with the shipped int8 graph's own scores (onnxruntime-web, as in the Worker).
 *
 *   npx tsx scripts/profile-models.ts [<id> ...]     (default: every model that has a train split)
 *
 * Text models use the trainer's loader (`TRAINING_CATALOGUE[…].load().train`, the `-mlp` variants
 * their base model's); `digits` the MNIST train split (28×28 images as sent). `moderation-image`
 * is skipped: it is imported (nsfwjs), its training data is not available here, so it has no
 * reference profile (its drift shows `reference: null`). `npm run train` calls `profileModel` after
 * writing a model, so a retrained model's profile is regenerated with it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as ort from "onnxruntime-web";
import { manifestSchema } from "../src/contracts/manifest";
import { buildProfile, MAX_PROFILE_BYTES, meanLuma, type ReferenceProfile } from "../src/drift/profile";
import { featurize, padRows, type SparseFeatures } from "../src/featurizer/text";
import { toModelInput } from "../src/image/preprocess";
import { loadMnist, mnistSplit } from "./train-digits";
import { ROOT, TRAINING_CATALOGUE } from "./training/catalogue";

const CHUNK = 256;

/** The dataset files a catalogue entry's `source` lines name (`toxicity/….csv.gz`). */
const files = (source: readonly string[]): string =>
  [...new Set(source.flatMap((line) => [...line.matchAll(/`([\w/.-]+\.csv\.gz)`/g)].map((m) => m[1])))].join(
    " + ",
  );

/** Reads `models/<id>/{manifest.json,model.onnx}` and opens an onnxruntime-web session. */
async function open(id: string) {
  const dir = path.join(ROOT, "models", id);
  const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")));
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(
    new Uint8Array(readFileSync(path.join(dir, "model.onnx"))),
  );
  return { dir, manifest, session };
}

/** The reference profile of shipped model `id` over its train split; undefined when it has none. */
export async function profileModel(id: string): Promise<ReferenceProfile | undefined> {
  const base = id.replace(/-mlp$/, "");
  if (id === "digits") return profileDigits();
  const cfg = TRAINING_CATALOGUE[base];
  if (!cfg) return undefined;
  const { manifest, session } = await open(id);
  if (manifest.kind === "raw-text" || manifest.kind === "image" || manifest.kind === "tensor")
    throw new Error(`${id}: expected a hashed n-gram text model`);
  const train = cfg.load().train.map((r) => r.text);
  const rows: SparseFeatures[] = [];
  const scores: Float32Array[] = [];
  for (let start = 0; start < train.length; start += CHUNK) {
    const chunk = train.slice(start, start + CHUNK).map((t) => featurize(t, manifest.featurizer));
    const batch = padRows(chunk);
    const out = await session.run({
      [manifest.inputs.ids]: new ort.Tensor("int64", batch.ids, batch.dims),
      [manifest.inputs.values]: new ort.Tensor("float32", batch.values, batch.dims),
    });
    const data = (out[manifest.output] as ort.Tensor).data as Float32Array;
    const k = manifest.labels.length;
    chunk.forEach((row, i) => {
      rows.push(row);
      scores.push(data.slice(i * k, (i + 1) * k));
    });
  }
  return buildProfile({
    model: { id, version: manifest.version },
    source: `train split of ${files(cfg.source)} (${train.length} rows; row % 5 == 4 excluded)`,
    labels: manifest.labels,
    scores,
    texts: train.map((text, i) => ({ text, ids: (rows[i] as SparseFeatures).ids })),
    buckets: manifest.featurizer.buckets,
  });
}

async function profileDigits(): Promise<ReferenceProfile | undefined> {
  const data = loadMnist();
  if (!data) return undefined;
  const { manifest, session } = await open("digits");
  if (manifest.kind !== "image") throw new Error("digits: expected an image model");
  const { train } = mnistSplit(data);
  const images = train.map((i) => ({
    format: "png" as const,
    width: 28,
    height: 28,
    channels: 1 as const,
    data: data.images.subarray(i * 784, (i + 1) * 784),
  }));
  const scores: Float32Array[] = [];
  for (const image of images) {
    const input = new ort.Tensor("float32", toModelInput(image, manifest.preprocess), [1, 1, 28, 28]);
    const out = await session.run({ [manifest.inputs.image]: input });
    scores.push(((out[manifest.output] as ort.Tensor).data as Float32Array).slice());
  }
  return buildProfile({
    model: { id: "digits", version: manifest.version },
    source: `train split of mnist/mnist-9000-images-idx3-ubyte.gz (${train.length} images; index % 5 == 4 excluded)`,
    labels: manifest.labels,
    scores,
    images: images.map((image) => ({ width: 28, height: 28, luma: meanLuma(image) })),
  });
}

/** Profiles `id` and writes `models/<id>/profile.json`; returns its size in bytes (0 when skipped). */
export async function writeProfile(id: string): Promise<number> {
  const profile = await profileModel(id);
  if (!profile) return 0;
  const text = `${JSON.stringify(profile)}\n`;
  if (text.length > MAX_PROFILE_BYTES) throw new Error(`${id}: profile of ${text.length} bytes is too large`);
  writeFileSync(path.join(ROOT, "models", id, "profile.json"), text);
  return text.length;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (!existsSync(path.join(ROOT, "../shared/datasets"))) {
    console.error("../shared/datasets is absent: nothing to profile");
    process.exit(1);
  }
  const ids = process.argv.slice(2);
  const all = [
    ...Object.keys(TRAINING_CATALOGUE),
    ...Object.keys(TRAINING_CATALOGUE).map((id) => `${id}-mlp`),
    "digits",
  ];
  for (const id of ids.length > 0 ? ids : all) {
    const started = Date.now();
    const bytes = await writeProfile(id);
    console.log(
      bytes === 0
        ? `${id}: skipped (no train split)`
        : `${id}: models/${id}/profile.json, ${bytes} bytes (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  }
}
