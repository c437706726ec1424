/**
 * Offline evaluation of the online learner on the bank dataset, with the learner, features and
 * metrics code the Durable Object runs (`src/online/`):
 *
 *   npm run eval:online [-- --rows=30000] [--batch=100] [--lr=1] [--bias-lr=0.1] [--truncation=0.01]
 *
 * Streams the first `rows` rows of `../shared/datasets/bank` in file order, predict-then-learn per
 * batch of `batch` (the seed's protocol: every row of a batch is predicted before the batch is
 * learned; `--batch=1` is the API's order). Prints, at 10k, 20k and 30k rows, the prequential
 * accuracy so far and accuracy / precision / recall (weighted and macro) of the last 1,000
 * predictions, against the seed's bars, then a JSON document with everything.
 */

import { DEFAULT_LEARNER, type LearnerHyperparameters } from "../src/online/learner";
import { prequential } from "../src/online/prequential";
import { BANK_DATASET, bankDatasetPresent, bankRows } from "./bank-data";

/** The seed's MultinomialNB, run online the same way (issue 7). */
const SEED_BARS = { prequential_accuracy_30k: 0.8654, last_1000_accuracy_10k: 0.944 };

function args(): { rows: number; batch: number; hyperparameters: LearnerHyperparameters } {
  const opts: Record<string, string> = {};
  for (const a of process.argv.slice(2)) {
    const m = /^--([\w-]+)=(.+)$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a} (expected --name=value)`);
    opts[m[1] as string] = m[2] as string;
  }
  const num = (name: string, fallback: number): number => {
    const v = opts[name] === undefined ? fallback : Number(opts[name]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
    return v;
  };
  return {
    rows: Math.floor(num("rows", 30_000)),
    batch: Math.floor(num("batch", 100)),
    hyperparameters: {
      learningRate: num("lr", DEFAULT_LEARNER.learningRate),
      biasLearningRate: num("bias-lr", DEFAULT_LEARNER.biasLearningRate),
      truncation: num("truncation", DEFAULT_LEARNER.truncation),
    },
  };
}

if (!bankDatasetPresent()) {
  console.error(`${BANK_DATASET} is absent: the evaluation needs ../shared/datasets/bank`);
  process.exit(1);
}
const { rows, batch, hyperparameters } = args();
const samples = bankRows(0, rows).map((r) => ({
  CompanyId: r.CompanyId ?? "",
  BankEntryText: r.BankEntryText ?? "",
  BankEntryAmount: r.BankEntryAmount ?? "",
  AccountNumber: r.AccountNumber ?? "",
}));
const checkpoints = [10_000, 20_000, 30_000].filter((n) => n <= samples.length);
if (!checkpoints.includes(samples.length)) checkpoints.push(samples.length);
const started = performance.now();
const { points, learner } = prequential(samples, {
  batchSize: batch,
  checkpoints,
  window: 1000,
  hyperparameters,
});
const seconds = (performance.now() - started) / 1000;

const f = (x: number) => x.toFixed(4);
console.log(
  `online learner on ${samples.length} bank rows, batches of ${batch}, ${JSON.stringify(hyperparameters)}`,
);
for (const window of ["last", "all"] as const) {
  console.log(
    window === "last" ? "last 1,000 predictions at N rows:" : "all predictions up to N rows (prequential):",
  );
  console.log("rows    accuracy  P_weighted  R_weighted  P_macro  R_macro  labels  weights");
  for (const p of points) {
    const m = p[window];
    console.log(
      `${String(p.rows).padEnd(7)} ${f(m.accuracy)}    ${f(m.precision_weighted)}      ${f(m.recall_weighted)}      ${f(m.precision_macro)}   ${f(m.recall_macro)}   ${String(p.labels).padEnd(6)}  ${p.weights}`,
    );
  }
}
const at = (n: number) => points.find((p) => p.rows === n);
const preq30k = at(30_000)?.all.accuracy;
const last10k = at(10_000)?.last.accuracy;
if (preq30k !== undefined) {
  console.log(
    `prequential accuracy over 30,000 rows: ${f(preq30k)} (seed ${SEED_BARS.prequential_accuracy_30k}) ${preq30k > SEED_BARS.prequential_accuracy_30k ? "BEATS" : "misses"} the seed`,
  );
}
if (last10k !== undefined) {
  console.log(
    `accuracy of the last 1,000 at 10,000 rows: ${f(last10k)} (seed ${SEED_BARS.last_1000_accuracy_10k}) ${last10k > SEED_BARS.last_1000_accuracy_10k ? "BEATS" : "misses"} the seed`,
  );
}
console.log(
  `learner alone: ${Math.round(samples.length / seconds)} samples/s (featurize + predict + learn, one core)`,
);
console.log(
  JSON.stringify({
    rows: samples.length,
    batch,
    hyperparameters,
    seed_bars: SEED_BARS,
    points,
    learner_samples_per_s: Math.round(samples.length / seconds),
    labels: learner.labels.length,
  }),
);
