/**
 * Async predictions, the core behind `POST /api/v1/predictions` and the async image service's
 * `POST /inference/image`: the input is checked as the sync path checks it (text limits; an image's
 * header and decode budget, so a bomb is refused before 202), the model version is resolved and
 * pinned, the input goes to R2 (`inputs/<id>`), a `queued` row to D1 and `{kind: "prediction", id,
 * key}` to the queue. With an `Idempotency-Key` the same request from the same issuer gets the same
 * prediction back. Reading one back (`readPrediction`) is limited to its submitter and admins.
 */

import * as z from "zod";
import { canSee } from "../auth/scope";
import type { RequestState } from "../context";
import { d1 } from "../contracts/d1";
import { inputKey } from "../contracts/r2-keys";
import type { PredictionRow } from "../contracts/rows";
import { ApiError } from "../errors";
import { findReplay, type IdempotentRequest, keyInProgress } from "../idempotency";
import { checkImage, decodeBase64Image } from "../image/decode";
import { inputMismatch, modelInput } from "../inference/kinds";
import { resolveNetwork } from "../inference/network";
import { chooseVersion } from "../inference/score";
import { getManifest } from "../storage/model-store";
import { insertDelivery } from "../webhooks/deliveries";
import { checkCallbackUrl } from "../webhooks/destination";
import { checkTextLimits } from "./classify";
import type { PredictionInput } from "./run";

/**
 * What is submitted: the input, the model (default: `DEFAULT_MODEL` for text, `DEFAULT_IMAGE_MODEL`
 * for an image), `n_top`, a request id.
 */
export interface Submission {
  model?: string | undefined;
  version?: string | undefined;
  /** A network variant the model declares; resolved now, like the version. */
  network?: string | undefined;
  input: PredictionInput;
  nTop?: number | undefined;
  requestId?: string | number | undefined;
  /** Signed webhook when it finishes (docs/webhooks.md), checked against WEBHOOK_DESTINATIONS. */
  callbackUrl?: string | undefined;
}

/** An accepted prediction, as the 202 of `POST /api/v1/predictions` shows it. */
export interface AcceptedPrediction {
  id: string;
  status: "queued";
  status_url: string;
  model: { id: string; version: string };
}

function accepted(id: string, modelId: string, version: string): AcceptedPrediction {
  return { id, status: "queued", status_url: `/api/v1/predictions/${id}`, model: { id: modelId, version } };
}

/** Refuses an input the model could not take, before anything is stored. */
function checkInput(state: RequestState, input: PredictionInput): void {
  // The decode budget (not the decode): a bomb is refused here, not after 202 in the consumer.
  if (input.image !== undefined) checkImage(decodeBase64Image(input.image));
  else if (input.texts !== undefined) checkTextLimits(input.texts, state, (i) => `texts.${i}`);
  else checkTextLimits([input.text ?? ""], state, () => "text");
}

/**
 * Queues a prediction (see the module comment); `replayed` when `keyed` names an earlier one of
 * this issuer. Records the pinned model on the request state.
 */
export async function submitPrediction(
  env: Env,
  state: RequestState,
  submission: Submission,
  keyed?: IdempotentRequest,
): Promise<{ prediction: AcceptedPrediction; replayed: boolean }> {
  const { config } = state;
  const replay = async () => {
    const row = await findReplay<PredictionRow>(env.DB, "predictions", keyed);
    if (!row) return undefined;
    state.model = { id: row.model_id, version: row.model_version };
    return { prediction: accepted(row.id, row.model_id, row.model_version), replayed: true };
  };
  // A key seen before answers as it did, whatever the active version is now.
  const replayed = await replay();
  if (replayed) return replayed;
  const { input } = submission;
  checkInput(state, input);
  const callback =
    submission.callbackUrl === undefined
      ? undefined
      : checkCallbackUrl(submission.callbackUrl, state.caller?.issuer, config);
  const modelId = await resolveNetwork(
    env.MODELS,
    config,
    submission.model ?? (input.image === undefined ? config.DEFAULT_MODEL : config.DEFAULT_IMAGE_MODEL),
    submission.version,
    submission.network,
  );
  // The version is chosen here, at submit time (the caller's split version, as on the sync paths),
  // and pinned: the consumer runs the prediction on it whatever the pointer says by then.
  const version = await chooseVersion(env, config, modelId, {
    version: submission.version,
    caller: state.caller?.issuer,
  });
  const manifest = await getManifest(env.MODELS, modelId, version, config.ACTIVE_POINTER_TTL_MS);
  const sent = input.image !== undefined ? "image" : "text";
  if (modelInput(manifest) !== sent) throw inputMismatch(manifest, sent);
  state.model = { id: modelId, version };
  state.served = state.model;
  const id = crypto.randomUUID();
  const key = inputKey(id);
  await env.MODELS.put(key, JSON.stringify(input), { httpMetadata: { contentType: "application/json" } });
  const now = Date.now();
  let inserted: D1Result;
  try {
    // The unique (issuer, key) index makes one of several concurrent submits with a key the creator.
    inserted = await d1("create prediction", () =>
      env.DB.prepare(
        `INSERT INTO predictions (id, model_id, model_version, status, input_key, request_id, n_top, caller,
           created_at, updated_at, idempotency_key, request_hash)
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)
         ON CONFLICT DO NOTHING`,
      )
        .bind(
          id,
          modelId,
          version,
          key,
          submission.requestId === undefined ? null : JSON.stringify(submission.requestId),
          submission.nTop ?? null,
          state.caller?.issuer ?? null,
          now,
          keyed?.key ?? null,
          keyed?.fingerprint ?? null,
        )
        .run(),
    );
  } catch (error) {
    await env.MODELS.delete(key);
    throw error;
  }
  if (inserted.meta.changes !== 1) {
    await env.MODELS.delete(key);
    const existing = await replay();
    if (existing) return existing;
    throw keyInProgress();
  }
  try {
    if (callback) await insertDelivery(env.DB, "prediction", id, state.caller?.issuer, callback, now).run();
    await env.PREDICTIONS_QUEUE.send({ kind: "prediction", id, key });
  } catch (cause) {
    await env.DB.batch([
      env.DB.prepare("DELETE FROM predictions WHERE id = ?").bind(id),
      env.DB.prepare("DELETE FROM webhook_deliveries WHERE subject_id = ?").bind(id),
    ]);
    await env.MODELS.delete(key);
    throw new ApiError("queue_unavailable", "the prediction queue is unavailable; retry later", {
      cause,
      headers: { "retry-after": "5" },
    });
  }
  return { prediction: accepted(id, modelId, version), replayed: false };
}

/**
 * Prediction `id` if this request may see it (its submitter's, or any for an admin); otherwise, as
 * for an unknown id, 404 `prediction_not_found`. Records the model on the request state.
 */
export async function readPrediction(env: Env, state: RequestState, id: string): Promise<PredictionRow> {
  const row = z.uuid().safeParse(id).success
    ? await d1("read prediction", () =>
        env.DB.prepare("SELECT * FROM predictions WHERE id = ?").bind(id).first<PredictionRow>(),
      )
    : null;
  if (!row || !canSee(state, row.caller)) {
    throw new ApiError("prediction_not_found", `no prediction '${id.slice(0, 80)}'`);
  }
  state.model = { id: row.model_id, version: row.model_version };
  return row;
}
