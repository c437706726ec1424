/**
 * Hugging Face task shapes (docs/clients.md), per model, so that `@huggingface/inference`'s
 * `textClassification` and `imageClassification` with `endpointUrl` work unchanged apart from the
 * token. The paths follow HF's own `models/<model>/pipeline/<task>` form:
 *
 * - `POST /hf/models/:model/pipeline/text-classification` `{inputs: string | string[],
 *   parameters?: {top_k}}` → one list of `{label, score}` (best first) per input: `[[…]]` for a
 *   string as for an array, which is what HF's hosted API answers and what both HF clients read
 *   (`response[0]`);
 * - `POST /hf/models/:model/pipeline/image-classification` with the raw image bytes (any
 *   Content-Type but JSON) or their base64 text, or JSON `{inputs: "<base64 or data: URL>",
 *   parameters?: {top_k}}` →
 *   `[{label, score}]` (best first; 5 by default, like the HF pipeline).
 *
 * Parse → the classification core (src/predictions/classify.ts over src/inference/score.ts) → shape. Errors stay problem+json
 * (`detail` is what the HF clients print).
 */
import * as z from "zod";
import { HfImageAnswerSchema, HfTextAnswerSchema } from "../answers";
import type { Handler } from "../context";
import { MODEL_ID_RE } from "../contracts/manifest";
import { ApiError } from "../errors";
import { parseJsonBytes, readBodyBytes, reply, validate } from "../http";
import { decodeImage, MAX_IMAGE_BODY_BYTES, MAX_IMAGE_BYTES } from "../image/decode";
import {
  checkTextLimits,
  classifyImages,
  classifyTexts,
  type ImageSource,
  ranked,
} from "../predictions/classify";

/** The image pipeline's default number of classes (transformers' `top_k=5`). */
export const HF_IMAGE_TOP_K = 5;

const parameters = z
  .strictObject({ top_k: z.number().int().min(1).max(4096).optional() })
  .optional()
  .describe("only top_k: our scores are the model's own probabilities (no function_to_apply)");

/** Body of the text-classification route. */
export const hfTextRequestSchema = z.strictObject({
  inputs: z.union([z.string(), z.array(z.string()).min(1, "inputs must hold at least one text")]),
  parameters,
});

/** JSON body of the image-classification route (raw image bytes are the other form). */
export const hfImageRequestSchema = z.strictObject({ inputs: z.string(), parameters });

function modelOf(params: Record<string, string | undefined>): string {
  const model = String(params.model ?? "");
  if (!MODEL_ID_RE.test(model))
    throw new ApiError("model_not_found", `no model named '${model.slice(0, 80)}'`);
  return model;
}

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/** `POST /hf/models/:model/pipeline/text-classification`. */
export const hfTextClassification: Handler = async (request, env, ctx) => {
  const { state } = request;
  const model = modelOf(request.params);
  const body = validate(
    hfTextRequestSchema,
    parseJsonBytes(await readBodyBytes(request, state.config.MAX_BODY_BYTES)),
  );
  const texts = typeof body.inputs === "string" ? [body.inputs] : body.inputs;
  checkTextLimits(texts, state, (i) => (typeof body.inputs === "string" ? "inputs" : `inputs.${i}`));
  const { labels, scores } = await classifyTexts(env, ctx, state, { model }, texts);
  return reply(
    HfTextAnswerSchema,
    scores.map((s) => ranked(labels, s, body.parameters?.top_k)),
  );
};

/** `POST /hf/models/:model/pipeline/image-classification`. */
export const hfImageClassification: Handler = async (request, env, ctx) => {
  const { state } = request;
  const model = modelOf(request.params);
  let source: ImageSource;
  let topK = HF_IMAGE_TOP_K;
  if (JSON_TYPE.test(request.headers.get("content-type") ?? "")) {
    const body = validate(
      hfImageRequestSchema,
      parseJsonBytes(await readBodyBytes(request, MAX_IMAGE_BODY_BYTES)),
    );
    source = { base64: body.inputs };
    topK = body.parameters?.top_k ?? topK;
  } else {
    const bytes = await readBodyBytes(request, MAX_IMAGE_BODY_BYTES);
    if (bytes.byteLength === 0) {
      throw new ApiError("invalid_image", "the body is empty: send the image bytes (PNG or JPEG)");
    }
    // A body that is not a PNG or JPEG file is read as base64 text of one (or a data: URL).
    source = isImageFile(bytes)
      ? { pixels: decodeImage(checkedSize(bytes)) }
      : { base64: new TextDecoder().decode(bytes) };
  }
  const { labels, scores } = await classifyImages(env, ctx, state, { model }, [source]);
  return reply(HfImageAnswerSchema, ranked(labels, scores[0] ?? [], topK));
};

/** Whether `bytes` start with a PNG or JPEG signature. */
function isImageFile(bytes: Uint8Array): boolean {
  const png = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const jpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  return png || jpeg;
}

/** Raw image bytes within `MAX_IMAGE_BYTES` (the body limit also admits base64 text of that size). */
function checkedSize(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength > MAX_IMAGE_BYTES) {
    throw new ApiError(
      "image_too_large",
      `image is ${bytes.byteLength} bytes; the limit is ${MAX_IMAGE_BYTES}`,
      {
        extensions: { limit_bytes: MAX_IMAGE_BYTES },
      },
    );
  }
  return bytes;
}
