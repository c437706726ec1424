/**
 * What an explanation costs next to the scoring it explains (issue #31: "adds at most 2× the model
 * time"). In Node with onnxruntime-web (the Worker's WASM build, one thread) on the shipped models,
 * per text, side by side in one loop:
 *
 * - `score_ms`: what the Worker does to score a text without `explain`: featurize + one run;
 * - `explain_ms`: what `explain: true` adds on top of that, timed on its own right after the
 *   scoring of the same text (the core's `explainTexts` from those features and scores: for linear
 *   graphs the n-gram enumeration with spans and the per-bucket terms, for the `-mlp` graphs the
 *   same after the network's linearization at the text's ReLU pattern);
 * - `ratio`: explain_ms / score_ms, per round (each round times both on the same texts, one after
 *   the other per text, so a slow stretch of a shared machine hits both).
 *
 * Two text sets: `short` (five texts of 5–104 characters, always) and, when `../shared/datasets`
 * is present, `dataset` (the first 200 test-split texts, `row % 5 == 4`, of the model's own
 * dataset: Jigsaw comments for toxicity, tweets for sentiment, SMS for spam; comments average
 * ≈ 380 characters, so the explanation's per-n-gram work weighs more there).
 *
 * BENCH_EXPLAIN_ROUNDS rounds (default 15) of BENCH_EXPLAIN_ITERATIONS texts (default 400) after a
 * warm-up round; min / median / max over the rounds. Reading a graph's weights (once per loaded
 * session in the Worker) is reported apart as `weights_load_ms`. The leave-one-out rows (the
 * method a graph of no known family gets, shown for the networks to compare) use the short set
 * only: each of their texts is scored once more per distinct word.
 *
 * Alone: `npx tsx bench/explain-time.ts` (prints JSON); `npm run bench` includes it as `explain_time`.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-web";
import { root } from "../scripts/local-worker";
import { readCsvGz } from "../scripts/training/catalogue";
import { textManifestSchema } from "../src/contracts/manifest";
import { featurize, padRows, type SparseFeatures } from "../src/featurizer/text";
import { explainTexts, readExplainGraph } from "../src/inference/explain";
import { isTestRow } from "../src/training/folds";
import { loadShippedModel } from "./model-time";

const ROUNDS = Number(process.env.BENCH_EXPLAIN_ROUNDS ?? 15);
const ITERATIONS = Number(process.env.BENCH_EXPLAIN_ITERATIONS ?? 400);
const MODELS = ["toxicity", "sentiment", "spam", "toxicity-mlp", "sentiment-mlp", "spam-mlp"];

/** Texts of the bench's usual lengths (a greeting to a long comment). */
export const EXPLAIN_TEXTS = [
  "hello",
  "You are a wonderful person and I enjoyed reading your edit.",
  "This is the worst article I have ever seen, what an idiot wrote it",
  "Please stop changing the page without discussing it on the talk page first.",
  "WINNER!! You have been selected to receive a £1000 cash prize. Call 09061701461 now to claim, T&C apply.",
];

/** Per model family: its dataset file and text column in `../shared/datasets`. */
const DATASETS: Record<string, [string, string]> = {
  toxicity: ["toxicity/jigsaw_multilabel.csv.gz", "comment_text"],
  sentiment: ["sentiment/tweets_sentiment.csv.gz", "SentimentText"],
  spam: ["spam/sms_spam.csv.gz", "SMS"],
};
const DATASET_TEXTS = 200;

/** The first `DATASET_TEXTS` test-split texts of model `id`'s dataset, or `undefined` without it. */
function datasetTexts(id: string): string[] | undefined {
  const [file, column] = DATASETS[id.replace(/-mlp$/, "")] ?? [];
  if (!file || !column || !existsSync(path.resolve(root, "../shared/datasets", file))) return undefined;
  return readCsvGz(file)
    .filter((_, i) => isTestRow(i))
    .slice(0, DATASET_TEXTS)
    .map((r) => r[column] ?? "");
}

interface Spread {
  min: number;
  median: number;
  max: number;
}

function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10_000) / 10_000;
  return {
    min: r(s[0] as number),
    median: r(s[Math.floor(s.length / 2)] as number),
    max: r(s[s.length - 1] as number),
  };
}

/** Per model: score and explain time per text (ms), their ratio, and the method. */
export async function measureExplainTime(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  // The -mlp models once more by leave-one-out (what a graph of no known family gets), to compare.
  const cases = [
    ...MODELS.map((id) => ({ id, loo: false })),
    ...MODELS.filter((id) => id.endsWith("-mlp")).map((id) => ({ id, loo: true })),
  ];
  for (const { id, loo } of cases) {
    const { manifest, session } = await loadShippedModel(root, id, textManifestSchema);
    const t0 = performance.now();
    const bytes = await readFile(path.join(root, "models", id, "model.onnx"));
    const graph = loo ? null : readExplainGraph(bytes, manifest);
    const weightsMs = performance.now() - t0;
    const run = async (rows: readonly SparseFeatures[]): Promise<Float32Array[]> => {
      const batch = padRows(rows);
      const res = await session.run({
        ids: new ort.Tensor("int64", batch.ids, batch.dims),
        values: new ort.Tensor("float32", batch.values, batch.dims),
      });
      const data = res.scores?.data as Float32Array;
      const k = manifest.labels.length;
      return rows.map((_, i) => data.slice(i * k, (i + 1) * k));
    };
    const budget = { MAX_REQUEST_TEXT_BYTES: 1 << 30, MAX_REQUEST_IMAGES: 0, MAX_REQUEST_PIXELS: 0 };
    let method = "";
    /** Rounds of scoring then explaining each text of `texts` (cycled), each timed on its own. */
    const measure = async (texts: readonly string[]) => {
      const scoreMs: number[] = [];
      const explainMs: number[] = [];
      const ratios: number[] = [];
      for (let round = -1; round < ROUNDS; round++) {
        // Per text: score it as the Worker does (featurize + one run), then explain it from those
        // features and scores (all that explain: true adds), each timed on its own.
        let scoring = 0;
        let explaining = 0;
        for (let i = 0; i < ITERATIONS; i++) {
          const text = texts[i % texts.length] as string;
          const a = performance.now();
          const features = [featurize(text, manifest.featurizer)];
          const scores = await run(features);
          const b = performance.now();
          const [e] = await explainTexts(budget, manifest, graph, [text], features, scores, {}, run);
          const c = performance.now();
          method = e?.method ?? "";
          scoring += b - a;
          explaining += c - b;
        }
        if (round < 0) continue; // warm-up
        scoreMs.push(scoring / ITERATIONS);
        explainMs.push(explaining / ITERATIONS);
        ratios.push(explaining / scoring);
      }
      return { score_ms: spread(scoreMs), explain_ms: spread(explainMs), ratio: spread(ratios) };
    };
    const short = await measure(EXPLAIN_TEXTS);
    const real = loo ? undefined : datasetTexts(id);
    const dataset = real ? await measure(real) : undefined;
    await session.release();
    out[loo ? `${id} (leave-one-out)` : id] = {
      method,
      ...short,
      ...(dataset ? { dataset } : {}),
      weights_load_ms: graph ? Math.round(weightsMs * 10) / 10 : null,
    };
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await measureExplainTime(), null, 2));
}
