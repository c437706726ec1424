import type { TextFeaturizerSpec } from "../../src/featurizer/text";
import { bestF1Threshold } from "../../src/training/calibration";
import {
  capBuckets,
  identityBigramBuckets,
  identityChunkBuckets,
  identityWords,
} from "../../src/training/cap";
import { validationFoldOf } from "../../src/training/folds";
import {
  accuracy,
  encodeTargets,
  maskColumns,
  maskPerRow,
  type SparseMatrix,
  type TrainingRow,
} from "../../src/training/index";
import type { Dataset, ModelConfig } from "./catalogue";

/**
 * Validation folds as train-row indices. `k = 1`: the fixed fold (`isValidationRow`, data rows with
 * i % 5 == 3); `k = 4`: 4-fold CV, fold f validates on the data rows with i % 5 == f (the test rows,
 * i % 5 == 4, are never in a fold). Rows without a data index (extra data, index −1) only ever fit.
 */
export function validationFolds(data: Dataset, k: number): { fit: number[]; val: number[] }[] {
  if (k !== 1 && k !== 4)
    throw new Error(`folds must be 1 (fixed validation fold) or 4 (4-fold CV), not ${k}`);
  return Array.from({ length: k }, (_, f) => {
    const fit: number[] = [];
    const val: number[] = [];
    data.trainIndex.forEach((i, t) => {
      (validationFoldOf(i, k) === f ? val : fit).push(t);
    });
    return { fit, val };
  });
}

/** The train split cut into the rows that fit and the fixed validation fold (`isValidationRow`). */
export function validationSplit(data: Dataset): { fitRows: TrainingRow[]; valRows: TrainingRow[] } {
  const [{ fit, val }] = validationFolds(data, 1) as [{ fit: number[]; val: number[] }];
  const rowsOf = (idx: number[]) => idx.map((t) => data.train[t] as TrainingRow);
  return { fitRows: rowsOf(fit), valRows: rowsOf(val) };
}

/** The targets of `rows`, encoded for `cfg`'s task and labels. */
export function encodeRows(cfg: Pick<ModelConfig, "task" | "labels">, rows: readonly TrainingRow[]) {
  return encodeTargets(
    cfg.task,
    cfg.labels.length,
    rows.map((r) => r.target),
    "none",
  );
}

export const sig = (z: number): number => 1 / (1 + Math.exp(-z));

/** The label whose score a column's threshold applies to (binary: the last label). */
export const columnLabel = (cfg: ModelConfig, k: number): string =>
  cfg.task === "binary" ? (cfg.labels[cfg.labels.length - 1] as string) : (cfg.labels[k] as string);

export function chooseThreshold(
  rule: ModelConfig["thresholdRule"],
  p: number[],
  y: number[],
  weight?: Float64Array,
): number {
  if (rule === "f1") return bestF1Threshold(p, y, weight).threshold;
  if (rule === "accuracy") {
    // Calibrated probabilities: 0.5 maximises expected accuracy; keep it unless the fold disagrees clearly.
    let best = {
      t: 0.5,
      acc: accuracy(
        p.map((v) => (v >= 0.5 ? 1 : 0)),
        y,
      ),
    };
    for (let t = 0.3; t <= 0.7001; t += 0.01) {
      const acc = accuracy(
        p.map((v) => (v >= t ? 1 : 0)),
        y,
      );
      if (acc > best.acc + 0.002) best = { t: Number(t.toFixed(2)), acc };
    }
    return best.t;
  }
  // Spam: never flag a validation ham; the threshold sits halfway between the highest ham score and
  // the next spam score above it, and at least at the F1-best threshold.
  const maxHam = Math.max(...p.filter((_, i) => y[i] === 0));
  const above = p.filter((v, i) => y[i] === 1 && v > maxHam);
  const noFp = above.length ? (maxHam + Math.min(...above)) / 2 : maxHam + (1 - maxHam) / 2;
  return Math.max(noFp, bestF1Threshold(p, y, weight).threshold);
}

/**
 * Issue #28's `--mask-identity[=bigrams|=chunks]` on training features `X` of `rows` (featurized
 * with `spec`): the identity buckets of `src/training/cap.ts` set to 0 in every row (`masked`), and
 * per row the bigrams containing an identity word and (chunks) every character n-gram of an identity
 * chunk. `X` unchanged when `cfg` asks for no mask.
 */
export function maskIdentityFeatures(
  cfg: Pick<ModelConfig, "maskIdentity" | "maskIdentityBigrams" | "maskIdentityChunks">,
  spec: TextFeaturizerSpec,
  rows: readonly TrainingRow[],
  X: SparseMatrix,
  log: (line: string) => void,
): { X: SparseMatrix; masked?: Set<number> } {
  if (!cfg.maskIdentity) return { X };
  const masked = capBuckets(spec, { identity: true, address: false });
  log(`--mask-identity: ${masked.size} identity buckets set to 0 in every training row`);
  let out = maskColumns(X, masked);
  if (cfg.maskIdentityBigrams) {
    const words = new Set(identityWords());
    const perRow = rows.map((r) => {
      const b = identityBigramBuckets(r.text, spec, words);
      if (cfg.maskIdentityChunks) for (const x of identityChunkBuckets(r.text, spec, words)) b.add(x);
      return b;
    });
    out = maskPerRow(out, (i) => perRow[i] as Set<number>);
    log(
      `--mask-identity=${cfg.maskIdentityChunks ? "chunks" : "bigrams"}: ${perRow.reduce((n, s) => n + s.size, 0)} identity n-gram features set to 0 in ${perRow.filter((s) => s.size > 0).length} rows`,
    );
  }
  return { X: out, masked };
}
