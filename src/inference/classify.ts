/**
 * The request level above the scoring core (`score.ts`): each function here calls the core, records
 * the model that answered on the request state and logs the predictions (`predictionLogEntries`,
 * the one builder of prediction-log rows). The native answer shape (`textAnswer`) lives here too.
 * Adapters (routes, protocols) call these; paths without a request (the queue consumer, the online
 * learner) call the core directly.
 */
import type { RequestState } from "../context";
import { logSyncPrediction } from "../predictions/log";
import type { ModelRef } from "./engine";
import { flaggedLabels } from "./network";
import {
  type Classification,
  checkTexts,
  type ImageSource,
  inferTensorInputs,
  type LabelScore,
  type ModelChoice,
  ranked,
  scoreImageInputs,
  scoreTextInputs,
} from "./score";
import type { WireTensor } from "./tensors";

export {
  type Classification,
  decodeImageSource,
  type ImageSource,
  type LabelScore,
  type ModelChoice,
  probeModel,
  ranked,
} from "./score";

/** `checkTexts` with the request's configured limits. */
export function checkTextLimits(
  texts: readonly string[],
  state: RequestState,
  path: (i: number) => string,
): void {
  checkTexts(texts, state.config, path);
}

/**
 * Classifies `texts` (already checked with `checkTextLimits`) with a text model; refuses an image
 * model with 400 `model_input_mismatch`. Records the model on the request state and logs the
 * predictions.
 */
export async function classifyTexts(
  env: Env,
  ctx: ExecutionContext,
  state: RequestState,
  choice: ModelChoice,
  texts: readonly string[],
): Promise<Classification> {
  const result = await scoreTextInputs(env.MODELS, state.config, choice, texts);
  state.model = result.model;
  logSyncPrediction(env, ctx, state, result.labels, result.scores, texts);
  return result;
}

/**
 * Runs a `tensor` model on protocol tensors; records the model on the request state. Nothing is
 * logged: the prediction log holds labelled scores.
 */
export async function inferTensors(
  env: Env,
  state: RequestState,
  choice: ModelChoice,
  inputs: readonly WireTensor[],
): Promise<{ model: ModelRef; outputs: WireTensor[] }> {
  const result = await inferTensorInputs(env.MODELS, state.config, choice, inputs);
  state.model = result.model;
  return result;
}

/**
 * Classifies images with an image model (`DEFAULT_IMAGE_MODEL` when none is named); records the
 * model on the request state and logs every label's score.
 */
export async function classifyImages(
  env: Env,
  ctx: ExecutionContext,
  state: RequestState,
  choice: ModelChoice,
  images: readonly ImageSource[],
): Promise<Classification> {
  const result = await scoreImageInputs(env.MODELS, state.config, choice, images);
  state.model = result.model;
  logSyncPrediction(env, ctx, state, result.labels, result.scores);
  return result;
}

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
): { results: TextAnswer[] } | TextAnswer {
  const answers = scores.map((s) => {
    const best = ranked(labels, s, nTop);
    const sentiment = (
      nTop === undefined ? labels.map((label, i) => ({ label, score: s[i] as number })) : best
    ).map((p) => ({ sentiment_type: p.label, sentiment_score: p.score }));
    // `flagged` only when the model declares thresholds: an empty list must mean "nothing over".
    return {
      sentiment,
      predictions: best,
      ...(thresholds && { flagged: flaggedLabels(labels, s, thresholds) }),
    };
  });
  return batch ? { results: answers } : (answers[0] as TextAnswer);
}
