/**
 * Online learning routes (docs/online.md):
 *   POST /api/v1/models/:id/samples   labelled samples (JSON array or text/csv) → the model's learner
 *   POST /api/v1/models/:id/predict   one sample → `["<AccountNumber>"]` (top k with `?n_top=k`)
 *   GET  /api/v1/models/:id/metrics   windowed precision/recall/accuracy, counters, series
 * Only model ids listed in `ONLINE_MODELS` are online models; others are 404 `model_not_found`.
 */
import type { Config } from "../config";
import type { AppRequest, Handler } from "../context";
import { ApiError } from "../errors";
import { json, readBodyBytes, readJsonBody } from "../http";
import { scoreTexts, withModel } from "../inference/engine";
import { requireTextModel } from "../inference/kinds";
import { BANK_INPUT_TAG, bankText } from "../online/features";
import { bankInputSchema, csvRecords, jsonRecords, validateSamples } from "../online/sample";

const CSV_TYPE = /^text\/csv\s*(;|$)/i;

/** The online model id of the route, or 404 when `ONLINE_MODELS` does not list it. */
function onlineModelId(request: AppRequest, config: Config): string {
  const id = decodeURIComponent(String(request.params.id ?? ""));
  if (!config.ONLINE_MODELS.includes(id)) {
    throw new ApiError("model_not_found", `'${id.slice(0, 64)}' is not an online model (ONLINE_MODELS)`);
  }
  return id;
}

function learner(env: Env, id: string) {
  return env.ONLINE_LEARNER.get(env.ONLINE_LEARNER.idFromName(id));
}

/** Runs a learner RPC; a failure of the object itself becomes 503 `learner_unavailable`. */
async function callLearner<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    throw new ApiError("learner_unavailable", `the online learner of '${id}' failed; retry`, {
      cause,
      headers: { "retry-after": "1" },
    });
  }
}

/** Reads a `text/csv` body (same size limits as JSON bodies) as UTF-8 text. */
async function readCsvBody(request: Request, maxBytes: number): Promise<string> {
  const bytes = await readBodyBytes(request, maxBytes);
  if (bytes.byteLength === 0) throw new ApiError("invalid_request", "request body is empty");
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("invalid_request", "the CSV body is not valid UTF-8");
  }
}

/**
 * `POST /api/v1/models/:id/samples`: validates every row (all or nothing), then the model's
 * learner predicts, stores and learns each sample in order. Returns counts and versions.
 */
export const onlineSamples: Handler = async (request, env) => {
  const { config } = request.state;
  const id = onlineModelId(request, config);
  const records = CSV_TYPE.test(request.headers.get("content-type") ?? "")
    ? csvRecords(await readCsvBody(request, config.MAX_BODY_BYTES))
    : jsonRecords(await readJsonBody(request, config.MAX_BODY_BYTES));
  const samples = validateSamples(records, config.ONLINE_MAX_SAMPLES);
  const { result, refused } = await callLearner(id, () => learner(env, id).ingest(id, samples));
  if (refused) {
    throw new ApiError(refused.code, `${refused.detail}; nothing was applied`, {
      extensions: { limit: refused.limit },
    });
  }
  return json(result);
};

/** `n_top` and `source` of a predict call. */
function predictOptions(url: URL): { nTop: number | undefined; source: "snapshot" | "learner" } {
  const raw = url.searchParams.get("n_top");
  const errors: { path: string; message: string }[] = [];
  let nTop: number | undefined;
  if (raw !== null) {
    nTop = Number(raw);
    if (!/^\d+$/.test(raw) || nTop < 1 || nTop > 4096) {
      errors.push({ path: "n_top", message: "n_top must be a whole number in 1..4096" });
    }
  }
  const source = url.searchParams.get("source") ?? "snapshot";
  if (source !== "snapshot" && source !== "learner") {
    errors.push({ path: "source", message: "source must be 'snapshot' (default) or 'learner'" });
  }
  if (errors.length > 0) {
    throw new ApiError("invalid_request", errors.map((e) => e.message).join("; "), {
      extensions: { errors },
    });
  }
  return { nTop, source: source as "snapshot" | "learner" };
}

/**
 * `POST /api/v1/models/:id/predict`: one sample (the `Account*` fields are not needed) →
 * `["<AccountNumber>"]`, or with `?n_top=k` the top k as `[{"AccountNumber", "score"}]`. Served by
 * the model's active snapshot on the stateless edge path (`X-Model-Version` names it); with
 * `?source=learner` by the learner itself, which has every sample learned so far.
 */
export const onlinePredict: Handler = async (request, env) => {
  const { config } = request.state;
  const id = onlineModelId(request, config);
  const { nTop, source } = predictOptions(new URL(request.url));
  const body = await readJsonBody(request, config.MAX_BODY_BYTES);
  const parsed = bankInputSchema.safeParse(body);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((i) => ({
      path: i.path.join(".") || "(body)",
      message: i.message,
    }));
    throw new ApiError("invalid_request", errors.map((e) => `${e.path}: ${e.message}`).join("; "), {
      extensions: { errors },
    });
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
    ({ top, version } = await withModel(env.MODELS, config, id, undefined, async (loaded) => {
      const m = requireTextModel(loaded);
      if (!m.meta.description?.includes(BANK_INPUT_TAG)) {
        throw new ApiError(
          "model_unavailable",
          `model '${id}' version '${m.meta.version}' is not a snapshot of this online model's features (${BANK_INPUT_TAG})`,
        );
      }
      const labels = m.meta.labels;
      const [scores] = await scoreTexts(m, [bankText(input)]);
      const ranked = Array.from(scores as Float32Array, (score, k) => ({
        AccountNumber: labels[k] as string,
        score,
      }));
      // Stable sort: ties keep label order, as the learner's argmax does.
      ranked.sort((a, b) => b.score - a.score);
      return { top: ranked.slice(0, nTop ?? 1), version: m.meta.version };
    }));
    request.state.model = { id, version };
  }
  const headers = { "x-model-version": version };
  if (nTop === undefined) return json([top[0]?.AccountNumber], 200, headers);
  return json(top, 200, headers);
};

/** `GET /api/v1/models/:id/metrics`: see `MetricsReport`. */
export const onlineMetrics: Handler = async (request, env) => {
  const id = onlineModelId(request, request.state.config);
  return json(await callLearner(id, () => learner(env, id).metrics(id)));
};
