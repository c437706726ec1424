/**
 * The online-learning core, shared by the native routes (`/api/v1/models/:id/…`) and the online
 * service's compatibility routes (`/sample`, `/predict`, `/metrics`): validation of samples, the
 * learner RPCs, and prediction from the active snapshot or the learner.
 */
import type { Config } from "../config";
import type { RequestState } from "../context";
import { ApiError } from "../errors";
import { ranked, scoreTextInputs } from "../inference/score";
import { callLearner, learner, learnerMetrics } from "./client";
import { BANK_INPUT_TAG, bankText } from "./features";
import { inCallerFields, type OnlineModel, toLearnerFields } from "./online-models";
import { bankInputSchema, ownSampleSchema, validateSamples } from "./sample";

/**
 * Validates every record (all or nothing), then the model's learner predicts, stores and learns
 * each sample in order. Returns the learner's counts and versions.
 */
export async function ingestSamples(env: Env, config: Config, model: OnlineModel, records: unknown[]) {
  const { id, fields } = model;
  let samples: ReturnType<typeof validateSamples>;
  try {
    samples = validateSamples(
      records.map((r) => toLearnerFields(r, fields)),
      config.ONLINE_MAX_SAMPLES,
      // An API-created model requires only what its features and label need.
      model.configured ? undefined : ownSampleSchema,
    );
  } catch (error) {
    throw inCallerFields(error, fields);
  }
  const { result, refused } = await callLearner(id, () => learner(env, id).ingest(id, samples));
  if (refused) {
    throw new ApiError(refused.code, `${refused.detail}; nothing was applied`, {
      extensions: { limit: refused.limit },
    });
  }
  if (!result)
    throw new ApiError("learner_unavailable", "the learner answered neither a result nor a refusal");
  return result;
}

/** The top accounts of one online prediction and the model version that made it. */
export interface OnlinePrediction {
  top: { AccountNumber: string; score: number }[];
  version: string;
}

/**
 * Predicts one sample's accounts: by the model's active snapshot on the stateless edge path, or
 * with `source: "learner"` by the learner itself, which has every sample learned so far.
 */
export async function predictOnline(
  env: Env,
  state: RequestState,
  model: OnlineModel,
  body: unknown,
  nTop: number | undefined,
  source: "snapshot" | "learner",
): Promise<OnlinePrediction> {
  const { config } = state;
  const { id } = model;
  const parsed = bankInputSchema.safeParse(toLearnerFields(body, model.fields));
  if (!parsed.success) {
    const errors = parsed.error.issues.map((i) => ({
      path: i.path.join(".") || "(body)",
      message: i.message,
    }));
    throw inCallerFields(
      new ApiError("invalid_request", errors.map((e) => `${e.path}: ${e.message}`).join("; "), {
        extensions: { errors },
      }),
      model.fields,
    );
  }
  const input = parsed.data;
  let top: { AccountNumber: string; score: number }[];
  let version: string;
  if (source === "learner") {
    const prediction = await callLearner(id, () => learner(env, id).predict(input, nTop ?? 1));
    if (prediction.top.length === 0) {
      throw new ApiError("model_not_found", `online model '${id}' has not learned any sample yet`);
    }
    top = prediction.top;
    version = `learner-${prediction.version}`;
  } else {
    // Through the scoring core, accepting only a snapshot of this model's features.
    const scored = await scoreTextInputs(env, config, { model: id }, [bankText(input)], {
      accept: (manifest) => {
        if (!manifest.description?.includes(BANK_INPUT_TAG)) {
          throw new ApiError(
            "model_unavailable",
            `model '${id}' version '${manifest.version}' is not a snapshot of this online model's features (${BANK_INPUT_TAG})`,
          );
        }
      },
    }).catch(async (error: unknown) => {
      throw error instanceof ApiError && error.code === "model_not_found"
        ? await noSnapshotYet(env, config, id)
        : error;
    });
    // `ranked` is a stable sort: ties keep label order, as the learner's argmax does.
    top = ranked(scored.labels, scored.scores[0] ?? [], nTop ?? 1).map((p) => ({
      AccountNumber: p.label,
      score: p.score,
    }));
    version = scored.model.version;
    state.model = { id, version };
  }
  return { top, version };
}

/**
 * The 404 of an online model that exists but has published no snapshot yet: how many samples it
 * has learned and when its first snapshot is due (`ONLINE_SNAPSHOT_SECONDS` after the first sample,
 * or at once when `ONLINE_SNAPSHOT_SAMPLES` have arrived), and that `?source=learner` answers now.
 */
async function noSnapshotYet(env: Env, config: Config, id: string): Promise<ApiError> {
  const m = await learnerMetrics(env, id).catch(() => undefined);
  const since = m?.snapshot_pending_since ? Date.parse(m.snapshot_pending_since) : undefined;
  const due =
    m === undefined || since === undefined
      ? undefined
      : m.snapshot_pending_samples >= config.ONLINE_SNAPSHOT_SAMPLES
        ? Date.now()
        : since + config.ONLINE_SNAPSHOT_SECONDS * 1000;
  const when =
    m === undefined
      ? ""
      : m.samples_total === 0
        ? `: it has learned no sample yet; the first snapshot is published ${config.ONLINE_SNAPSHOT_SECONDS} s after the first sample (or at ${config.ONLINE_SNAPSHOT_SAMPLES} samples)`
        : `: it has learned ${m.samples_total} sample(s)${due === undefined ? "" : `; the first snapshot is due at ${new Date(due).toISOString()}`}`;
  const retryS =
    due === undefined ? config.ONLINE_SNAPSHOT_SECONDS : Math.max(1, Math.ceil((due - Date.now()) / 1000));
  return new ApiError(
    "model_not_found",
    `online model '${id}' exists but has no snapshot yet${when}. Ask the learner now with ?source=learner`,
    {
      headers: { "retry-after": String(retryS) },
      extensions: {
        snapshot: null,
        samples_total: m?.samples_total ?? null,
        snapshot_due_at: due === undefined ? null : new Date(due).toISOString(),
      },
    },
  );
}
