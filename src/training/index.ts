/**
 * The trainer's public API: train a linear text model on labelled texts, quantize it to int8,
 * evaluate it, and export ONNX + manifest. Runtime-agnostic (Node scripts and Worker queue jobs).
 */

import type { TextFeaturizerSpec } from "../featurizer/text";
import {
  type FloatLinearModel,
  type Int8LinearModel,
  type LinearTextModel,
  quantizeInt8,
  scoreFeatures,
  type Task,
} from "./linear-model";
import { accuracy, finiteMean, precisionRecallF1Macro, rocAuc } from "./metrics";
import { featurizeTexts, type SparseMatrix, sparseRow } from "./sparse";
import {
  DEFAULT_HYPERPARAMETERS,
  encodeTargets,
  type OptimizationReport,
  type TrainHyperparameters,
  type TrainingRow,
  trainLinear,
} from "./trainer";

export { type LbfgsOptions, type LbfgsResult, minimizeLbfgs, type Objective } from "./lbfgs";
export * from "./linear-model";
export * from "./metrics";
export { createRng, type Rng, shuffleInPlace } from "./prng";
export * from "./sparse";
export * from "./trainer";

/** Options of `trainTextModel`. */
export interface TrainTextModelOptions {
  /** Training rows (see `TrainingRow` for `target` per task). */
  rows: readonly TrainingRow[];
  task: Task;
  /** Label names, in output order. Binary: the last label is the positive one. */
  labels: readonly string[];
  spec: TextFeaturizerSpec;
  /** Overrides of `DEFAULT_HYPERPARAMETERS`. */
  hyperparameters?: Partial<TrainHyperparameters>;
  /** Seed of the PRNG (Adagrad shuffling). Default 0. */
  seed?: number;
  /** Rows to evaluate both models on (e.g. a test split). Multilabel targets may contain −1 (skipped). */
  evalRows?: readonly TrainingRow[];
  /** Progress callback: optimiser iteration and objective value. */
  onProgress?: (step: number, objective: number) => void;
}

/** Result of `trainTextModel`. */
export interface TrainTextModelResult {
  /** The float32 model (what was optimised). */
  model: FloatLinearModel;
  /** Its int8 quantization: the model to ship. */
  quantized: Int8LinearModel;
  hyperparameters: TrainHyperparameters;
  report: OptimizationReport;
  /** Metrics of the float and int8 models on `evalRows` (empty objects without `evalRows`). */
  metrics: { float: Record<string, number>; int8: Record<string, number> };
  /** Wall-clock milliseconds spent featurizing and optimising (excluding evaluation). */
  trainingMs: number;
}

/**
 * Featurizes `rows` with `spec`, fits logistic regression (per-label sigmoid for multilabel, one
 * sigmoid logit for binary, softmax for multiclass) with L2 regularisation, quantizes to int8 and
 * evaluates both models on `evalRows`. Deterministic for equal inputs and seed.
 */
export function trainTextModel(options: TrainTextModelOptions): TrainTextModelResult {
  const hp: TrainHyperparameters = { ...DEFAULT_HYPERPARAMETERS, ...options.hyperparameters };
  validateLabels(options.task, options.labels);
  const started = Date.now();
  const X = featurizeTexts(
    options.rows.map((r) => r.text),
    options.spec,
  );
  const targets = encodeTargets(
    options.task,
    options.labels.length,
    options.rows.map((r) => r.target),
    hp.classWeight,
  );
  const { model, report } = trainLinear({
    X,
    targets,
    task: options.task,
    labels: options.labels,
    spec: options.spec,
    hyperparameters: hp,
    seed: options.seed ?? 0,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const trainingMs = Date.now() - started;
  const quantized = quantizeInt8(model);
  const metrics = { float: {}, int8: {} };
  if (options.evalRows) {
    const E = featurizeTexts(
      options.evalRows.map((r) => r.text),
      options.spec,
    );
    const t = options.evalRows.map((r) => r.target);
    metrics.float = evaluateModel(model, E, t);
    metrics.int8 = evaluateModel(quantized, E, t);
  }
  return { model, quantized, hyperparameters: hp, report, metrics, trainingMs };
}

function validateLabels(task: Task, labels: readonly string[]): void {
  if (labels.length === 0) throw new Error("at least one label is required");
  if (new Set(labels).size !== labels.length) throw new Error("labels must be distinct");
  if (task === "binary" && labels.length > 2) throw new Error("binary takes one or two labels");
  if (task === "multiclass" && labels.length < 2) throw new Error("multiclass needs at least two labels");
}

/** Scores every row of `X` with `model`: `[rows][labels]`. */
export function scoreMatrix(model: LinearTextModel, X: SparseMatrix): Float64Array[] {
  const out: Float64Array[] = [];
  for (let i = 0; i < X.rows; i++) out.push(scoreFeatures(model, sparseRow(X, i)));
  return out;
}

function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let k = 1; k < xs.length; k++) if ((xs[k] as number) > (xs[best] as number)) best = k;
  return best;
}

/**
 * Metrics of `model` on featurized rows with targets (as in `TrainingRow`):
 * - multilabel: `roc_auc_<label>` per label and `roc_auc_mean` (labels with both classes present);
 * - binary: `accuracy` (threshold 0.5), `roc_auc`, `precision_macro`, `recall_macro`, `f1_macro`;
 * - multiclass: `accuracy` (argmax), `precision_macro`, `recall_macro`, `f1_macro`,
 *   `roc_auc_ovr_macro` (one-vs-rest, mean over classes present).
 * Also `rows`, the number of evaluated rows.
 */
export function evaluateModel(
  model: LinearTextModel,
  X: SparseMatrix,
  targets: readonly (number | readonly number[])[],
): Record<string, number> {
  const scores = scoreMatrix(model, X);
  const K = model.labels.length;
  const out: Record<string, number> = { rows: X.rows };
  if (model.task === "multilabel") {
    const aucs: number[] = [];
    model.labels.forEach((label, k) => {
      const s: number[] = [];
      const y: number[] = [];
      targets.forEach((t, i) => {
        const v = (t as readonly number[])[k] as number;
        if (v === 0 || v === 1) {
          s.push((scores[i] as Float64Array)[k] as number);
          y.push(v);
        }
      });
      const auc = rocAuc(s, y);
      out[`roc_auc_${label}`] = auc;
      aucs.push(auc);
    });
    out.roc_auc_mean = finiteMean(aucs);
    return out;
  }
  const truth = targets.map((t) => t as number);
  if (model.task === "binary") {
    const p = scores.map((s) => s[s.length - 1] as number);
    const y = truth.map((t) => (t === 0 ? 0 : 1));
    const pred = p.map((v) => (v >= 0.5 ? 1 : 0));
    out.accuracy = accuracy(pred, y);
    out.roc_auc = rocAuc(p, y);
    const prf = precisionRecallF1Macro(pred, y, 2);
    out.precision_macro = prf.precision;
    out.recall_macro = prf.recall;
    out.f1_macro = prf.f1;
    return out;
  }
  const pred = scores.map(argmax);
  out.accuracy = accuracy(pred, truth);
  const prf = precisionRecallF1Macro(pred, truth, K);
  out.precision_macro = prf.precision;
  out.recall_macro = prf.recall;
  out.f1_macro = prf.f1;
  out.roc_auc_ovr_macro = finiteMean(
    model.labels.map((_, k) =>
      rocAuc(
        scores.map((s) => s[k] as number),
        truth.map((t) => (t === k ? 1 : 0)),
      ),
    ),
  );
  return out;
}
