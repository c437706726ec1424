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
import type { ExplainOptions } from "../inference/explain";
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
import { listModelSummaries } from "../registry/list";
import { logSyncPrediction } from "./log";
import { type ShadowInputs, shadowAfter } from "./shadow";

/**
 * A request's `explain` (`explain_top` n-grams per label) as the core's option, with the registry's
 * text models to name when the model cannot explain.
 */
export function explainOption(
  env: Env,
  state: RequestState,
  explain: boolean | undefined,
  top: number | undefined,
): ExplainOptions | undefined {
  if (!explain) return undefined;
  return {
    top,
    explainable: async () =>
      (await listModelSummaries(env, state.config.DEFAULT_MODEL))
        .filter((m) => m.kind === "text" && m.active_version !== null)
        .map((m) => m.id),
  };
}

export { type TextAnswer, textAnswer } from "../inference/answers";
export {
  type Classification,
  checkImageSources,
  chooseVersion,
  type ImageSource,
  type LabelScore,
  type ModelChoice,
  probeModel,
  ranked,
} from "../inference/score";

/**
 * `choice` with the request's caller: a model with a traffic split serves each caller (ASAP issuer)
 * one version; an unauthenticated request has none and gets the active version.
 */
export function callerChoice(state: RequestState, choice: ModelChoice): ModelChoice {
  return { ...choice, caller: choice.caller ?? state.caller?.issuer };
}

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
  explain?: ExplainOptions,
): Promise<Classification> {
  const result = await scoreTextInputs(env, state.config, callerChoice(state, choice), texts, {
    explain,
  });
  return recorded(env, ctx, state, result, { texts }, texts);
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
  explain?: ExplainOptions,
): Promise<{ model: ModelRef; outputs: OutputTensor[] }> {
  const result = await inferTensorInputs(env, state.config, callerChoice(state, choice), inputs, explain);
  state.model = result.model;
  state.served = result.model;
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
  explain?: ExplainOptions,
): Promise<Classification> {
  const result = await scoreImageInputs(env, state.config, callerChoice(state, choice), images, explain);
  return recorded(env, ctx, state, result, { images });
}

/**
 * Records the model that answered on the request, logs every item's scores (texts when given),
 * schedules the model's shadow versions on the same inputs (after the answer; `shadowAfter`) and
 * adds the inputs to the version's live profile (src/drift/live.ts; sent after the answer).
 */
function recorded(
  env: Env,
  ctx: ExecutionContext,
  state: RequestState,
  result: Classification,
  inputs: ShadowInputs,
  texts?: readonly string[],
): Classification {
  state.model = result.model;
  state.served = result.model;
  logSyncPrediction(env, ctx, state, result.labels, result.scores, texts);
  shadowAfter(env, ctx, state.config, result, inputs, state.logger);
  recordLiveProfile(ctx, env, state.config, result, (error, items) =>
    state.logger.log("error", "drift_record_failed", {
      model: result.model.id,
      inputs: items,
      error: error instanceof Error ? error.message : String(error),
    }),
  );
  return result;
}
