/**
 * NB-weighted logistic regression (NB-LR, Wang & Manning 2012, "NBSVM" with a logistic loss) on
 * the hashed features, per logit column, and the prior correction of logits.
 *
 * For label k, r_k[b] = ln((p_b / ‖p‖₁) / (q_b / ‖q‖₁)) with p = α + Σ_{y=1} x, q = α + Σ_{y=0} x
 * (feature values summed over the positive / negative training rows). The classifier is fitted on
 * x ⊙ r_k; since w·(x ⊙ r_k) = (w ⊙ r_k)·x, the shipped weights are w ⊙ r_k on the unchanged
 * featurizer, so the ONNX graph and the Worker stay exactly those of a linear model.
 */

import type { TextFeaturizerSpec } from "../featurizer/text";
import type { FloatLinearModel, Task } from "./linear-model";
import type { SparseMatrix } from "./sparse";
import {
  type EncodedTargets,
  type OptimizationReport,
  type TrainHyperparameters,
  trainLinear,
} from "./trainer";

/** Log-count ratios of one 0/1 column (`weight[i]` = 0 skips row i, e.g. an unknown label). */
export function nbRatios(
  X: SparseMatrix,
  y: ArrayLike<number>,
  weight: ArrayLike<number>,
  alpha = 1,
): Float32Array {
  const p = new Float64Array(X.cols).fill(alpha);
  const q = new Float64Array(X.cols).fill(alpha);
  for (let i = 0; i < X.rows; i++) {
    if ((weight[i] as number) === 0) continue;
    const target = (y[i] as number) === 1 ? p : q;
    for (let j = X.rowPtr[i] as number; j < (X.rowPtr[i + 1] as number); j++) {
      const b = X.ids[j] as number;
      target[b] = (target[b] as number) + (X.values[j] as number);
    }
  }
  let sp = 0;
  let sq = 0;
  for (let b = 0; b < X.cols; b++) {
    sp += p[b] as number;
    sq += q[b] as number;
  }
  const r = new Float32Array(X.cols);
  for (let b = 0; b < X.cols; b++) r[b] = Math.log((p[b] as number) / sp / ((q[b] as number) / sq));
  return r;
}

/** `X` with every value multiplied by `scale[column]` (same structure, new values). */
export function scaleColumns(X: SparseMatrix, scale: Float32Array): SparseMatrix {
  const values = new Float32Array(X.values.length);
  for (let j = 0; j < values.length; j++)
    values[j] = (X.values[j] as number) * (scale[X.ids[j] as number] as number);
  return { ...X, values };
}

/**
 * Fits NB-LR for a `multilabel` or `binary` task: one binary logistic regression per logit column
 * on NB-scaled features, folded back into one linear model over the original features.
 */
export function trainNbLinear(options: {
  X: SparseMatrix;
  targets: EncodedTargets;
  task: Task;
  labels: readonly string[];
  spec: TextFeaturizerSpec;
  hyperparameters: TrainHyperparameters;
  alpha?: number;
  /** false: plain features (the same per-column fit without NB scaling). Default true. */
  nb?: boolean;
  seed: number;
}): { model: FloatLinearModel; reports: OptimizationReport[] } {
  const { X, targets } = options;
  if (targets.task === "multiclass") throw new Error("NB-LR is implemented for binary and multilabel tasks");
  const C = targets.columns;
  const N = X.rows;
  const weights = new Float32Array(options.spec.buckets * C);
  const bias = new Float32Array(C);
  const reports: OptimizationReport[] = [];
  for (let k = 0; k < C; k++) {
    const y = new Float64Array(N);
    const m = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      y[i] = targets.y[i * C + k] as number;
      m[i] = targets.m[i * C + k] as number;
    }
    const r = options.nb === false ? new Float32Array(X.cols).fill(1) : nbRatios(X, y, m, options.alpha ?? 1);
    const { columnC, ...hp } = options.hyperparameters;
    const { model, report } = trainLinear({
      X: options.nb === false ? X : scaleColumns(X, r),
      targets: { task: "binary", columns: 1, y, m },
      task: "binary",
      labels: ["0", "1"],
      spec: options.spec,
      hyperparameters: { ...hp, c: columnC?.[k] ?? hp.c },
      seed: options.seed,
    });
    for (let b = 0; b < options.spec.buckets; b++) {
      weights[b * C + k] = (model.weights[b] as number) * (r[b] as number);
    }
    bias[k] = model.bias[0] as number;
    reports.push(report);
  }
  return {
    model: {
      task: options.task,
      labels: [...options.labels],
      spec: { ...options.spec },
      columns: C,
      quantization: "none",
      weights,
      bias,
    },
    reports,
  };
}

/** ln(p / (1 − p)). */
export const logitOf = (p: number): number => Math.log(p / (1 - p));

/**
 * Prior correction of sigmoid logits: a classifier fitted where label k has rate `from[k]` is moved
 * to a population where it has rate `to[k]` by adding logit(to) − logit(from) to its bias (Bayes'
 * rule with the class-conditional likelihoods unchanged; Saerens et al. 2002).
 */
export function priorShift(from: readonly number[], to: readonly number[]): number[] {
  return from.map((f, k) => logitOf(to[k] as number) - logitOf(f));
}

/** `model` with `shift[k]` added to bias k (a copy). */
export function shiftBias<M extends { bias: Float32Array }>(model: M, shift: readonly number[]): M {
  return { ...model, bias: model.bias.map((b, k) => b + (shift[k] ?? 0)) };
}

/** Averages the weights and biases of linear models over the same featurizer (an ensemble of logits). */
export function averageLinear(models: readonly FloatLinearModel[], mix: readonly number[]): FloatLinearModel {
  const first = models[0];
  if (!first) throw new Error("no models");
  const weights = new Float32Array(first.weights.length);
  const bias = new Float32Array(first.bias.length);
  models.forEach((m, i) => {
    const a = mix[i] as number;
    for (let j = 0; j < weights.length; j++)
      weights[j] = (weights[j] as number) + a * (m.weights[j] as number);
    for (let j = 0; j < bias.length; j++) bias[j] = (bias[j] as number) + a * (m.bias[j] as number);
  });
  return { ...first, weights, bias };
}
