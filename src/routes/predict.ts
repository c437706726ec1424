import { z } from "zod";
import type { Handler } from "../context";
import { ApiError } from "../errors";
import { json, readJsonBody, validate } from "../http";
import { scoreTexts, withModel } from "../inference/engine";
import { MODEL_ID_RE, MODEL_VERSION_RE } from "../inference/manifest";

const SUPPORTED_ENCODINGS = new Set(["utf-8", "utf8"]);

/** Body of `POST /api/v1/predict` (seed-compatible; unknown fields are ignored). */
export const predictRequestSchema = z.object({
  request_id: z.union([z.string().max(128), z.number().finite()]).optional(),
  text: z.string().optional(),
  texts: z.array(z.string()).min(1, "texts must hold at least one text").optional(),
  /** Accepted for compatibility with the seed API; the model is chosen by `model`. */
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

/** Checks what the schema cannot: text/texts exclusivity, emptiness, sizes, batch and encoding. */
function checkTexts(body: PredictRequest, maxTextBytes: number, maxBatch: number): string[] {
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
 * `POST /api/v1/predict`: scores `text` (or each of `texts`) with a model from R2.
 * `n_top` keeps the n highest-scoring labels (clamped to the label count).
 */
export const predict: Handler = async (request, env) => {
  const { config } = request.state;
  const body = validate(predictRequestSchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  request.state.clientRequestId = body.request_id;
  const texts = checkTexts(body, config.MAX_TEXT_BYTES, config.MAX_BATCH);
  const modelId = body.model ?? config.DEFAULT_MODEL;

  const { model, results } = await withModel(env.MODELS, config, modelId, body.version, async (m) => ({
    model: { id: m.meta.id, version: m.meta.version },
    results: (await scoreTexts(m, texts)).map((s) => toLabelScores(m.meta.labels, s, body.n_top)),
  }));
  request.state.model = model;

  const common = { request_id: body.request_id ?? request.state.requestId };
  const tail = { ...(body.language !== undefined && { language: body.language }), model };
  if (body.texts) return json({ ...common, results: results.map((sentiment) => ({ sentiment })), ...tail });
  return json({ ...common, sentiment: results[0], ...tail });
};
