/**
 * The honest protocol for linear text models: every choice (variant, C, ensemble mix, calibration,
 * thresholds) is made on a fixed validation fold carved out of the TRAIN split; the test split is
 * only scored once, by the caller, on the final model.
 *
 * Validation fold: train-split rows whose data-row index i has `i % 5 == 3` (a quarter of the train
 * split); the models compared are fitted on the rest of the train split (`i % 5 ∈ {0, 1, 2}`). The
 * chosen configuration is then refitted on the whole train split, and the calibration and thresholds
 * fitted on the fold's predictions are applied to it.
 *
 * Everything stays one linear model over the featurizer (NB scaling, averaging of logits and
 * Platt/prior corrections are folded into the weights and bias), so the ONNX graph is unchanged.
 */

import type { TextFeaturizerSpec } from "../featurizer/text";
import {
  bestF1Threshold,
  bootstrapSd,
  brierScore,
  expectedCalibrationError,
  standardDeviation,
} from "./calibration";
import { evaluateModel, trainTextModel } from "./index";
import {
  type FloatLinearModel,
  type Int8LinearModel,
  type LinearTextModel,
  logits,
  quantizeInt8,
  sigmoid,
  type Task,
} from "./linear-model";
import { finiteMean, rocAuc } from "./metrics";
import { trainNbLinear } from "./nb";
import { featurizeTexts, type SparseMatrix, sparseRow } from "./sparse";
import {
  DEFAULT_HYPERPARAMETERS,
  type EncodedTargets,
  encodeTargets,
  type TrainHyperparameters,
  type TrainingRow,
} from "./trainer";

/** One linear variant to compare. `nb`: NB-weighted features; `lr`: plain features, IDF-scaled L2. */
export interface Candidate {
  name: string;
  kind: "lr" | "nb";
  c: number;
  /** NB smoothing (added to each bucket's positive and negative sums). */
  alpha?: number;
  maxIterations?: number;
}

/** Fits one candidate (per logit column; binary and multilabel tasks). */
export function fitCandidate(
  X: SparseMatrix,
  targets: EncodedTargets,
  task: Task,
  labels: readonly string[],
  spec: TextFeaturizerSpec,
  cand: Candidate,
  seed: number,
): FloatLinearModel {
  const hyperparameters = {
    ...DEFAULT_HYPERPARAMETERS,
    c: cand.c,
    maxIterations: cand.maxIterations ?? 150,
    idfPenalty: cand.kind === "lr",
  };
  return trainNbLinear({
    X,
    targets,
    task,
    labels,
    spec,
    hyperparameters,
    seed,
    nb: cand.kind === "nb",
    ...(cand.alpha !== undefined && { alpha: cand.alpha }),
  }).model;
}

/** Logits `[rows][columns]` of a linear model on a matrix. */
export function logitMatrix(model: LinearTextModel, X: SparseMatrix): Float64Array[] {
  const out: Float64Array[] = [];
  for (let i = 0; i < X.rows; i++) out.push(logits(model, sparseRow(X, i)));
  return out;
}

/** 0/1 truth and known-mask of column k. */
export function columnTruth(targets: EncodedTargets, k: number): { y: number[]; known: boolean[] } {
  const C = targets.columns;
  const y: number[] = [];
  const known: boolean[] = [];
  for (let i = 0; i < targets.y.length / C; i++) {
    y.push(targets.y[i * C + k] as number);
    known.push((targets.m[i * C + k] as number) > 0);
  }
  return { y, known };
}

/**
 * One-column targets of `column` restricted to the rows where column `by` is known and 1 (the
 * conditional task of a gate): other rows get mask 0.
 */
export function conditionalTargets(t: EncodedTargets, column: number, by: number): EncodedTargets {
  const C = t.columns;
  const n = t.y.length / C;
  const y = new Float64Array(n);
  const m = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const onBy = (t.m[i * C + by] as number) > 0 && t.y[i * C + by] === 1;
    y[i] = t.y[i * C + column] as number;
    m[i] = onBy ? (t.m[i * C + column] as number) : 0;
  }
  return { task: t.task, columns: 1, y, m };
}

/** Platt scaling p = sigmoid(a·z + b), fitted by Newton's method on (logit, 0/1) pairs. */
export function fitPlatt(z: readonly number[], y: readonly number[]): { a: number; b: number } {
  let a = 1;
  let b = 0;
  for (let it = 0; it < 50; it++) {
    let gA = 0;
    let gB = 0;
    let hAA = 1e-9;
    let hAB = 0;
    let hBB = 1e-9;
    for (let i = 0; i < z.length; i++) {
      const zi = z[i] as number;
      const p = sigmoid(a * zi + b);
      const r = p - (y[i] as number);
      const w = p * (1 - p);
      gA += r * zi;
      gB += r;
      hAA += w * zi * zi;
      hAB += w * zi;
      hBB += w;
    }
    const det = hAA * hBB - hAB * hAB;
    const dA = (hBB * gA - hAB * gB) / det;
    const dB = (hAA * gB - hAB * gA) / det;
    a -= dA;
    b -= dB;
    if (Math.abs(dA) + Math.abs(dB) < 1e-10) break;
  }
  return { a, b };
}

/** `model` with logit column k replaced by `scale[k]·z + shift[k]` (a copy). */
export function affineColumns(
  model: FloatLinearModel,
  scale: readonly number[],
  shift: readonly number[],
): FloatLinearModel {
  const C = model.columns;
  const weights = model.weights.map((w, j) => w * (scale[j % C] as number));
  const bias = model.bias.map((b, k) => (scale[k] as number) * b + (shift[k] as number));
  return { ...model, weights, bias };
}

/** Figures of one column's scores against truth, with optional weights (prior reweighting). */
export function calibrationFigures(
  p: readonly number[],
  y: readonly number[],
  weight?: ArrayLike<number>,
): { brier: number; ece15: number } {
  return { brier: brierScore(p, y, weight), ece15: expectedCalibrationError(p, y, 15, weight) };
}

/** What `selectLinear` decided and measured on the validation fold(s). */
export interface Selection {
  /** Number of validation folds: 1 = the fixed fold (`isValidationRow`, src/training/folds.ts), k > 1 = k-fold CV. */
  folds: number;
  /** Per column: the candidate names mixed (averaged logits) and their weights. */
  columns: {
    parts: string[];
    mix: number[];
    /**
     * Multilabel: column `from`'s mixed logit (before its Platt scaling) times `weight` is added to
     * this column's — a rare label borrowing the ranking of a frequent one (e.g. `threat` from
     * `toxic`); still one linear model. Kept only when it raises the validation AUC.
     */
    borrow?: { from: number; weight: number };
    /** The mean over folds of the per-fold validation ROC-AUC (one fold: that fold's). */
    validation_auc: number;
    /** k-fold: the sample sd of the per-fold AUCs; one fold: a bootstrap sd (200 resamples). */
    validation_auc_sd: number;
    /** k-fold: the per-fold AUCs. */
    validation_auc_folds?: number[];
  }[];
  /** Per column: Platt parameters fitted on the pooled validation logits (logit ↦ a·logit + b). */
  platt: { a: number; b: number }[];
  /** Every candidate's validation AUC (fold mean) per column (and of the best pairwise averages). */
  tried: Record<string, number[]>;
}

/** Bootstrap sd of the AUC of `s` against `y`. */
function aucSd(s: readonly number[], y: readonly number[]): number {
  return bootstrapSd(s.length, (rows) => {
    const ss: number[] = [];
    const yy: number[] = [];
    for (const i of rows) {
      ss.push(s[i] as number);
      yy.push(y[i] as number);
    }
    return rocAuc(ss, yy);
  });
}

/** One train/validation cut of the train split: models fit on `fit*` and are scored on `val*`. */
export interface Fold {
  fitX: SparseMatrix;
  fitTargets: EncodedTargets;
  valX: SparseMatrix;
  valTargets: EncodedTargets;
}

/** The rows of several target sets, one after another. */
export function concatTargets(parts: readonly EncodedTargets[]): EncodedTargets {
  const first = parts[0];
  if (!first) throw new Error("no targets to concatenate");
  const y = new Float64Array(parts.reduce((n, p) => n + p.y.length, 0));
  const m = new Float64Array(parts.reduce((n, p) => n + p.m.length, 0));
  let oy = 0;
  let om = 0;
  for (const p of parts) {
    if (p.task !== first.task || p.columns !== first.columns) throw new Error("targets of different shapes");
    y.set(p.y, oy);
    m.set(p.m, om);
    oy += p.y.length;
    om += p.m.length;
  }
  return { task: first.task, columns: first.columns, y, m };
}

/**
 * Fits every candidate on each fold's fitting rows and scores that fold's validation rows (k folds:
 * every validation row gets an out-of-fold logit). Per logit column it picks the best candidate or
 * the equal-weight average of the two best, by the mean over folds of the per-fold ROC-AUC; then
 * fits Platt scaling per column on the pooled out-of-fold logits. Returns the choice, the pooled
 * calibrated validation probabilities and their targets (fold after fold), for thresholds and
 * reliability figures.
 */
export function selectLinear(options: {
  folds: readonly Fold[];
  task: Task;
  labels: readonly string[];
  spec: TextFeaturizerSpec;
  candidates: readonly Candidate[];
  seed: number;
  /** Multilabel: let columns borrow column `borrowFrom`'s logit (see `Selection.columns`). */
  borrowFrom?: number;
  log?: (line: string) => void;
}): { selection: Selection; valProbabilities: number[][]; valTargets: EncodedTargets } {
  const { folds } = options;
  const valTargets = concatTargets(folds.map((f) => f.valTargets));
  const C = valTargets.columns;
  const rows = folds.reduce((n, f) => n + f.valX.rows, 0);
  const cvAuc = (z: readonly number[], k: number) => foldAucs(folds, z, k);
  const valLogits: Record<string, Float64Array[]> = {};
  const tried: Record<string, number[]> = {};
  for (const cand of options.candidates) {
    const started = Date.now();
    const pooled: Float64Array[] = [];
    for (const f of folds) {
      const model = fitCandidate(
        f.fitX,
        f.fitTargets,
        options.task,
        options.labels,
        options.spec,
        cand,
        options.seed,
      );
      pooled.push(...logitMatrix(model, f.valX));
    }
    valLogits[cand.name] = pooled;
    tried[cand.name] = Array.from(
      { length: C },
      (_, k) =>
        cvAuc(
          pooled.map((z) => z[k] as number),
          k,
        ).mean,
    );
    options.log?.(
      `  ${cand.name}: validation AUC ${JSON.stringify(tried[cand.name]?.map((x) => Number(x.toFixed(4))))} (${folds.length} fold${folds.length > 1 ? "s" : ""}, ${Date.now() - started} ms)`,
    );
  }
  const columns: Selection["columns"] = [];
  const platt: Selection["platt"] = [];
  const valProbabilities: number[][] = Array.from({ length: rows }, () => []);
  const from = options.borrowFrom;
  // The lending column is chosen first, so the others can borrow its chosen logit.
  const order = Array.from({ length: C }, (_, k) => k);
  if (from !== undefined) order.sort((a, b) => (a === from ? -1 : b === from ? 1 : a - b));
  let lender: number[] | undefined;
  for (const k of order) {
    const ranked = options.candidates
      .map((c) => c.name)
      .sort((a, b) => (tried[b]?.[k] as number) - (tried[a]?.[k] as number));
    const [first, second] = ranked as [string, string | undefined];
    const zOf = (parts: string[]): number[] =>
      (valLogits[parts[0] as string] as Float64Array[]).map(
        (_, i) =>
          parts.reduce((s, p) => s + ((valLogits[p] as Float64Array[])[i]?.[k] as number), 0) / parts.length,
      );
    let parts = [first];
    let z = zOf(parts);
    let score = cvAuc(z, k);
    if (second) {
      const name = `avg(${first}, ${second})`;
      const z2 = zOf([first, second]);
      const s2 = cvAuc(z2, k);
      tried[name] = tried[name] ?? Array.from({ length: C }, () => Number.NaN);
      (tried[name] as number[])[k] = s2.mean;
      if (s2.mean > score.mean) {
        parts = [first, second];
        z = z2;
        score = s2;
      }
    }
    let borrow: { from: number; weight: number } | undefined;
    if (k === from) lender = z;
    else if (lender) {
      const lent = lender;
      const base = z;
      // Weights relative to the two logits' spreads, so λ means the same for every column.
      const ratio = standardDeviation(base) / Math.max(1e-12, standardDeviation(lent));
      const name = "borrow";
      tried[name] = tried[name] ?? Array.from({ length: C }, () => Number.NaN);
      for (const lambda of [0.25, 0.5, 1]) {
        const w = lambda * ratio;
        const zb = base.map((v, i) => v + w * (lent[i] as number));
        const sb = cvAuc(zb, k);
        if (sb.mean > score.mean) {
          score = sb;
          z = zb;
          borrow = { from: from as number, weight: w };
          (tried[name] as number[])[k] = sb.mean;
        }
      }
      if (borrow) {
        options.log?.(
          `  ${options.labels[k]} borrows ${options.labels[from as number]}'s logit × ${borrow.weight.toFixed(3)}: ${score.mean.toFixed(4)}`,
        );
      }
    }
    const { y, known } = columnTruth(valTargets, k);
    const zk = z.filter((_, i) => known[i]);
    const yk = y.filter((_, i) => known[i]);
    columns[k] = {
      parts,
      mix: parts.map(() => 1 / parts.length),
      ...(borrow && { borrow }),
      validation_auc: score.mean,
      validation_auc_sd:
        folds.length > 1 ? standardDeviation(score.folds.filter(Number.isFinite), 1) : aucSd(zk, yk),
      ...(folds.length > 1 && { validation_auc_folds: score.folds }),
    };
    const pl = fitPlatt(zk, yk);
    platt[k] = pl;
    z.forEach((v, i) => {
      (valProbabilities[i] as number[])[k] = sigmoid(pl.a * v + pl.b);
    });
  }
  return { selection: { folds: folds.length, columns, platt, tried }, valProbabilities, valTargets };
}

/**
 * Per-fold ROC-AUCs on column k of scores `z` pooled fold after fold (fold f's validation rows
 * follow fold f − 1's, as `selectLinear` pools them), and their mean.
 */
export function foldAucs(
  folds: readonly Fold[],
  z: readonly number[],
  k: number,
): { mean: number; folds: number[] } {
  let at = 0;
  const per = folds.map((f) => {
    const auc = aucOfColumn(z.slice(at, at + f.valX.rows), f.valTargets, k);
    at += f.valX.rows;
    return auc;
  });
  return { mean: finiteMean(per), folds: per };
}

function aucOfColumn(z: readonly number[], targets: EncodedTargets, k: number): number {
  const { y, known } = columnTruth(targets, k);
  return rocAuc(
    z.filter((_, i) => known[i]),
    y.filter((_, i) => known[i]),
  );
}

/**
 * Refits the candidates a selection uses on `X` (the whole train split) and assembles the final
 * float model: per column the selected mix of logits, then Platt scaling, then `shift` (prior
 * correction, added to the calibrated logit).
 */
export function assembleSelected(options: {
  X: SparseMatrix;
  targets: EncodedTargets;
  task: Task;
  labels: readonly string[];
  spec: TextFeaturizerSpec;
  candidates: readonly Candidate[];
  selection: Selection;
  shift?: readonly number[];
  seed: number;
  log?: (line: string) => void;
}): FloatLinearModel {
  const { selection } = options;
  const C = options.targets.columns;
  const used = [...new Set(selection.columns.flatMap((c) => c.parts))];
  const fitted: Record<string, FloatLinearModel> = {};
  for (const name of used) {
    const cand = options.candidates.find((c) => c.name === name);
    if (!cand) throw new Error(`unknown candidate ${name}`);
    const started = Date.now();
    fitted[name] = fitCandidate(
      options.X,
      options.targets,
      options.task,
      options.labels,
      options.spec,
      cand,
      options.seed,
    );
    options.log?.(`  refit ${name} on the train split (${Date.now() - started} ms)`);
  }
  const first = fitted[used[0] as string] as FloatLinearModel;
  // Each column's mixed logit before calibration (what a borrowing column adds a multiple of).
  const raw = new Float32Array(first.weights.length);
  const rawBias = new Float32Array(C);
  for (let k = 0; k < C; k++) {
    const col = selection.columns[k];
    if (!col) throw new Error("selection does not cover every column");
    col.parts.forEach((name, pi) => {
      const m = fitted[name] as FloatLinearModel;
      const a = col.mix[pi] as number;
      for (let j = k; j < raw.length; j += C) raw[j] = (raw[j] as number) + a * (m.weights[j] as number);
      rawBias[k] = (rawBias[k] as number) + a * (m.bias[k] as number);
    });
  }
  const weights = new Float32Array(first.weights.length);
  const bias = new Float32Array(C);
  for (let k = 0; k < C; k++) {
    const col = selection.columns[k] as Selection["columns"][number];
    const pl = selection.platt[k];
    if (!pl) throw new Error("selection does not cover every column");
    const shift = options.shift?.[k] ?? 0;
    const b = col.borrow;
    for (let j = k; j < weights.length; j += C) {
      const lent = b ? b.weight * (raw[j - k + b.from] as number) : 0;
      weights[j] = pl.a * ((raw[j] as number) + lent);
    }
    const lentBias = b ? b.weight * (rawBias[b.from] as number) : 0;
    bias[k] = pl.a * ((rawBias[k] as number) + lentBias) + pl.b + shift;
  }
  return { ...first, weights, bias };
}

/**
 * The protocol for a model with fixed hyperparameters (training jobs). Each train row belongs to a
 * validation fold (`foldOf`, from `validationFoldOf`) or only fits (−1). Per fold: fit on the other
 * train rows, measure on the fold's rows (`validation_*`; with k > 1 folds the mean over folds, and
 * `validation_*_sd` the sample sd). Platt scaling and F1-best thresholds per logit (binary and
 * multilabel) are fitted on the pooled out-of-fold logits; then the model is refitted on all train
 * rows, calibrated, and `testRows` are scored once. Without validation rows (tiny datasets) or for
 * multiclass: one fit, no calibration.
 */
export function trainWithValidation(options: {
  trainRows: readonly TrainingRow[];
  foldOf: readonly number[];
  folds: number;
  testRows: readonly TrainingRow[];
  task: Task;
  labels: readonly string[];
  spec: TextFeaturizerSpec;
  hyperparameters: TrainHyperparameters;
  seed: number;
}): {
  quantized: Int8LinearModel;
  metrics: Record<string, number>;
  thresholds?: Record<string, number>;
  trainingMs: number;
} {
  const { task, labels, spec, hyperparameters, seed } = options;
  const base = { task, labels, spec, hyperparameters, seed };
  const metrics: Record<string, number> = {};
  let calibrate: ((m: FloatLinearModel) => FloatLinearModel) | undefined;
  let thresholds: Record<string, number> | undefined;
  const started = Date.now();
  const foldRows = Array.from({ length: options.folds }, (_, f) => ({
    fit: options.trainRows.filter((_, t) => options.foldOf[t] !== f),
    val: options.trainRows.filter((_, t) => options.foldOf[t] === f),
  })).filter((f) => f.val.length > 0);
  if (foldRows.length > 0 && task !== "multiclass") {
    const perFold: Record<string, number[]> = {};
    const pooledLogits: Float64Array[] = [];
    const pooledRows: TrainingRow[] = [];
    for (const { fit, val } of foldRows) {
      const v = trainTextModel({ ...base, rows: fit, evalRows: val });
      for (const [k, x] of Object.entries(v.metrics.int8)) perFold[k] = [...(perFold[k] ?? []), x];
      pooledLogits.push(
        ...logitMatrix(
          v.model,
          featurizeTexts(
            val.map((r) => r.text),
            spec,
          ),
        ),
      );
      pooledRows.push(...val);
    }
    for (const [k, xs] of Object.entries(perFold)) {
      metrics[`validation_${k}`] = k === "rows" ? xs.reduce((a, b) => a + b, 0) : finiteMean(xs);
      if (foldRows.length > 1 && k !== "rows")
        metrics[`validation_${k}_sd`] = standardDeviation(xs.filter(Number.isFinite), 1);
    }
    if (foldRows.length > 1) metrics.validation_folds = foldRows.length;
    const T = encodeTargets(
      task,
      labels.length,
      pooledRows.map((r) => r.target),
    );
    const L = pooledLogits;
    const platt = Array.from({ length: T.columns }, (_, k) => {
      const { y, known } = columnTruth(T, k);
      const z = L.map((row) => row[k] as number).filter((_, i) => known[i]);
      const yk = y.filter((_, i) => known[i]);
      // Platt needs both classes; otherwise leave the column as it is.
      const pl = yk.includes(0) && yk.includes(1) ? fitPlatt(z, yk) : { a: 1, b: 0 };
      const t = bestF1Threshold(
        z.map((x) => sigmoid(pl.a * x + pl.b)),
        yk,
      ).threshold;
      if (Number.isFinite(t)) {
        thresholds = thresholds ?? {};
        thresholds[(task === "binary" ? labels[labels.length - 1] : labels[k]) as string] = Number(
          t.toFixed(4),
        );
      }
      return pl;
    });
    calibrate = (m) =>
      affineColumns(
        m,
        platt.map((p) => p.a),
        platt.map((p) => p.b),
      );
  }
  const result = trainTextModel({ ...base, rows: options.trainRows });
  const model = calibrate ? calibrate(result.model) : result.model;
  const quantized = quantizeInt8(model);
  const trainingMs = Date.now() - started;
  const E = featurizeTexts(
    options.testRows.map((r) => r.text),
    spec,
  );
  for (const [k, x] of Object.entries(
    evaluateModel(
      quantized,
      E,
      options.testRows.map((r) => r.target),
    ),
  ))
    metrics[k === "rows" ? "test_rows" : `test_${k}`] = x;
  return { quantized, metrics, trainingMs, ...(thresholds && { thresholds }) };
}
