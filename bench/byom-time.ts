/**
 * Bring-your-own-model figures (docs/byom.md): a scikit-learn-shaped `raw-text` model — TF-IDF word
 * unigrams + bigrams (min_df 2) + logistic regression, trained with our trainer on the train split
 * of `../shared/datasets/toxicity/jigsaw_toxic_binary.csv.gz` and exported in skl2onnx's graph shape —
 * timed in Node with onnxruntime-web (the Worker's WASM build, one thread), against the TypeScript
 * reference of the same pipeline. Reports the model's size, the time per text (batch of 1, batch of
 * 32, min/median/max over rounds), the test-split accuracy and the largest score difference between
 * ORT and the reference. Alone: `npx tsx bench/byom-time.ts` (prints JSON; skips without the dataset).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-web";
import { readCsvGz } from "../scripts/training/catalogue";
import { isTestRow } from "../src/training/folds";
import { scoreTfidfPipeline, TFIDF_TOKEN_PATTERN, trainTfidfPipeline } from "../src/training/tfidf";
import { buildTfidfPipelineOnnx, SKLEARN_NAMES } from "../test/support/sklearn-onnx";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DATASET = "toxicity/jigsaw_toxic_binary.csv.gz";

function stats(xs: number[]): { min: number; median: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10_000) / 10_000;
  return { min: r(s[0] ?? 0), median: r(s[Math.floor(s.length / 2)] ?? 0), max: r(s[s.length - 1] ?? 0) };
}

/** Trains, exports and times the raw-text pipeline; undefined when the dataset is absent. */
export async function measureRawTextTime(rounds = 15): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(path.resolve(ROOT, "../shared/datasets", DATASET))) return undefined;
  const rows = readCsvGz(DATASET).map((r) => ({ text: r.comment_text ?? "", target: Number(r.toxic) }));
  const train = rows.filter((_, i) => !isTestRow(i));
  const test = rows.filter((_, i) => isTestRow(i));
  const t0 = performance.now();
  const pipeline = trainTfidfPipeline({
    rows: train,
    task: "binary",
    labels: ["ok", "toxic"],
    minDf: 2,
    c: 10,
  });
  const trainingMs = performance.now() - t0;
  const bytes = buildTfidfPipelineOnnx(pipeline, {
    id: "bench",
    version: "1",
    tokenPattern: TFIDF_TOKEN_PATTERN,
  });
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: "all" });
  const run = async (texts: string[]) => {
    const out = await session.run({
      [SKLEARN_NAMES.input]: new ort.Tensor("string", texts, [texts.length, 1]),
    });
    return out[SKLEARN_NAMES.probabilities]?.data as Float32Array;
  };

  // Accuracy on the test split and agreement with the reference, in batches of 32.
  let correct = 0;
  let maxDiff = 0;
  for (let i = 0; i < test.length; i += 32) {
    const chunk = test.slice(i, i + 32);
    const scores = await run(chunk.map((r) => r.text));
    chunk.forEach((r, j) => {
      const p = scores[j * 2 + 1] as number;
      if ((p >= 0.5 ? 1 : 0) === r.target) correct++;
      const ref = scoreTfidfPipeline(pipeline, r.text)[1] as number;
      maxDiff = Math.max(maxDiff, Math.abs(p - ref));
    });
  }

  const texts = test.map((r) => r.text);
  const single: number[] = [];
  const batch32: number[] = [];
  const reference: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let t = performance.now();
    for (let i = 0; i < 200; i++) await run([texts[i % texts.length] as string]);
    single.push((performance.now() - t) / 200);
    t = performance.now();
    for (let i = 0; i < 20; i++) {
      await run(Array.from({ length: 32 }, (_, j) => texts[(i * 32 + j) % texts.length] as string));
    }
    batch32.push((performance.now() - t) / (20 * 32));
    t = performance.now();
    for (let i = 0; i < 200; i++) scoreTfidfPipeline(pipeline, texts[i % texts.length] as string);
    reference.push((performance.now() - t) / 200);
  }
  await session.release();
  return {
    dataset: DATASET,
    train_rows: train.length,
    test_rows: test.length,
    vocabulary: pipeline.vocabulary.length,
    model_bytes: bytes.byteLength,
    training_ms: Math.round(trainingMs),
    test_accuracy: Math.round((correct / test.length) * 10_000) / 10_000,
    max_abs_diff_vs_reference: maxDiff,
    ort_ms_per_text_single: stats(single),
    ort_ms_per_text_batch32: stats(batch32),
    reference_ms_per_text: stats(reference),
    rounds,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await measureRawTextTime();
  console.log(JSON.stringify(result ?? { skipped: `../shared/datasets/${DATASET} is absent` }, null, 2));
}
