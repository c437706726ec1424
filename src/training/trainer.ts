/**
 * Logistic-regression training on sparse hashed text features. Runtime-agnostic (Node and workerd).
 *
 * Objective, with N training rows, per-row/per-column weights m (class weights; 0 = unknown label):
 *   (1/N) Σ_i Σ_k m_ik · loss_ik  +  1/(2·C·N) · ‖W‖²        (bias not regularised)
 * which is scikit-learn's `C·Σ loss + ½‖W‖²` divided by C·N, so `c` means what sklearn's `C` means.
 * loss is the logistic loss per column (multilabel, binary) or the softmax cross-entropy (multiclass).
 */

import type { TextFeaturizerSpec } from "../featurizer/text";
import { minimizeLbfgs } from "./lbfgs";
import { columnsFor, type FloatLinearModel, sigmoid, type Task } from "./linear-model";
import { createRng, shuffleInPlace } from "./prng";
import type { SparseMatrix } from "./sparse";

/**
 * A labelled text. `target` depends on the task:
 * - `multilabel`: one entry per label, 1 / 0, or −1 when the label is unknown for this row (the row
 *   then trains only the labels it has);
 * - `binary`: the index of the row's label (0 or 1; with a single label, 1 = positive);
 * - `multiclass`: the index of the row's label.
 */
export interface TrainingRow {
  text: string;
  target: number | readonly number[];
}

/** Training hyperparameters (all optional in `trainTextModel`; see `DEFAULT_HYPERPARAMETERS`). */
export interface TrainHyperparameters {
  /** Inverse L2 regularisation strength, as scikit-learn's `C`. */
  c: number;
  /** Optional `c` per logit column (per label for multilabel/multiclass); overrides `c`. */
  columnC?: number[];
  /** `lbfgs`: full-batch L-BFGS (default, exact). `adagrad`: shuffled SGD with Adagrad, 2 vectors of memory. */
  optimizer: "lbfgs" | "adagrad";
  /** L-BFGS: maximum iterations. */
  maxIterations: number;
  /** L-BFGS: correction pairs kept. */
  memory: number;
  /** L-BFGS: stop when the relative objective decrease stays below this for 3 iterations. */
  tolerance: number;
  /** Adagrad: passes over the data. */
  epochs: number;
  /** Adagrad: base learning rate. */
  learningRate: number;
  /** `balanced` weights each class (per label column for multilabel/binary) by N / (classes · count). */
  classWeight: "none" | "balanced";
  /**
   * IDF-scaled L2: the penalty on bucket j's weights is divided by idf_j² (smoothed IDF of the
   * training rows, idf = ln((1+N)/(1+df)) + 1). Equivalent to training on IDF-weighted features
   * with plain L2 (up to the featurizer's normalisation), without changing the featurizer or graph:
   * frequent n-grams are shrunk more, rare ones less.
   */
  idfPenalty: boolean;
}

/** Defaults used when a hyperparameter is not given. */
export const DEFAULT_HYPERPARAMETERS: TrainHyperparameters = {
  c: 4,
  optimizer: "lbfgs",
  maxIterations: 300,
  memory: 10,
  tolerance: 1e-6,
  epochs: 10,
  learningRate: 0.5,
  classWeight: "none",
  idfPenalty: false,
};

/** Dense targets for the objective: Y and M are `[rows * columns]` (softmax: Y is `[rows]` class ids). */
export interface EncodedTargets {
  task: Task;
  columns: number;
  y: Float64Array;
  /** Per-row/per-column loss weight (softmax: per row, `[rows]`). */
  m: Float64Array;
}

/** Encodes rows' targets for `task` with `labelCount` labels; validates them. */
export function encodeTargets(
  task: Task,
  labelCount: number,
  targets: readonly (number | readonly number[])[],
  classWeight: TrainHyperparameters["classWeight"] = "none",
): EncodedTargets {
  const C = columnsFor(task, labelCount);
  const N = targets.length;
  if (task === "multiclass") {
    const y = new Float64Array(N);
    const counts = new Float64Array(labelCount);
    targets.forEach((t, i) => {
      if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t >= labelCount) {
        throw new Error(`row ${i}: multiclass target must be a label index in [0, ${labelCount})`);
      }
      y[i] = t;
      counts[t] = (counts[t] as number) + 1;
    });
    const m = new Float64Array(N).fill(1);
    if (classWeight === "balanced") {
      for (let i = 0; i < N; i++) m[i] = N / (labelCount * (counts[y[i] as number] as number));
    }
    return { task, columns: C, y, m };
  }
  const y = new Float64Array(N * C);
  const m = new Float64Array(N * C);
  targets.forEach((t, i) => {
    if (task === "binary") {
      const maxIndex = labelCount === 1 ? 1 : labelCount - 1;
      if (typeof t !== "number" || (t !== 0 && t !== maxIndex)) {
        throw new Error(`row ${i}: binary target must be 0 or ${maxIndex}`);
      }
      y[i] = t === 0 ? 0 : 1;
      m[i] = 1;
      return;
    }
    if (typeof t === "number" || t.length !== labelCount) {
      throw new Error(`row ${i}: multilabel target must be an array of ${labelCount} values (1, 0 or -1)`);
    }
    for (let k = 0; k < C; k++) {
      const v = t[k] as number;
      if (v !== 0 && v !== 1 && v !== -1) throw new Error(`row ${i}: multilabel values must be 1, 0 or -1`);
      y[i * C + k] = v === 1 ? 1 : 0;
      m[i * C + k] = v === -1 ? 0 : 1;
    }
  });
  if (classWeight === "balanced") {
    for (let k = 0; k < C; k++) {
      let pos = 0;
      let known = 0;
      for (let i = 0; i < N; i++) {
        if ((m[i * C + k] as number) > 0) {
          known++;
          pos += y[i * C + k] as number;
        }
      }
      const wPos = pos > 0 ? known / (2 * pos) : 1;
      const wNeg = known - pos > 0 ? known / (2 * (known - pos)) : 1;
      for (let i = 0; i < N; i++) {
        const j = i * C + k;
        if ((m[j] as number) > 0) m[j] = (y[j] as number) === 1 ? wPos : wNeg;
      }
    }
  }
  return { task, columns: C, y, m };
}

/** Per-row loss and residuals d(loss)/d(logit) (already multiplied by the row weights). */
function lossAndResidual(t: EncodedTargets, i: number, z: Float64Array, r: Float64Array): number {
  const C = t.columns;
  if (t.task === "multiclass") {
    let max = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < C; k++) max = Math.max(max, z[k] as number);
    let sum = 0;
    for (let k = 0; k < C; k++) {
      const e = Math.exp((z[k] as number) - max);
      r[k] = e;
      sum += e;
    }
    const yi = t.y[i] as number;
    const w = t.m[i] as number;
    for (let k = 0; k < C; k++) r[k] = w * ((r[k] as number) / sum - (k === yi ? 1 : 0));
    return w * (max + Math.log(sum) - (z[yi] as number));
  }
  let loss = 0;
  for (let k = 0; k < C; k++) {
    const w = t.m[i * C + k] as number;
    if (w === 0) {
      r[k] = 0;
      continue;
    }
    const zk = z[k] as number;
    const y = t.y[i * C + k] as number;
    // softplus(z) − y·z, stable.
    const sp = zk > 0 ? zk + Math.log1p(Math.exp(-zk)) : Math.log1p(Math.exp(zk));
    loss += w * (sp - y * zk);
    r[k] = w * (sigmoid(zk) - y);
  }
  return loss;
}

/** Parameters of an objective: W `[cols*C]` followed by bias `[C]`. */
function makeObjective(X: SparseMatrix, t: EncodedTargets, c: readonly number[], penalty?: Float64Array) {
  const C = t.columns;
  const D = X.cols * C;
  const N = X.rows;
  const lambdas = Float64Array.from({ length: C }, (_, k) => 1 / ((c[k] ?? c[0] ?? 1) * N));
  const z = new Float64Array(C);
  const r = new Float64Array(C);
  const { rowPtr, ids, values } = X;
  return (p: Float64Array, g: Float64Array): number => {
    g.fill(0);
    let loss = 0;
    for (let i = 0; i < N; i++) {
      const s = rowPtr[i] as number;
      const e = rowPtr[i + 1] as number;
      for (let k = 0; k < C; k++) z[k] = p[D + k] as number;
      if (C === 1) {
        let acc = z[0] as number;
        for (let j = s; j < e; j++) acc += (p[ids[j] as number] as number) * (values[j] as number);
        z[0] = acc;
      } else {
        for (let j = s; j < e; j++) {
          const base = (ids[j] as number) * C;
          const v = values[j] as number;
          for (let k = 0; k < C; k++) z[k] = (z[k] as number) + (p[base + k] as number) * v;
        }
      }
      loss += lossAndResidual(t, i, z, r);
      if (C === 1) {
        const r0 = r[0] as number;
        if (r0 !== 0) {
          for (let j = s; j < e; j++) {
            const id = ids[j] as number;
            g[id] = (g[id] as number) + r0 * (values[j] as number);
          }
          g[D] = (g[D] as number) + r0;
        }
      } else {
        for (let j = s; j < e; j++) {
          const base = (ids[j] as number) * C;
          const v = values[j] as number;
          for (let k = 0; k < C; k++) g[base + k] = (g[base + k] as number) + (r[k] as number) * v;
        }
        for (let k = 0; k < C; k++) g[D + k] = (g[D + k] as number) + (r[k] as number);
      }
    }
    const invN = 1 / N;
    let reg = 0;
    for (let u = 0, d = 0; u < X.cols; u++) {
      const pw = penalty ? (penalty[u] as number) : 1;
      for (let k = 0; k < C; k++, d++) {
        const w = p[d] as number;
        const lam = (lambdas[k] as number) * pw;
        reg += lam * w * w;
        g[d] = (g[d] as number) * invN + lam * w;
      }
    }
    for (let k = 0; k < C; k++) g[D + k] = (g[D + k] as number) * invN;
    return loss * invN + 0.5 * reg;
  };
}

/**
 * Shuffled per-row SGD with Adagrad step sizes; L2 applied lazily to the touched coordinates
 * (`idfPenalty` is not applied).
 */
function trainAdagrad(
  X: SparseMatrix,
  t: EncodedTargets,
  hp: TrainHyperparameters,
  seed: number,
): Float64Array {
  const C = t.columns;
  const D = X.cols * C;
  const N = X.rows;
  const p = new Float64Array(D + C);
  const G = new Float64Array(D + C);
  const lambdas = Float64Array.from({ length: C }, (_, k) => 1 / ((hp.columnC?.[k] ?? hp.c) * N));
  const z = new Float64Array(C);
  const r = new Float64Array(C);
  const order = Int32Array.from({ length: N }, (_, i) => i);
  const rng = createRng(seed);
  const eps = 1e-8;
  for (let epoch = 0; epoch < hp.epochs; epoch++) {
    shuffleInPlace(order, rng);
    for (let oi = 0; oi < N; oi++) {
      const i = order[oi] as number;
      const s = X.rowPtr[i] as number;
      const e = X.rowPtr[i + 1] as number;
      for (let k = 0; k < C; k++) z[k] = p[D + k] as number;
      for (let j = s; j < e; j++) {
        const base = (X.ids[j] as number) * C;
        const v = X.values[j] as number;
        for (let k = 0; k < C; k++) z[k] = (z[k] as number) + (p[base + k] as number) * v;
      }
      lossAndResidual(t, i, z, r);
      for (let j = s; j < e; j++) {
        const base = (X.ids[j] as number) * C;
        const v = X.values[j] as number;
        for (let k = 0; k < C; k++) {
          const d = base + k;
          const gd = (r[k] as number) * v + (lambdas[k] as number) * (p[d] as number);
          G[d] = (G[d] as number) + gd * gd;
          p[d] = (p[d] as number) - (hp.learningRate * gd) / (Math.sqrt(G[d] as number) + eps);
        }
      }
      for (let k = 0; k < C; k++) {
        const d = D + k;
        const gd = r[k] as number;
        G[d] = (G[d] as number) + gd * gd;
        p[d] = (p[d] as number) - (hp.learningRate * gd) / (Math.sqrt(G[d] as number) + eps);
      }
    }
  }
  return p;
}

/**
 * Renumbers the columns of `X` that occur at least once as 0..U-1, most frequent first (ties by
 * bucket id). Returns the renumbered matrix, `used[u]` = original bucket of compact column u and
 * `df[u]` = number of stored entries (rows) of compact column u.
 */
export function compactColumns(X: SparseMatrix): { X: SparseMatrix; used: Int32Array; df: Int32Array } {
  const df = new Int32Array(X.cols);
  for (let j = 0; j < X.ids.length; j++) df[X.ids[j] as number] = (df[X.ids[j] as number] as number) + 1;
  const used: number[] = [];
  for (let b = 0; b < X.cols; b++) if ((df[b] as number) > 0) used.push(b);
  used.sort((a, b) => (df[b] as number) - (df[a] as number) || a - b);
  const remap = new Int32Array(X.cols);
  used.forEach((b, u) => {
    remap[b] = u;
  });
  const ids = new Int32Array(X.ids.length);
  for (let j = 0; j < ids.length; j++) ids[j] = remap[X.ids[j] as number] as number;
  return {
    X: { rows: X.rows, cols: used.length, rowPtr: X.rowPtr, ids, values: X.values },
    used: Int32Array.from(used),
    df: Int32Array.from(used, (b) => df[b] as number),
  };
}

/** Report of an optimisation run. */
export interface OptimizationReport {
  optimizer: TrainHyperparameters["optimizer"];
  iterations: number;
  evaluations: number;
  converged: boolean;
  objective: number;
}

/**
 * Fits a linear model on a featurized matrix. Low-level: `trainTextModel` featurizes and calls this.
 * Deterministic for a given input, hyperparameters and seed.
 */
export function trainLinear(options: {
  X: SparseMatrix;
  targets: EncodedTargets;
  task: Task;
  labels: readonly string[];
  spec: TextFeaturizerSpec;
  hyperparameters: TrainHyperparameters;
  seed: number;
  /** Progress callback (iteration or epoch number, objective when known). */
  onProgress?: (step: number, objective: number) => void;
}): { model: FloatLinearModel; report: OptimizationReport } {
  const { targets, hyperparameters: hp } = options;
  if (options.X.cols !== options.spec.buckets) throw new Error("matrix width must equal spec.buckets");
  // Optimise only over buckets that occur in the data (the others keep weight 0 under L2), renumbered
  // by decreasing document frequency so the hot weights share cache lines.
  const { X, used, df } = compactColumns(options.X);
  const C = targets.columns;
  let penalty: Float64Array | undefined;
  if (hp.idfPenalty) {
    penalty = new Float64Array(X.cols);
    for (let u = 0; u < X.cols; u++) {
      const idf = Math.log((1 + X.rows) / (1 + (df[u] as number))) + 1;
      penalty[u] = 1 / (idf * idf);
    }
  }
  const D = X.cols * C;
  if (hp.columnC && hp.columnC.length !== C) throw new Error(`columnC must have ${C} entries`);
  const cs = hp.columnC ?? [hp.c];
  let params: Float64Array;
  let report: OptimizationReport;
  if (hp.optimizer === "adagrad") {
    params = trainAdagrad(X, targets, hp, options.seed);
    const f = makeObjective(X, targets, cs, penalty);
    report = {
      optimizer: "adagrad",
      iterations: hp.epochs,
      evaluations: 1,
      converged: true,
      objective: f(params, new Float64Array(params.length)),
    };
  } else {
    params = new Float64Array(D + C);
    const res = minimizeLbfgs(makeObjective(X, targets, cs, penalty), params, {
      memory: hp.memory,
      maxIterations: hp.maxIterations,
      gradientTolerance: 1e-9,
      relativeTolerance: hp.tolerance,
      ...(options.onProgress ? { onIteration: options.onProgress } : {}),
    });
    report = { optimizer: "lbfgs", ...res, objective: res.value };
  }
  const weights = new Float32Array(options.spec.buckets * C);
  for (let u = 0; u < used.length; u++) {
    const b = used[u] as number;
    for (let k = 0; k < C; k++) weights[b * C + k] = params[u * C + k] as number;
  }
  const model: FloatLinearModel = {
    task: options.task,
    labels: [...options.labels],
    spec: { ...options.spec },
    columns: C,
    quantization: "none",
    weights,
    bias: Float32Array.from(params.subarray(D)),
  };
  return { model, report };
}
