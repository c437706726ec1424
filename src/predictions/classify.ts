/**
 * The request level above the scoring core (`score.ts`): each function here calls the core, records
 * the model that answered on the request state and logs the predictions (`predictionLogEntries`,
 * the one builder of prediction-log rows). Adapters (routes, protocols) call these, and take the
 * core's shaping helpers and the native answer shape (`src/inference/answers.ts`) from here too;
 * paths without a request (the queue consumer, the online learner) call the core directly.
 */
import type { RequestState } from "../context";
import type { ModelRef } from "../contracts/manifest";
import { recordLiveProfile } from "../drift/live";
import {
  type Classification,
  checkTexts,
  type ImageSource,
  inferTensorInputs,
  type ModelChoice,
  scoreImageInputs,
  scoreTextInputs,
} from "../inference/score";
import type { OutputTensor, WireTensor } from "../inference/tensors";
import { logSyncPrediction } from "./log";

export { type TextAnswer, textAnswer } from "../inference/answers";
export {
  type Classification,
  checkImageSources,
  type ImageSource,
  type LabelScore,
  type ModelChoice,
  probeModel,
  ranked,
} from "../inference/score";

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
  return recorded(env, ctx, state, await scoreTextInputs(env.MODELS, state.config, choice, texts), texts);
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
): Promise<{ model: ModelRef; outputs: OutputTensor[] }> {
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
  return recorded(env, ctx, state, await scoreImageInputs(env.MODELS, state.config, choice, images));
}

/**
 * Records the model that answered on the request, logs every item's scores (texts when given) and
 * adds the inputs to the version's live profile (src/drift/live.ts; sent after the answer).
 */
function recorded(
  env: Env,
  ctx: ExecutionContext,
  state: RequestState,
  result: Classification,
  texts?: readonly string[],
): Classification {
  state.model = result.model;
  logSyncPrediction(env, ctx, state, result.labels, result.scores, texts);
  recordLiveProfile(ctx, env, state.config, result, (error, inputs) =>
    state.logger.log("error", "drift_record_failed", {
      model: result.model.id,
      inputs,
      error: error instanceof Error ? error.message : String(error),
    }),
  );
  return result;
}
