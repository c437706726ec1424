/**
 * The native text answer (`POST /api/v1/predict`, and the result of an async text prediction):
 * the seed-000 `sentiment` array, `predictions` best first and `flagged`.
 */
import type { TextExplanation } from "./explain";
import { flaggedLabels } from "./network";
import { type LabelScore, ranked } from "./score";

/** One label's score in the seed-000 shape (`sentiment`). */
export interface SeedLabelScore {
  sentiment_type: string;
  sentiment_score: number;
}

/**
 * One text's answer: the seed-000 `sentiment` (label order, or the n best), `predictions` (best
 * first) and, for a model that declares thresholds, `flagged` (labels at or over their threshold).
 */
export interface TextAnswer {
  sentiment: SeedLabelScore[];
  predictions: LabelScore[];
  flagged?: string[];
  /** Why the model scored the text so (`explain: true`). */
  explanation?: TextExplanation;
}

/**
 * The text answer of `POST /api/v1/predict` (and of async text predictions): per text, the
 * seed-000 `sentiment` — every label in label order, or with `nTop` the n best, best first —,
 * `predictions`, best first, and `flagged` when `thresholds` are given. A batch answers
 * `{results: [...]}`, one text the answer itself.
 */
export function textAnswer(
  labels: readonly string[],
  scores: readonly ArrayLike<number>[],
  nTop: number | undefined,
  batch: boolean,
  thresholds?: Record<string, number>,
  explanations?: readonly TextExplanation[],
): { results: TextAnswer[] } | TextAnswer {
  const answers = scores.map((s, i) => {
    const best = ranked(labels, s, nTop);
    const sentiment = (
      nTop === undefined ? labels.map((label, i) => ({ label, score: s[i] as number })) : best
    ).map((p) => ({ sentiment_type: p.label, sentiment_score: p.score }));
    // `flagged` only when the model declares thresholds: an empty list must mean "nothing over".
    return {
      sentiment,
      predictions: best,
      ...(thresholds && { flagged: flaggedLabels(labels, s, thresholds) }),
      ...(explanations?.[i] && { explanation: explanations[i] }),
    };
  });
  return batch ? { results: answers } : (answers[0] as TextAnswer);
}
