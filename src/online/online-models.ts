/**
 * Which online models exist: those `ONLINE_MODELS` configures, and those created through the API
 * (`POST /api/v1/models` with `task: "online"`, D1 table `online_models`). An API-created model
 * names its own sample fields: its samples are renamed to the learner's fields (the bank CSV's
 * columns) on the way in, and refusals name the caller's fields. Reset and delete act on the
 * model's learner (and, for delete, its registry entries).
 */
import * as z from "zod";
import type { Config } from "../config";
import { d1 } from "../contracts/d1";
import { MODEL_ID_RE } from "../contracts/manifest";
import { ApiError } from "../errors";
import { getModelRow } from "../registry/db";
import { type DeletionReport, deleteModel } from "../registry/delete";
import { ensureModelImported } from "../registry/import";
import { callLearner, learner } from "./client";
import { REQUIRED_OWN_COLUMNS, SAMPLE_COLUMNS } from "./sample";

/** A learner field (a column of the bank dataset). */
export type SampleField = (typeof SAMPLE_COLUMNS)[number];

/** Each learner field's name in the caller's samples. */
export type FieldMap = Record<SampleField, string>;

/** The learner's own names: what configured models (ONLINE_MODELS) take. */
export const CANONICAL_FIELDS = Object.fromEntries(SAMPLE_COLUMNS.map((c) => [c, c])) as FieldMap;

const fieldName = z.string().min(1).max(128);

/** `POST /api/v1/models` with `task: "online"`: an online account classifier with its field names. */
export const onlineModelRequestSchema = z.strictObject({
  id: z.string().regex(MODEL_ID_RE, "id must be a model id (lowercase letters, digits, '-', '_')"),
  task: z.literal("online"),
  /** The label: the account the learner predicts (default `AccountNumber`). */
  label_field: fieldName.optional(),
  /** The fields the learner's features read, by role (defaults: the bank CSV's names). */
  feature_fields: z
    .strictObject({
      company: fieldName,
      date: fieldName,
      text: fieldName,
      amount: fieldName,
      label_name: fieldName,
      label_type: fieldName,
    })
    .partial()
    .optional(),
});

/** A validated online-model request. */
export type OnlineModelRequest = z.infer<typeof onlineModelRequestSchema>;

/** An online model: configured (`ONLINE_MODELS`) or created through the API, with its field names. */
export interface OnlineModel {
  id: string;
  configured: boolean;
  fields: FieldMap;
}

function fieldMap(body: OnlineModelRequest): FieldMap {
  const f = body.feature_fields ?? {};
  const fields: FieldMap = {
    CompanyId: f.company ?? "CompanyId",
    BankEntryDate: f.date ?? "BankEntryDate",
    BankEntryText: f.text ?? "BankEntryText",
    BankEntryAmount: f.amount ?? "BankEntryAmount",
    AccountName: f.label_name ?? "AccountName",
    AccountNumber: body.label_field ?? "AccountNumber",
    AccountTypeName: f.label_type ?? "AccountTypeName",
  };
  const names = Object.values(fields);
  if (new Set(names).size !== names.length) {
    throw new ApiError("invalid_request", "each field must have its own name", {
      extensions: { errors: [{ path: "feature_fields", message: "two roles name the same field" }] },
    });
  }
  return fields;
}

/**
 * The columns a CSV of samples must have, in the caller's names: a configured model takes the
 * bank CSV's seven; an API-created one only what its features and label need.
 */
export function requiredColumns(model: OnlineModel): string[] {
  return model.configured ? [...SAMPLE_COLUMNS] : REQUIRED_OWN_COLUMNS.map((c) => model.fields[c]);
}

/** Online model `id`, or null when it is not one. */
export async function findOnlineModel(env: Env, config: Config, id: string): Promise<OnlineModel | null> {
  if (config.ONLINE_MODELS.includes(id)) return { id, configured: true, fields: CANONICAL_FIELDS };
  if (!MODEL_ID_RE.test(id)) return null;
  const row = await d1("read online model", () =>
    env.DB.prepare("SELECT fields FROM online_models WHERE id = ?").bind(id).first<{ fields: string }>(),
  );
  return row ? { id, configured: false, fields: JSON.parse(row.fields) as FieldMap } : null;
}

/** Online model `id`, or 404 `model_not_found`. */
export async function requireOnlineModel(env: Env, config: Config, id: string): Promise<OnlineModel> {
  const model = await findOnlineModel(env, config, id);
  if (!model) {
    throw new ApiError("model_not_found", `'${id.slice(0, 64)}' is not an online model`);
  }
  return model;
}

/** Every online model id: configured ones first, then API-created ones by id. */
export async function listOnlineModelIds(env: Env, config: Config): Promise<string[]> {
  const { results } = await d1("list online models", () =>
    env.DB.prepare("SELECT id FROM online_models ORDER BY id").all<{ id: string }>(),
  );
  return [
    ...config.ONLINE_MODELS,
    ...results.map((r) => r.id).filter((id) => !config.ONLINE_MODELS.includes(id)),
  ];
}

/**
 * Creates an online model. Refused with 409 `model_exists` when the id is taken by any model (the
 * registry's, a configured or an API-created online model) or is the default model.
 */
export async function createOnlineModel(
  env: Env,
  config: Config,
  caller: string | undefined,
  body: OnlineModelRequest,
): Promise<{ id: string; task: "online"; fields: FieldMap; created_at: string }> {
  const fields = fieldMap(body);
  await ensureModelImported(env, body.id);
  const taken =
    body.id === config.DEFAULT_MODEL ||
    (await findOnlineModel(env, config, body.id)) !== null ||
    (await getModelRow(env.DB, body.id)) !== null;
  if (taken) throw new ApiError("model_exists", `a model named '${body.id}' exists`);
  const now = Date.now();
  const inserted = await d1("create online model", () =>
    env.DB.prepare(
      "INSERT INTO online_models (id, fields, caller, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
      .bind(body.id, JSON.stringify(fields), caller ?? null, now)
      .run(),
  );
  if (inserted.meta.changes !== 1) throw new ApiError("model_exists", `a model named '${body.id}' exists`);
  // A learner object keeps its storage across deletions of its model: start this one empty.
  await callLearner(body.id, () => learner(env, body.id).reset());
  return { id: body.id, task: "online", fields, created_at: new Date(now).toISOString() };
}

/**
 * Resets an online model's learner: weights, samples, metrics and counters start again from
 * nothing. Snapshots it already published stay in the registry (the active one keeps serving the
 * edge path) until the next snapshot replaces it.
 */
export async function resetOnlineModel(
  env: Env,
  config: Config,
  id: string,
): Promise<{ model: string; reset: true }> {
  await requireOnlineModel(env, config, id);
  await callLearner(id, () => learner(env, id).reset());
  return { model: id, reset: true };
}

/**
 * Deletes an API-created online model: the model row first (no new samples are accepted), then its
 * learner's state, then every registry entry of its snapshots (as `DELETE /api/v1/models/:id`).
 * Configured models (ONLINE_MODELS) are refused with 409 `model_is_online`.
 */
export async function deleteOnlineModel(
  env: Env,
  config: Config,
  model: OnlineModel,
): Promise<DeletionReport> {
  if (model.configured) {
    throw new ApiError(
      "model_is_online",
      `'${model.id}' is an online model of ONLINE_MODELS; remove it from ONLINE_MODELS before deleting it`,
    );
  }
  await d1("delete online model", () =>
    env.DB.prepare("DELETE FROM online_models WHERE id = ?").bind(model.id).run(),
  );
  await callLearner(model.id, () => learner(env, model.id).reset());
  try {
    return await deleteModel(env, config, model.id);
  } catch (error) {
    // A model that never published a snapshot has no registry entries to delete.
    if (error instanceof ApiError && error.code === "model_not_found") {
      return { id: model.id, versions: 0, jobs: 0, predictions: 0, log_rows: 0, r2_objects: 0 };
    }
    throw error;
  }
}

/** A record with the caller's field names renamed to the learner's (other keys are kept). */
export function toLearnerFields(record: unknown, fields: FieldMap): unknown {
  if (fields === CANONICAL_FIELDS || record === null || typeof record !== "object" || Array.isArray(record)) {
    return record;
  }
  const source = record as Record<string, unknown>;
  const renamed: Record<string, unknown> = {};
  for (const [learnerField, callerField] of Object.entries(fields)) {
    if (Object.hasOwn(source, callerField)) renamed[learnerField] = source[callerField];
  }
  return renamed;
}

/** Rewrites a validation refusal so that it names the caller's fields, not the learner's. */
export function inCallerFields(error: unknown, fields: FieldMap): unknown {
  if (!(error instanceof ApiError) || fields === CANONICAL_FIELDS || error.code !== "invalid_request")
    return error;
  const rename = (text: string) =>
    Object.entries(fields).reduce(
      (t, [learnerField, callerField]) => t.split(learnerField).join(callerField),
      text,
    );
  const errors = error.extensions.errors as { path: string; message: string }[] | undefined;
  return new ApiError("invalid_request", rename(error.message), {
    extensions: {
      ...error.extensions,
      ...(errors && {
        errors: errors.map((e) => ({ ...e, path: rename(e.path), message: rename(e.message) })),
      }),
    },
    cause: error,
  });
}

/**
 * Deletes model `id` whatever it is: an API-created online model with its learner
 * (`deleteOnlineModel`), or a registry model (`deleteModel`, which refuses configured online
 * models and the default ones). What `DELETE /api/v1/models/:id` and `DELETE /models/<id>` do.
 */
export async function deleteAnyModel(env: Env, config: Config, id: string): Promise<DeletionReport> {
  const online = await findOnlineModel(env, config, id);
  return online ? deleteOnlineModel(env, config, online) : deleteModel(env, config, id);
}
