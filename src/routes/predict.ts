import * as z from "zod";
import { PredictBatchAnswerSchema, PredictImageAnswerSchema, PredictTextAnswerSchema } from "../answers";
import type { Handler } from "../context";
import { MODEL_ID_RE, MODEL_VERSION_RE } from "../contracts/manifest";
import { ApiError } from "../errors";
import { parseJsonBytes, payloadTooLarge, readJsonBodyBytes, reply, validate } from "../http";
import { MAX_IMAGE_BODY_BYTES, MAX_IMAGE_BYTES } from "../image/decode";
import { EXPLAIN_TOP_MAX } from "../inference/explain";
import {
  checkTextLimits,
  classifyImages,
  classifyTexts,
  explainOption,
  ranked,
  textAnswer,
} from "../predictions/classify";

const SUPPORTED_ENCODINGS = new Set(["utf-8", "utf8"]);

/**
 * Body of `POST /api/v1/predict` (the seed-000 body is valid as sent). Strict: an unknown field is a
 * 400, so a request can never be answered by a model it did not name (e.g. `model_id`).
 */
export const predictRequestSchema = z.strictObject({
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
  /** Explain each text's scores (docs/explanations.md); text models only. */
  explain: z.boolean().optional(),
  /** N-grams per label in an explanation (default 10). */
  explain_top: z.number().int().min(1).max(EXPLAIN_TOP_MAX).optional(),
});

type PredictRequest = z.infer<typeof predictRequestSchema>;

/**
 * Reads the JSON body. Only an image request may exceed `maxBodyBytes` (base64 of a 10 MiB image is
 * 13.3 MiB), up to `MAX_IMAGE_BODY_BYTES`; any other body over `maxBodyBytes` is 413 as before.
 */
export async function readPredictBody(request: Request, maxBodyBytes: number): Promise<unknown> {
  const limit = Math.max(maxBodyBytes, MAX_IMAGE_BODY_BYTES);
  // Only an image body gets this far, so the refusal names the image limit a user can act on.
  const imageTooLarge = () =>
    new ApiError(
      "payload_too_large",
      `request body exceeds ${limit} bytes: an image may be at most ${MAX_IMAGE_BYTES} bytes (${MAX_IMAGE_BYTES / 1048576} MiB) before base64 ` +
        `(${limit} bytes of JSON with its base64); scale or re-encode it (e.g. JPEG), and other bodies may be at most ${maxBodyBytes} bytes`,
      { extensions: { limit_bytes: limit, image_limit_bytes: MAX_IMAGE_BYTES } },
    );
  const bytes = await readJsonBodyBytes(request, limit, imageTooLarge);
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

/**
 * Checks what the schema cannot of this body shape: the encoding and text/texts exclusivity;
 * returns the texts (their limits are the core's `checkTextLimits`).
 */
export function textsOf(body: PredictRequest): string[] {
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
  return body.texts ?? [body.text as string];
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
  const choice = { model: body.model, version: body.version, network: body.network };
  const requestId = body.request_id ?? request.state.requestId;
  const explain = explainOption(env, request.state, body.explain, body.explain_top);
  if (body.image !== undefined) {
    if (body.text !== undefined || body.texts !== undefined) {
      throw new ApiError("invalid_request", "give either 'image' or 'text'/'texts', not both", {
        extensions: { errors: [{ path: "image", message: "image cannot be combined with text or texts" }] },
      });
    }
    const { model, labels, scores } = await classifyImages(
      env,
      ctx,
      request.state,
      choice,
      [{ base64: body.image }],
      explain,
    );
    return reply(PredictImageAnswerSchema, {
      kind: "image",
      request_id: requestId,
      predictions: ranked(labels, scores[0] ?? [], body.n_top),
      model,
    });
  }
  const texts = textsOf(body);
  checkTextLimits(texts, request.state, (i) => (body.texts ? `texts.${i}` : "text"));
  const { model, labels, scores, thresholds, explanations } = await classifyTexts(
    env,
    ctx,
    request.state,
    choice,
    texts,
    explain,
  );
  const tail = { ...(body.language !== undefined && { language: body.language }), model };
  const answer = textAnswer(labels, scores, body.n_top, body.texts !== undefined, thresholds, explanations);
  // `kind` first: a typed client (sdk/) narrows the answer on it.
  return "results" in answer
    ? reply(PredictBatchAnswerSchema, { kind: "batch", request_id: requestId, ...answer, ...tail })
    : reply(PredictTextAnswerSchema, { kind: "text", request_id: requestId, ...answer, ...tail });
};
