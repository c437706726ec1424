/**
 * Evaluation metrics, matching scikit-learn's definitions: `roc_auc_score` (ties get average
 * ranks), `accuracy_score`, and macro-averaged `precision/recall/f1` (a class with no predicted or
 * no true rows contributes 0 to the precision/recall average, sklearn's `zero_division=0`).
 */

/** ROC-AUC of `scores` against 0/1 `truth`; NaN when only one class is present. */
export function rocAuc(scores: ArrayLike<number>, truth: ArrayLike<number>): number {
  const n = scores.length;
  if (truth.length !== n) throw new Error("scores and truth differ in length");
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (scores[a] as number) - (scores[b] as number),
  );
  let positives = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1] as number] === scores[order[i] as number]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (truth[order[t] as number] === 1) {
        positives++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSumPos - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Fraction of positions where `predicted[i] === truth[i]`. */
export function accuracy(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (predicted.length !== truth.length) throw new Error("predicted and truth differ in length");
  let ok = 0;
  for (let i = 0; i < truth.length; i++) if (predicted[i] === truth[i]) ok++;
  return truth.length === 0 ? Number.NaN : ok / truth.length;
}

/** Macro-averaged precision, recall and F1 over classes `0 .. classes-1`. */
export function precisionRecallF1Macro(
  predicted: ArrayLike<number>,
  truth: ArrayLike<number>,
  classes: number,
): { precision: number; recall: number; f1: number } {
  const tp = new Float64Array(classes);
  const predCount = new Float64Array(classes);
  const trueCount = new Float64Array(classes);
  for (let i = 0; i < truth.length; i++) {
    const p = predicted[i] as number;
    const t = truth[i] as number;
    predCount[p] = (predCount[p] as number) + 1;
    trueCount[t] = (trueCount[t] as number) + 1;
    if (p === t) tp[t] = (tp[t] as number) + 1;
  }
  let precision = 0;
  let recall = 0;
  let f1 = 0;
  for (let k = 0; k < classes; k++) {
    const P = (predCount[k] as number) > 0 ? (tp[k] as number) / (predCount[k] as number) : 0;
    const R = (trueCount[k] as number) > 0 ? (tp[k] as number) / (trueCount[k] as number) : 0;
    precision += P;
    recall += R;
    f1 += P + R > 0 ? (2 * P * R) / (P + R) : 0;
  }
  return { precision: precision / classes, recall: recall / classes, f1: f1 / classes };
}

/** Mean of the finite entries of `xs` (NaN when none). */
export function finiteMean(xs: readonly number[]): number {
  const f = xs.filter(Number.isFinite);
  return f.length === 0 ? Number.NaN : f.reduce((a, b) => a + b, 0) / f.length;
}

/** Accuracy and averaged precision/recall of one set of predictions (see `classificationSummary`). */
export interface ClassificationSummary {
  rows: number;
  accuracy: number;
  precision_macro: number;
  recall_macro: number;
  precision_weighted: number;
  recall_weighted: number;
}

/**
 * Accuracy and precision/recall averaged over every label present in `truth` or `predicted`, as
 * scikit-learn's `precision_recall_fscore_support(average="macro" | "weighted", zero_division=0)`
 * with its default label set: macro is the plain mean over those labels, weighted weighs each
 * label by its support (its count in `truth`). Labels are any integers; a label that is only
 * predicted has precision 0 and support 0. NaN everywhere for no rows.
 */
export function classificationSummary(
  predicted: ArrayLike<number>,
  truth: ArrayLike<number>,
): ClassificationSummary {
  const n = truth.length;
  if (predicted.length !== n) throw new Error("predicted and truth differ in length");
  const stats = new Map<number, { tp: number; predicted: number; support: number }>();
  const of = (label: number) => {
    let s = stats.get(label);
    if (!s) {
      s = { tp: 0, predicted: 0, support: 0 };
      stats.set(label, s);
    }
    return s;
  };
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const p = predicted[i] as number;
    const t = truth[i] as number;
    of(p).predicted++;
    of(t).support++;
    if (p === t) {
      of(t).tp++;
      correct++;
    }
  }
  let pMacro = 0;
  let rMacro = 0;
  let pWeighted = 0;
  let rWeighted = 0;
  for (const s of stats.values()) {
    const precision = s.predicted > 0 ? s.tp / s.predicted : 0;
    const recall = s.support > 0 ? s.tp / s.support : 0;
    pMacro += precision;
    rMacro += recall;
    pWeighted += precision * s.support;
    rWeighted += recall * s.support;
  }
  const labels = stats.size;
  return {
    rows: n,
    accuracy: n === 0 ? Number.NaN : correct / n,
    precision_macro: labels === 0 ? Number.NaN : pMacro / labels,
    recall_macro: labels === 0 ? Number.NaN : rMacro / labels,
    precision_weighted: n === 0 ? Number.NaN : pWeighted / n,
    recall_weighted: n === 0 ? Number.NaN : rWeighted / n,
  };
}
