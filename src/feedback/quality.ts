/**
 * Live quality of model versions from feedback (docs/rollout.md): pure computation over labelled
 * items (the true labels a caller sent and the scores the version gave), no request, no storage.
 *
 * A version decides as its answers do: multilabel labels are predicted at the manifest's threshold
 * (0.5 for a label without one); binary predicts the positive (last) label at its threshold (0.5
 * without); multiclass predicts the argmax. Accuracy is top-1 (binary, multiclass) or exact-set
 * (multilabel); precision and recall are per label, one against the rest; ROC-AUC (rank-based,
 * ties averaged) is given for the positive label of a binary model and each label of a multilabel
 * model once a label has `MIN_AUC_CLASS` positives and as many negatives.
 */
import type { z } from "zod";
import type { LabelQualitySchema } from "../answers";

/** Positives and negatives each needed before a label's ROC-AUC is reported. */
export const MIN_AUC_CLASS = 10;

/** How a version decides: its task, labels in output order, and thresholds (manifest). */
export interface DecisionRule {
  task: "binary" | "multiclass" | "multilabel";
  labels: readonly string[];
  thresholds?: Readonly<Record<string, number>> | undefined;
}

/** One labelled item: the true labels and the version's score per label. */
export interface LabelledItem {
  labels: readonly string[];
  scores: Readonly<Record<string, number>>;
}

/** The threshold a label is decided at (undefined: argmax, multiclass). */
export function thresholdOf(rule: DecisionRule, label: string): number | undefined {
  if (rule.task === "multiclass") return undefined;
  return rule.thresholds?.[label] ?? 0.5;
}

/** The labels `rule` predicts from `scores`, in label order. */
export function predictedLabels(rule: DecisionRule, scores: Readonly<Record<string, number>>): string[] {
  const { labels } = rule;
  if (rule.task === "multilabel") {
    return labels.filter((l) => (scores[l] ?? 0) >= (thresholdOf(rule, l) as number));
  }
  if (rule.task === "binary" && labels.length === 2) {
    const [negative, positive] = labels as [string, string];
    return [(scores[positive] ?? 0) >= (thresholdOf(rule, positive) as number) ? positive : negative];
  }
  let best: string | undefined;
  for (const l of labels) if (best === undefined || (scores[l] ?? 0) > (scores[best] ?? 0)) best = l;
  return best === undefined ? [] : [best];
}

/** Whether a prediction matches the true labels (top-1, or the exact set for multilabel). */
export function isCorrect(predicted: readonly string[], truth: readonly string[]): boolean {
  return predicted.length === truth.length && predicted.every((l) => truth.includes(l));
}

/**
 * Rank-based ROC-AUC (the Mann–Whitney U statistic over positives × negatives, ties counted half
 * through average ranks); undefined without both classes.
 */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number | undefined {
  const order = scores.map((_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1] as number] === scores[order[i] as number]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (positive[order[k] as number]) {
        positives++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return undefined;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** One label's quality figures. */
export type LabelQuality = z.input<typeof LabelQualitySchema>;

/** A version's live quality. */
export interface VersionQuality {
  feedback: number;
  correct: number;
  accuracy: number | null;
  labels: LabelQuality[];
}

/** The quality of one version from its labelled items. */
export function versionQuality(rule: DecisionRule, items: readonly LabelledItem[]): VersionQuality {
  const predictions = items.map((item) => predictedLabels(rule, item.scores));
  let correct = 0;
  predictions.forEach((p, i) => {
    if (isCorrect(p, (items[i] as LabelledItem).labels)) correct++;
  });
  // ROC-AUC where a score ranks one label against the rest: binary's positive label, every multilabel label.
  const aucLabels = new Set(
    rule.task === "multilabel" ? rule.labels : rule.task === "binary" ? rule.labels.slice(-1) : [],
  );
  const labels = rule.labels.map((label): LabelQuality => {
    let positives = 0;
    let predictedPositive = 0;
    let truePositives = 0;
    const truth = items.map((item) => item.labels.includes(label));
    truth.forEach((t, i) => {
      const p = (predictions[i] as string[]).includes(label);
      if (t) positives++;
      if (p) predictedPositive++;
      if (t && p) truePositives++;
    });
    const negatives = items.length - positives;
    const auc =
      aucLabels.has(label) && positives >= MIN_AUC_CLASS && negatives >= MIN_AUC_CLASS
        ? rocAuc(
            items.map((item) => item.scores[label] ?? 0),
            truth,
          )
        : undefined;
    // A binary model's negative label is predicted when the positive one is under its threshold.
    const positive = rule.task === "binary" ? rule.labels[rule.labels.length - 1] : undefined;
    const complement = positive !== undefined && label !== positive;
    const threshold = thresholdOf(rule, complement ? positive : label);
    return {
      label,
      rule: threshold === undefined ? "argmax" : complement ? "complement" : "threshold",
      threshold: threshold ?? null,
      positives,
      negatives,
      predicted_positive: predictedPositive,
      true_positives: truePositives,
      precision: predictedPositive > 0 ? truePositives / predictedPositive : null,
      recall: positives > 0 ? truePositives / positives : null,
      roc_auc: auc ?? null,
    };
  });
  return {
    feedback: items.length,
    correct,
    accuracy: items.length > 0 ? correct / items.length : null,
    labels,
  };
}
