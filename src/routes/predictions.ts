/** Async predictions (`POST`/`GET /api/v1/predictions/:id`) and the prediction log (`GET /api/v1/predictions`). */
import * as z from "zod";
import { AcceptedPredictionSchema, PredictionLogPageSchema, PredictionSchema } from "../answers";
import { ownerScope } from "../auth/scope";
import type { Handler } from "../context";
import { d1 } from "../contracts/d1";
import { ApiError } from "../errors";
import { reply, validate } from "../http";
import { idempotencyKey, idempotentRequest, REPLAYED_HEADERS } from "../idempotency";
import { readLog } from "../predictions/log";
import { type PredictionInput, predictionView } from "../predictions/run";
import { readPrediction, submitPrediction as submit } from "../predictions/submit";
import { predictRequestSchema, readPredictBody, textsOf } from "./predict";

/**
 * Body of `POST /api/v1/predictions`: the predict body and an optional `callback_url`. Without
 * `explain`/`explain_top` (explanations are synchronous only): sent here they are a 400, not ignored.
 */
export const asyncPredictionRequestSchema = predictRequestSchema
  .omit({ explain: true, explain_top: true })
  .extend({
    /** Signed webhook when the prediction finishes (docs/webhooks.md). */
    callback_url: z.string().max(2048).optional(),
  });

/**
 * `POST /api/v1/predictions`: `{model?, version?, text | texts | image, n_top?, request_id?}`,
 * validated like `POST /api/v1/predict` → 202 `{id, status, status_url, model}` (see
 * `submitPrediction`); `Idempotency-Key` returns an earlier submit's answer.
 */
export const submitPrediction: Handler = async (request, env) => {
  const { config } = request.state;
  const idempotency = idempotencyKey(request.headers);
  const body = validate(asyncPredictionRequestSchema, await readPredictBody(request, config.MAX_BODY_BYTES));
  request.state.clientRequestId = body.request_id;
  const keyed = await idempotentRequest(idempotency, request.state.caller?.issuer ?? null, body);
  let input: PredictionInput;
  if (body.image !== undefined) {
    if (body.text !== undefined || body.texts !== undefined) {
      throw new ApiError("invalid_request", "give either 'image' or 'text'/'texts', not both", {
        extensions: { errors: [{ path: "image", message: "image cannot be combined with text or texts" }] },
      });
    }
    input = { image: body.image };
  } else {
    const texts = textsOf(body);
    input = body.texts ? { texts } : { text: texts[0] as string };
  }
  const { prediction, replayed } = await submit(
    env,
    request.state,
    {
      model: body.model,
      version: body.version,
      network: body.network,
      input,
      nTop: body.n_top,
      requestId: body.request_id,
      callbackUrl: body.callback_url,
    },
    keyed,
  );
  return reply(AcceptedPredictionSchema, prediction, 202, {
    location: prediction.status_url,
    ...(replayed && REPLAYED_HEADERS),
  });
};

/**
 * `GET /api/v1/predictions/:id`: status, result or error, model, times. Only the issuer that
 * submitted a prediction, and admins, see it (any other gets 404, as for an unknown id).
 */
export const getPrediction: Handler = async (request, env) =>
  reply(PredictionSchema, predictionView(await readPrediction(env, request.state, request.params.id ?? "")));

export const logQuerySchema = z.strictObject({
  model: z.string().max(64).optional(),
  since: z.iso.datetime({ offset: true, error: "since must be an ISO 8601 date-time" }).optional(),
  limit: z
    .string()
    .regex(/^\d+$/, "limit must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(1).max(1000))
    .optional(),
  cursor: z
    .string()
    .regex(/^\d{1,16}$/, "cursor must be a next_cursor value")
    .optional(),
});

/**
 * `GET /api/v1/predictions?model=&since=&limit=&cursor=`: the prediction log, oldest first,
 * `limit` (default 100, at most 1000) rows per page; `next_cursor` pages on (null at the end).
 * The caller's own rows only, unless it is an admin (src/auth/scope.ts).
 */
export const listPredictionLog: Handler = async (request, env) => {
  const query = validate(logQuerySchema, { ...request.query });
  const page = await d1("read prediction log", () =>
    readLog(env.DB, {
      caller: ownerScope(request.state),
      model: query.model,
      since: query.since === undefined ? undefined : Date.parse(query.since),
      after: query.cursor === undefined ? 0 : Number(query.cursor),
      limit: query.limit ?? 100,
    }),
  );
  return reply(PredictionLogPageSchema, page);
};
