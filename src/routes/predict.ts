import { z } from "zod";
import type { Handler } from "../context";
import { ApiError } from "../errors";
import { json, parseJsonBytes, payloadTooLarge, readJsonBodyBytes, validate } from "../http";
import { MAX_IMAGE_BASE64_CHARS } from "../image/decode";
import { scoreTexts, withModel } from "../inference/engine";
import { scoreImageInput } from "../inference/image";
import { requireTextModel } from "../inference/kinds";
import { MODEL_ID_RE, MODEL_VERSION_RE } from "../inference/manifest";
import { flaggedLabels, resolveNetwork } from "../inference/network";
import { logSyncPrediction } from "../predictions/log";

const SUPPORTED_ENCODINGS = new Set(["utf-8", "utf8"]);

/** Body of `POST /api/v1/predict` (seed-compatible; unknown fields are ignored). */
export const predictRequestSchema = z.object({
  request_id: z.union([z.string().max(128), z.number().finite()]).optional(),
  text: z.string().optional(),
  texts: z.array(z.string()).min(1, "texts must hold at least one text").optional(),
  /** Base64 PNG or JPEG for image models (see `src/image/decode.ts`). */
  image: z.string().optional(),
  /** A network variant of the model (`linear`, `mlp`, … as its manifest's `networks` declares). */
  network: z.string().max(64).optional(),
  language: z.string().max(35).optional(),
  encoding_type: z.string().max(32).optional(),
  model: z.string().regex(MODEL_ID_RE, "model must be a model id").optional(),
  version: z.string().regex(MODEL_VERSION_RE, "version must be a model version").optional(),
  n_top: z.number().int().min(1).max(4096).optional(),
});

type PredictRequest = z.infer<typeof predictRequestSchema>;

/** One label score in the seed's response shape. */
interface LabelScore {
  sentiment_type: string;
  sentiment_score: number;
}

/** Room for the base64 of a `MAX_IMAGE_BYTES` image plus the rest of the JSON body. */
const IMAGE_BODY_BYTES = MAX_IMAGE_BASE64_CHARS + 64 * 1024;

/**
 * Reads the JSON body. Only an image request may exceed `maxBodyBytes` (base64 of a 1 MiB image is
 * 1.33 MiB), up to `IMAGE_BODY_BYTES`; any other body over `maxBodyBytes` is 413 as before.
 */
export async function readPredictBody(request: Request, maxBodyBytes: number): Promise<unknown> {
  const bytes = await readJsonBodyBytes(request, Math.max(maxBodyBytes, IMAGE_BODY_BYTES));
  if (bytes.byteLength <= maxBodyBytes) return parseJsonBytes(bytes);
  let value: unknown;
  try {
    value = parseJsonBytes(bytes);
  } catch {
    throw payloadTooLarge(maxBodyBytes);
  }
  const body = value as Record<string, unknown> | null;
  if (typeof body?.image !== "string" || "text" in body || "texts" in body)
    throw payloadTooLarge(maxBodyBytes);
  return value;
}

/** Checks what the schema cannot: text/texts exclusivity, emptiness, sizes, batch and encoding. */
export function checkTexts(body: PredictRequest, maxTextBytes: number, maxBatch: number): string[] {
  if (body.encoding_type !== undefined && !SUPPORTED_ENCODINGS.has(body.encoding_type.toLowerCase())) {
    throw new ApiError(
      "unsupported_encoding",
      `encoding_type '${body.encoding_type}' is not supported; use UTF-8`,
    );
  }
  if ((body.text === undefined) === (body.texts === undefined)) {
    throw new ApiError(
      "invalid_request",
      "give exactly one of 'text' (a string) or 'texts' (an array of strings)",
      {
        extensions: { errors: [{ path: "text", message: "exactly one of text or texts is required" }] },
      },
    );
  }
  const texts = body.texts ?? [body.text as string];
  if (texts.length > maxBatch) {
    throw new ApiError("batch_too_large", `texts holds ${texts.length} texts; the limit is ${maxBatch}`, {
      extensions: { limit: maxBatch },
    });
  }
  const encoder = new TextEncoder();
  texts.forEach((t, i) => {
    const path = body.texts ? `texts.${i}` : "text";
    if (t.trim() === "") {
      throw new ApiError("invalid_request", `${path}: must not be empty`, {
        extensions: { errors: [{ path, message: "must not be empty" }] },
      });
    }
    // Cheap bound first: a UTF-8 encoding is at most 3 bytes per UTF-16 unit.
    if (t.length * 3 > maxTextBytes && encoder.encode(t).byteLength > maxTextBytes) {
      throw new ApiError("text_too_large", `${path} exceeds ${maxTextBytes} bytes of UTF-8`, {
        extensions: { limit_bytes: maxTextBytes },
      });
    }
  });
  return texts;
}

function toLabelScores(
  labels: readonly string[],
  scores: Float32Array,
  nTop: number | undefined,
): LabelScore[] {
  const all = labels.map((label, i) => ({ sentiment_type: label, sentiment_score: scores[i] as number }));
  if (nTop === undefined) return all;
  return all.sort((a, b) => b.sentiment_score - a.sentiment_score).slice(0, nTop);
}

/**
 * `POST /api/v1/predict`: scores `text` (or each of `texts`) with a text model from R2, or classifies
 * `image` (base64 PNG/JPEG) with an image model (`{request_id, predictions: [{label, score}], model}`,
 * best first). `n_top` keeps the n highest-scoring labels (clamped to the label count).
 */
export const predict: Handler = async (request, env, ctx) => {
  const { config } = request.state;
  const body = validate(predictRequestSchema, await readPredictBody(request, config.MAX_BODY_BYTES));
  request.state.clientRequestId = body.request_id;
  if (body.image !== undefined) {
    if (body.text !== undefined || body.texts !== undefined) {
      throw new ApiError("invalid_request", "give either 'image' or 'text'/'texts', not both", {
        extensions: { errors: [{ path: "image", message: "image cannot be combined with text or texts" }] },
      });
    }
    const result = await scoreImageInput(env.MODELS, config, {
      model: body.model ?? config.DEFAULT_MODEL,
      version: body.version,
      imageBase64: body.image,
      nTop: body.n_top,
    });
    request.state.model = result.model;
    const predicted = result.predictions;
    const labels = predicted.map((p) => p.label);
    logSyncPrediction(env, ctx, request.state, labels, [predicted.map((p) => p.score)]);
    return json({ request_id: body.request_id ?? request.state.requestId, ...result });
  }
  const texts = checkTexts(body, config.MAX_TEXT_BYTES, config.MAX_BATCH);
  const modelId = await resolveNetwork(
    env.MODELS,
    config,
    body.model ?? config.DEFAULT_MODEL,
    body.version,
    body.network,
  );

  const { model, labels, scores, thresholds } = await withModel(
    env.MODELS,
    config,
    modelId,
    body.version,
    async (m) => {
      const text = requireTextModel(m);
      return {
        model: { id: m.meta.id, version: m.meta.version },
        labels: m.meta.labels,
        scores: await scoreTexts(text, texts),
        thresholds: text.meta.thresholds,
      };
    },
  );
  request.state.model = model;
  logSyncPrediction(env, ctx, request.state, labels, scores, texts);
  // `flagged` only when the model declares thresholds: an empty list must mean "nothing over its threshold".
  const results = scores.map((s) => ({
    sentiment: toLabelScores(labels, s, body.n_top),
    ...(thresholds && { flagged: flaggedLabels(labels, s, thresholds) }),
  }));

  const common = { request_id: body.request_id ?? request.state.requestId };
  const tail = { ...(body.language !== undefined && { language: body.language }), model };
  if (body.texts) return json({ ...common, results, ...tail });
  return json({ ...common, ...results[0], ...tail });
};
