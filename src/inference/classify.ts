/**
 * The one classification core behind every protocol: the native `/api/v1/predict`, the seed
 * services' compatibility routes and the Open Inference Protocol adapter all parse their own
 * request shape, call these functions, and shape the result. Limits (text size, batch), model
 * resolution, the model-kind check and the prediction log live here once.
 */
import type { Config } from "../config";
import type { RequestState } from "../context";
import { ApiError } from "../errors";
import type { DecodedImage } from "../image/decode";
import { logSyncPrediction } from "../predictions/log";
import { type ModelRef, runTensors, scoreTexts, withModel } from "./engine";
import { checkImageSource, type ImageSource, scoreImage, scoreImages } from "./image";

import { requireImageModel, requireTensorModel, requireTextModel } from "./kinds";
import { flaggedLabels, resolveNetwork } from "./network";
import { exampleInputs, type WireTensor } from "./tensors";

export type { ImageSource } from "./image";

/** Scores of a batch of texts or images by one model version, in the manifest's label order. */
export interface Classification {
  model: ModelRef;
  labels: readonly string[];
  /** One probability vector per input. */
  scores: Float32Array[];
  /** Per-label decision thresholds the model declares (text models with calibration), if any. */
  thresholds?: Record<string, number> | undefined;
}

/** Which model to use: `model` (else the configured default) at `version` (else the active one). */
export interface ModelChoice {
  model?: string | undefined;
  version?: string | undefined;
  /** A network variant the model declares (`networks` in its manifest; see `resolveNetwork`). */
  network?: string | undefined;
}

/** A labelled score. */
export interface LabelScore {
  label: string;
  score: number;
}

/** Labels with their scores, best first, cut to `nTop` (all when undefined). */
export function ranked(labels: readonly string[], scores: ArrayLike<number>, nTop?: number): LabelScore[] {
  return labels
    .map((label, i) => ({ label, score: scores[i] as number }))
    .sort((a, b) => b.score - a.score)
    .slice(0, nTop ?? labels.length);
}

/**
 * Checks texts against the configured limits: 1..`MAX_BATCH` texts, none blank, each at most
 * `MAX_TEXT_BYTES` of UTF-8. `path(i)` names text i in error messages (e.g. `texts.3`).
 */
export function checkTextLimits(
  texts: readonly string[],
  state: RequestState,
  path: (i: number) => string,
): void {
  const { MAX_BATCH: maxBatch, MAX_TEXT_BYTES: maxTextBytes } = state.config;
  if (texts.length === 0) {
    throw new ApiError("invalid_request", "no text to classify", {
      extensions: { errors: [{ path: path(0), message: "at least one text is required" }] },
    });
  }
  if (texts.length > maxBatch) {
    throw new ApiError("batch_too_large", `${texts.length} texts in one request; the limit is ${maxBatch}`, {
      extensions: { limit: maxBatch },
    });
  }
  const encoder = new TextEncoder();
  texts.forEach((t, i) => {
    if (t.trim() === "") {
      throw new ApiError("invalid_request", `${path(i)}: must not be empty`, {
        extensions: { errors: [{ path: path(i), message: "must not be empty" }] },
      });
    }
    // Cheap bound first: a UTF-8 encoding is at most 3 bytes per UTF-16 unit.
    if (t.length * 3 > maxTextBytes && encoder.encode(t).byteLength > maxTextBytes) {
      throw new ApiError("text_too_large", `${path(i)} exceeds ${maxTextBytes} bytes of UTF-8`, {
        extensions: { limit_bytes: maxTextBytes },
      });
    }
  });
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
  const { config } = state;
  const id = await resolveNetwork(
    env.MODELS,
    config,
    choice.model ?? config.DEFAULT_MODEL,
    choice.version,
    choice.network,
  );
  const result = await withModel(env.MODELS, config, id, choice.version, async (m) => {
    const model = requireTextModel(m);
    return {
      model: { id: m.meta.id, version: m.meta.version },
      labels: m.meta.labels,
      scores: await scoreTexts(model, texts),
      thresholds: model.meta.thresholds,
    };
  });
  state.model = result.model;
  logSyncPrediction(env, ctx, state, result.labels, result.scores, texts);
  return result;
}

/**
 * Runs a `tensor` model on protocol tensors (no featurizer, no preprocessing); refuses a text or
 * image model with 400 `model_input_mismatch`, more than `MAX_BATCH` rows with 413. Records the
 * model on the request state. Nothing is logged: the prediction log holds labelled scores.
 */
export async function inferTensors(
  env: Env,
  state: RequestState,
  choice: ModelChoice,
  inputs: readonly WireTensor[],
): Promise<{ model: ModelRef; outputs: WireTensor[] }> {
  const maxBatch = state.config.MAX_BATCH;
  const rows = Math.max(...inputs.map((t) => t.shape[0] ?? 0));
  if (rows > maxBatch) {
    throw new ApiError("batch_too_large", `${rows} rows in one request; the limit is ${maxBatch}`, {
      extensions: { limit: maxBatch },
    });
  }
  const id = choice.model ?? state.config.DEFAULT_MODEL;
  const result = await withModel(env.MODELS, state.config, id, choice.version, async (m) => ({
    model: { id: m.meta.id, version: m.meta.version },
    outputs: await runTensors(requireTensorModel(m), inputs),
  }));
  state.model = result.model;
  return result;
}

/**
 * Classifies images with an image model (`DEFAULT_IMAGE_MODEL` when none is named);
 * refuses a text model with 400 `model_input_mismatch`. Every image is checked (header, limits,
 * decode budget) before the model is loaded, so bad input never costs a model load; the pixels are
 * decoded for the model's input once it is known (`decodeForModel`).
 */
export async function classifyImages(
  env: Env,
  ctx: ExecutionContext,
  state: RequestState,
  choice: ModelChoice,
  images: readonly ImageSource[],
): Promise<Classification> {
  const checked = images.map(checkImageSource);
  const id = choice.model ?? state.config.DEFAULT_IMAGE_MODEL;
  const result = await scoreImages(env.MODELS, state.config, id, choice.version, checked);
  state.model = result.model;
  logSyncPrediction(env, ctx, state, result.labels, result.scores);
  return result;
}

/**
 * Loads model `id` (at `version`, else its active version) and runs it once on a blank input: a
 * readiness probe that logs nothing. Throws what loading throws (404, 503).
 */
export async function probeModel(
  bucket: R2Bucket,
  config: Config,
  id: string,
  version: string | undefined,
): Promise<ModelRef> {
  return withModel(bucket, config, id, version, async (m) => {
    if (m.meta.kind === "image") {
      const { width, height } = m.meta.preprocess;
      const blank: DecodedImage = {
        format: "png",
        width,
        height,
        channels: 1,
        data: new Uint8Array(width * height),
      };
      await scoreImage(requireImageModel(m), blank);
    } else if (m.meta.kind === "tensor") {
      await runTensors(requireTensorModel(m), exampleInputs(m.meta)[0] ?? []);
    } else await scoreTexts(requireTextModel(m), ["ready"]);
    return { id: m.meta.id, version: m.meta.version };
  });
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
