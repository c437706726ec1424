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
 * - `ratio`: explain_ms / score_ms, per round.
 *
 * BENCH_EXPLAIN_ROUNDS rounds (default 5) of BENCH_EXPLAIN_ITERATIONS texts (default 400) after a
 * warm-up; min / median / max over the rounds. Reading a linear graph's weights (once per loaded
 * session in the Worker) is reported apart as `weights_load_ms`.
 *
 * Alone: `npx tsx bench/explain-time.ts` (prints JSON); `npm run bench` includes it as `explain_time`.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-web";
import { root } from "../scripts/local-worker";
import { textManifestSchema } from "../src/contracts/manifest";
import { featurize, padRows, type SparseFeatures } from "../src/featurizer/text";
import { explainTexts, readExplainGraph } from "../src/inference/explain";
import { loadShippedModel } from "./model-time";

const ROUNDS = Number(process.env.BENCH_EXPLAIN_ROUNDS ?? 5);
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
    const scoreMs: number[] = [];
    const explainMs: number[] = [];
    const ratios: number[] = [];
    for (let round = -1; round < ROUNDS; round++) {
      // Per text: score it as the Worker does (featurize + one run), then explain it from those
      // features and scores (all that explain: true adds), each timed on its own.
      let scoring = 0;
      let explaining = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const text = EXPLAIN_TEXTS[i % EXPLAIN_TEXTS.length] as string;
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
    await session.release();
    out[loo ? `${id} (leave-one-out)` : id] = {
      method,
      score_ms: spread(scoreMs),
      explain_ms: spread(explainMs),
      ratio: spread(ratios),
      weights_load_ms: graph ? Math.round(weightsMs * 10) / 10 : null,
    };
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await measureExplainTime(), null, 2));
}
