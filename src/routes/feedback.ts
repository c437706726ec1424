/**
 * Feedback and live quality (docs/rollout.md):
 *   POST /api/v1/predictions/:id/feedback   the true labels of an async prediction's item(s)
 *   POST /api/v1/feedback                   the same by `request_id` (a sync answer's X-Request-Id)
 *   GET  /api/v1/models/:id/quality         live quality per version, from feedback
 */
import * as z from "zod";
import { FeedbackAnswerSchema, ModelQualitySchema } from "../answers";
import { ownerScope } from "../auth/scope";
import type { AppRequest, Handler } from "../context";
import { MODEL_ID_RE } from "../contracts/manifest";
import { ApiError } from "../errors";
import { modelQuality } from "../feedback/read";
import {
  type FeedbackItem,
  type FeedbackTarget,
  MAX_FEEDBACK_ITEMS,
  MAX_FEEDBACK_TEXT_CHARS,
  recordFeedback,
} from "../feedback/record";
import { readJsonBody, reply, validate } from "../http";

const labelsSchema = z
  .array(z.string().min(1).max(128))
  .max(4096)
  .describe("the true label(s): one for binary/multiclass, any subset (even none) for multilabel");
const indexSchema = z
  .number()
  .int()
  .min(0)
  .max(4095)
  .describe("which item of a batch (texts[index]); may be left out for a single text");
const textSchema = z
  .string()
  .min(1)
  .max(MAX_FEEDBACK_TEXT_CHARS)
  .describe("the input text, kept for training when the log does not hold it (PREDICTION_LOG_INPUTS off)");
const itemSchema = z.strictObject({
  index: indexSchema.optional(),
  labels: labelsSchema,
  text: textSchema.optional(),
});

const feedbackFields = {
  labels: labelsSchema.optional(),
  index: indexSchema.optional(),
  text: textSchema.optional(),
  items: z
    .array(itemSchema)
    .min(1)
    .max(MAX_FEEDBACK_ITEMS)
    .optional()
    .describe("one entry per labelled item of a batch, instead of labels/index/text"),
};

function oneShape(
  body: { labels?: unknown; items?: unknown; index?: unknown; text?: unknown },
  ctx: z.RefinementCtx,
) {
  if ((body.labels === undefined) === (body.items === undefined)) {
    ctx.addIssue({ code: "custom", path: ["labels"], message: "give either 'labels' (one item) or 'items'" });
  }
  if (body.items !== undefined && (body.index !== undefined || body.text !== undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["items"],
      message: "with 'items', put index and text in each item",
    });
  }
}

/** Body of `POST /api/v1/predictions/:id/feedback`. */
export const predictionFeedbackSchema = z.strictObject(feedbackFields).superRefine(oneShape);

/** Body of `POST /api/v1/feedback`: the prediction by `request_id` (X-Request-Id) or `prediction_id`. */
export const feedbackSchema = z
  .strictObject({
    request_id: z.string().min(1).max(128).optional().describe("the X-Request-Id header of the sync answer"),
    prediction_id: z.string().min(1).max(128).optional().describe("an async prediction's id"),
    ...feedbackFields,
  })
  .superRefine((body, ctx) => {
    if ((body.request_id === undefined) === (body.prediction_id === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["request_id"],
        message: "give either 'request_id' or 'prediction_id'",
      });
    }
    oneShape(body, ctx);
  });

function itemsOf(body: z.infer<typeof predictionFeedbackSchema>): FeedbackItem[] {
  return body.items ?? [{ index: body.index, labels: body.labels ?? [], text: body.text }];
}

async function answer(request: AppRequest, env: Env, target: FeedbackTarget, items: FeedbackItem[]) {
  const { answer, created } = await recordFeedback(env, ownerScope(request.state), target, items);
  return reply(FeedbackAnswerSchema, answer, created ? 201 : 200);
}

/** `POST /api/v1/predictions/:id/feedback`: 201 recorded, 200 when the same was already recorded. */
export const predictionFeedback: Handler = async (request, env) => {
  const body = validate(
    predictionFeedbackSchema,
    await readJsonBody(request, request.state.config.MAX_BODY_BYTES),
  );
  return answer(request, env, { predictionId: request.params.id ?? "" }, itemsOf(body));
};

/** `POST /api/v1/feedback`: as above, the prediction named by `request_id` or `prediction_id`. */
export const feedback: Handler = async (request, env) => {
  const body = validate(feedbackSchema, await readJsonBody(request, request.state.config.MAX_BODY_BYTES));
  const target: FeedbackTarget =
    body.prediction_id !== undefined
      ? { predictionId: body.prediction_id }
      : { requestId: body.request_id ?? "" };
  return answer(request, env, target, itemsOf(body));
};

/** `GET /api/v1/models/:id/quality`: live quality per version (all callers' feedback, aggregated). */
export const quality: Handler = async (request, env) => {
  const id = request.params.id ?? "";
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id.slice(0, 80)}'`);
  return reply(ModelQualitySchema, await modelQuality(env, id));
};
