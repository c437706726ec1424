/**
 * The scoring core: every path that classifies — the native routes, the Open Inference Protocol
 * adapter, the replaced services' routes, the queue consumer (text and image) and the online
 * learner's snapshot predictions — calls these functions. The core resolves the model once (id,
 * version, network variant), loads it, checks its kind, applies the input limits, runs it and
 * returns every label's score. It takes config and bindings, never a request, and writes no log:
 * recording the choice on a request and logging is `classify.ts` (sync) or the queue consumer's job,
 * both through `predictionLogEntries`. Shaping (ranking, `n_top`, protocol answers) is the caller's.
 */
import type { Config } from "../config";
import type { ModelRef, TextInputManifest, TextModelManifest } from "../contracts/manifest";
import { observeText, type Signals } from "../drift/profile";
import { ApiError } from "../errors";
import { featurize } from "../featurizer/text";
import { checkImage, decodeBase64Image, MAX_DECODED_PIXELS, readImageHeader } from "../image/decode";
import type { DecodedImage } from "../image/pixels";
import { assignCaller, type RolloutCallersEnv } from "../rollout/callers";
import { resolveVersion } from "../storage/model-store";
import { checkImagePixels, checkImageRuns, checkTextBudget, type WorkBudget } from "./budget";
import { explainGraphOf, runTensors, scoreFeatureRows, scoreTexts, withModel } from "./engine";
import { type ExplainOptions, explainTexts, explainUnsupported, type TextExplanation } from "./explain";
import { type CheckedImageSource, type ImageSource, scoreImage, scoreImages } from "./image";

export type { ImageSource } from "./image";

import { modelInput, requireImageModel, requireTensorModel, requireTextModel } from "./kinds";
import { resolveNetwork } from "./network";
import type { LoadedModel } from "./session-cache";
import { batchRows, exampleInputs, type OutputTensor, type WireTensor } from "./tensors";

/** Scores of a batch of texts or images by one model version, in the manifest's label order. */
export interface Classification {
  model: ModelRef;
  labels: readonly string[];
  /** One probability vector per input. */
  scores: Float32Array[];
  /** Per-label decision thresholds the model declares (text models with calibration), if any. */
  thresholds?: Record<string, number> | undefined;
  /** Per text, why the model scored it so (`TextScoring.explain`; text models only). */
  explanations?: TextExplanation[] | undefined;
  /**
   * The inputs' drift signals (src/drift/profile.ts: text length and hashed-bucket groups, or image
   * pixels and brightness) summed over the batch; absent when `DRIFT=off`.
   */
  inputSignals?: Signals | undefined;
}

/**
 * Which model to use: `model` (else the configured default) at `version` (else the version the
 * model's traffic split assigns to `caller`, else the active one; see `chooseVersion`).
 */
export interface ModelChoice {
  model?: string | undefined;
  version?: string | undefined;
  /**
   * Who asks (the ASAP issuer; adapters fill it from the request state): a model with a traffic
   * split serves each caller one version (docs/rollout.md). Absent: the active version.
   */
  caller?: string | undefined;
  /** A network variant the model declares (`networks` in its manifest; see `resolveNetwork`). */
  network?: string | undefined;
}

/** The bindings the scoring core uses: model bytes in R2, and the split's callers (`chooseVersion`). */
export interface ScoringEnv extends RolloutCallersEnv {
  MODELS: R2Bucket;
}

/**
 * The version of model `id` that serves `choice`: the explicit `version`; else, when the model has
 * a traffic split and `choice.caller` is known, the split's version for that caller (its stored
 * position, src/rollout/callers.ts: one `RolloutCallers` RPC per new caller per isolate; 503
 * `rollout_unavailable` when that object fails); else the active one. The one place a request's
 * version is chosen, for every path (native, Open Inference Protocol, replaced services' routes,
 * async submit).
 */
export function chooseVersion(
  env: ScoringEnv,
  config: Pick<Config, "ACTIVE_POINTER_TTL_MS">,
  id: string,
  choice: Pick<ModelChoice, "version" | "caller">,
): Promise<string> {
  const { caller } = choice;
  return resolveVersion(
    env.MODELS,
    id,
    choice.version,
    config.ACTIVE_POINTER_TTL_MS,
    caller === undefined ? undefined : (split) => assignCaller(env, id, caller, split),
  );
}

/** A labelled score. */
export interface LabelScore {
  label: string;
  score: number;
}

/** Labels with their scores, best first (ties keep label order), cut to `nTop` (all when undefined). */
export function ranked(labels: readonly string[], scores: ArrayLike<number>, nTop?: number): LabelScore[] {
  return labels
    .map((label, i) => ({ label, score: scores[i] as number }))
    .sort((a, b) => b.score - a.score)
    .slice(0, nTop ?? labels.length);
}

/** The input limits the core applies (a `Config` has them). */
export type TextLimits = Pick<Config, "MAX_BATCH" | "MAX_TEXT_BYTES"> & WorkBudget;

/**
 * Checks texts against the configured limits: 1..`MAX_BATCH` texts, none blank, each at most
 * `MAX_TEXT_BYTES` of UTF-8, all together at most the request's work budget
 * (`MAX_REQUEST_TEXT_BYTES`, ./budget.ts). `path(i)` names text i in error messages (e.g. `texts.3`).
 */
export function checkTexts(texts: readonly string[], limits: TextLimits, path: (i: number) => string): void {
  const { MAX_BATCH: maxBatch, MAX_TEXT_BYTES: maxTextBytes } = limits;
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
  checkTextBudget(limits, texts);
}

/** Options of `scoreTextInputs`. */
export interface TextScoring {
  /** Checks the loaded text model's manifest before it runs (throw to refuse it). */
  accept?: (manifest: TextInputManifest) => void;
  /** Explain each text's scores (./explain.ts); a model without hashed n-grams is refused (400). */
  explain?: ExplainOptions | undefined;
}

/**
 * Scores `texts` (already checked with `checkTexts`) with a text model (the configured default when
 * `choice.model` is absent); refuses an image or tensor model with 400 `model_input_mismatch`.
 */
export async function scoreTextInputs(
  env: ScoringEnv,
  config: Config,
  choice: ModelChoice,
  texts: readonly string[],
  options: TextScoring = {},
): Promise<Classification> {
  const bucket = env.MODELS;
  const id = await resolveNetwork(
    bucket,
    config,
    choice.model ?? config.DEFAULT_MODEL,
    choice.version,
    choice.network,
  );
  const version = await chooseVersion(env, config, id, choice);
  return withModel(bucket, config, id, version, async (m) => {
    const explain = options.explain;
    if (explain && (modelInput(m.meta) !== "text" || m.meta.kind === "raw-text")) {
      throw await explainUnsupported(m.meta.id, m.meta.kind ?? "text", explain);
    }
    const model = requireTextModel(m);
    options.accept?.(model.meta);
    const profile = config.DRIFT !== "off";
    const inputSignals: Signals | undefined = profile ? {} : undefined;
    if (explain) {
      const text = model as LoadedModel<TextModelManifest>;
      const features = texts.map((t) => featurize(t, text.meta.featurizer));
      const buckets = text.meta.featurizer.buckets;
      if (inputSignals) {
        features.forEach((row, i) => {
          observeText(inputSignals, texts[i] as string, { ids: row.ids, buckets });
        });
      }
      const scores = await scoreFeatureRows(text, features);
      const graph = await explainGraphOf(bucket, config, text);
      const explanations = await explainTexts(
        config,
        text.meta,
        graph,
        texts,
        features,
        scores,
        explain,
        (rows) => scoreFeatureRows(text, rows),
      );
      return {
        model: { id: m.meta.id, version: m.meta.version },
        labels: m.meta.labels,
        scores,
        thresholds: text.meta.thresholds,
        explanations,
        inputSignals,
      };
    }
    const buckets = model.meta.kind === "raw-text" ? 0 : model.meta.featurizer.buckets;
    let featurized = false;
    const scores = await scoreTexts(
      model,
      texts,
      inputSignals &&
        ((rows) => {
          featurized = true;
          rows.forEach((row, i) => {
            observeText(inputSignals, texts[i] as string, { ids: row.ids, buckets });
          });
        }),
    );
    // A raw-text graph has no featurized rows: length only.
    if (inputSignals && !featurized) for (const t of texts) observeText(inputSignals, t);
    return {
      model: { id: m.meta.id, version: m.meta.version },
      labels: m.meta.labels,
      scores,
      thresholds: model.meta.thresholds,
      inputSignals,
    };
  });
}

/**
 * Checks image sources within the request's work budget (./budget.ts): the count of images (model
 * runs) first, then every file's base64, header, size limits and decode budget (headers only), then each file's decode budget (`checkImage`; no pixels decoded) and the batch's pixel count, each image counted as the pixels that reach
 * preprocessing (at most `MAX_DECODED_PIXELS`: larger photos are decoded at a reduced scale). Bad
 * input is refused (400/413/415) before any model work, a batch over the budget (413
 * `work_budget_exceeded`) before any decode.
 */
export function checkImageSources(config: Config, sources: readonly ImageSource[]): CheckedImageSource[] {
  checkImageRuns(config, sources.length);
  const files = sources.map((source) =>
    "pixels" in source ? source : { bytes: decodeBase64Image(source.base64) },
  );
  checkImagePixels(
    config,
    files.map((file) => {
      const { width, height } = "pixels" in file ? file.pixels : readImageHeader(file.bytes);
      const scale = Math.min(1, Math.sqrt(MAX_DECODED_PIXELS / (width * height)));
      return {
        width: Math.max(1, Math.floor(width * scale)),
        height: Math.max(1, Math.floor(height * scale)),
      };
    }),
  );
  return files.map((file) =>
    "pixels" in file ? file : { bytes: file.bytes, checked: checkImage(file.bytes) },
  );
}

/**
 * Classifies images with an image model (`DEFAULT_IMAGE_MODEL` when none is named);
 * refuses a text model with 400 `model_input_mismatch`. The batch must fit the request's work
 * budget (`checkImageSources`); every image is decoded before the model is loaded, so bad input
 * never costs a model load.
 */
export async function scoreImageInputs(
  env: ScoringEnv,
  config: Config,
  choice: ModelChoice,
  images: readonly ImageSource[],
  explain?: ExplainOptions,
): Promise<Classification> {
  if (explain) throw await explainUnsupported(choice.model ?? config.DEFAULT_IMAGE_MODEL, "image", explain);
  const checked = checkImageSources(config, images);
  const id = choice.model ?? config.DEFAULT_IMAGE_MODEL;
  const version = await chooseVersion(env, config, id, choice);
  return scoreImages(env.MODELS, config, id, version, checked, config.DRIFT !== "off");
}

/**
 * Runs a `tensor` model on protocol tensors (no featurizer, no preprocessing); refuses a text or
 * image model with 400 `model_input_mismatch`, more than `MAX_BATCH` rows in a declared batch
 * dimension (`batchRows`) with 400 `batch_too_large` (checked once the manifest is known).
 */
export async function inferTensorInputs(
  env: ScoringEnv,
  config: Config,
  choice: ModelChoice,
  inputs: readonly WireTensor[],
  explain?: ExplainOptions,
): Promise<{ model: ModelRef; outputs: OutputTensor[] }> {
  if (explain) throw await explainUnsupported(choice.model ?? config.DEFAULT_MODEL, "tensor", explain);
  const maxBatch = config.MAX_BATCH;
  const id = choice.model ?? config.DEFAULT_MODEL;
  const version = await chooseVersion(env, config, id, choice);
  return withModel(env.MODELS, config, id, version, async (m) => {
    const model = requireTensorModel(m);
    // Only declared batch dimensions count: a fixed [100, 3] input is not 100 rows.
    const rows = batchRows(model.meta.inputs, inputs);
    if (rows > maxBatch) {
      throw new ApiError("batch_too_large", `${rows} rows in one request; the limit is ${maxBatch}`, {
        extensions: { limit: maxBatch },
      });
    }
    return { model: { id: m.meta.id, version: m.meta.version }, outputs: await runTensors(model, inputs) };
  });
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
