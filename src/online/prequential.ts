/**
 * Prequential ("test-then-train") evaluation of the online learner on a stream of labelled
 * samples, in order: each sample is predicted by the model as it stands, then learned. The
 * learner, features and metric maths are the ones the Durable Object uses; `npm run eval:online`
 * runs this on the bank dataset.
 */

import { BANK_FEATURIZER } from "../contracts/manifest";
import type { SparseFeatures } from "../featurizer/text";
import { type ClassificationSummary, classificationSummary } from "../training/metrics";
import { type BankInput, bankFeatures } from "./features";
import { DEFAULT_LEARNER, type LearnerHyperparameters, OnlineSoftmax } from "./learner";

/** Options of `prequential`. */
export interface PrequentialOptions {
  /**
   * Samples per batch: every sample of a batch is predicted before any of it is learned (the
   * seed's protocol uses 100). 1 is the API's order (each sample predicted, then learned).
   */
  batchSize: number;
  /** Row counts after which to report (e.g. 10,000, 20,000, 30,000). */
  checkpoints: readonly number[];
  /** Trailing window of the windowed metrics (the API's metrics use 1,000). */
  window: number;
  hyperparameters?: LearnerHyperparameters;
}

/** Metrics after `rows` samples. */
export interface PrequentialPoint {
  rows: number;
  /** Metrics of the last `window` predictions. */
  last: ClassificationSummary;
  /**
   * Metrics of every prediction so far: `all.accuracy` is the prequential accuracy (a sample
   * predicted before any label was known counts as wrong).
   */
  all: ClassificationSummary;
  labels: number;
  /** Non-zero weights of the sparse model. */
  weights: number;
}

/** A labelled sample as the evaluation needs it. */
export type LabelledInput = BankInput & { AccountNumber: string };

/** Runs the learner prequentially over `samples` (see `PrequentialOptions`). */
export function prequential(
  samples: readonly LabelledInput[],
  options: PrequentialOptions,
): { points: PrequentialPoint[]; learner: OnlineSoftmax } {
  const learner = new OnlineSoftmax(BANK_FEATURIZER, options.hyperparameters ?? DEFAULT_LEARNER);
  // Window metrics need one id per label string, including labels the learner has not seen yet.
  const ids = new Map<string, number>();
  const id = (label: string): number => {
    let v = ids.get(label);
    if (v === undefined) {
      v = ids.size;
      ids.set(label, v);
    }
    return v;
  };
  const predicted = new Int32Array(samples.length);
  const truth = new Int32Array(samples.length);
  const checkpoints = [...options.checkpoints].sort((a, b) => a - b);
  const points: PrequentialPoint[] = [];
  let done = 0;
  const report = () => {
    while (checkpoints.length > 0 && (checkpoints[0] as number) <= done) {
      const rows = checkpoints.shift() as number;
      const from = Math.max(0, rows - options.window);
      points.push({
        rows,
        last: classificationSummary(predicted.subarray(from, rows), truth.subarray(from, rows)),
        all: classificationSummary(predicted.subarray(0, rows), truth.subarray(0, rows)),
        labels: learner.labels.length,
        weights: learner.weightCount,
      });
    }
  };
  const record = (i: number, p: number, label: string) => {
    predicted[i] = p < 0 ? -1 : id(learner.labels[p] as string);
    truth[i] = id(label);
  };
  for (let start = 0; start < samples.length; start += options.batchSize) {
    const batch = samples.slice(start, start + options.batchSize);
    const features = batch.map(bankFeatures);
    const x = (j: number) => features[j] as SparseFeatures;
    if (options.batchSize === 1) {
      const label = (batch[0] as LabelledInput).AccountNumber;
      record(start, learner.step(x(0), label), label);
    } else {
      batch.forEach((s, j) => {
        record(start + j, learner.predict(x(j)), s.AccountNumber);
      });
      batch.forEach((s, j) => {
        learner.learn(x(j), s.AccountNumber);
      });
    }
    done = start + batch.length;
    report();
  }
  return { points, learner };
}
