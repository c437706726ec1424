/**
 * Recording feedback (docs/rollout.md): the true labels of a logged prediction, by the async
 * prediction's id or by the `X-Request-Id` of the sync request that scored it. Feedback joins the
 * prediction log (one row per scored item) and is kept once per item: an identical second feedback
 * returns the first one's answer, a different one is 409 `feedback_conflict`. Rows are the
 * caller's own, like the log (another caller's prediction is 404, as an unknown one).
 */
import type { z } from "zod";
import type { FeedbackAnswerSchema } from "../answers";
import { d1 } from "../contracts/d1";
import { ApiError } from "../errors";
import { ensureModelImported } from "../registry/import";
import { type DecisionRule, isCorrect, predictedLabels } from "./quality";

/** Most items one feedback request labels. */
export const MAX_FEEDBACK_ITEMS = 256;
/** Longest text a caller may send with its feedback (characters). */
export const MAX_FEEDBACK_TEXT_CHARS = 64 * 1024;

/** Which prediction the feedback is for: an async prediction id, or a sync request's X-Request-Id. */
export type FeedbackTarget = { predictionId: string } | { requestId: string };

/** One labelled item as the caller sent it. */
export interface FeedbackItem {
  /** The item of a batch (texts[index]); may be left out when the prediction scored one item. */
  index?: number | undefined;
  labels: readonly string[];
  /** The input text, for training, when the log does not hold it (PREDICTION_LOG_INPUTS off). */
  text?: string | undefined;
}

/** The answer of a feedback request. */
export type FeedbackAnswer = z.input<typeof FeedbackAnswerSchema>;

interface LogRow {
  seq: number;
  at: number;
  caller: string | null;
  model_id: string;
  model_version: string;
  prediction_id: string | null;
  http_request_id: string | null;
  item: number;
  scores: string;
  input: string | null;
}

interface FeedbackRow {
  log_seq: number;
  labels: string;
  text: string | null;
  created_at: number;
}

/** Most log rows of one prediction read (a batch is at most MAX_BATCH items, at most 1024). */
const MAX_LOG_ROWS = 2048;

/**
 * Records `items` for the prediction `target` names, as seen by `owner` (an issuer: only its own
 * predictions; undefined: any, for admins and ASAP_AUTH=off). `created` is false when every item
 * was already recorded with the same labels (the answer is then the first one's).
 */
export async function recordFeedback(
  env: Env,
  owner: string | undefined,
  target: FeedbackTarget,
  items: readonly FeedbackItem[],
  now = Date.now(),
): Promise<{ answer: FeedbackAnswer; created: boolean }> {
  const db = env.DB;
  const rows = await loggedItems(db, owner, target);
  const first = rows[0] as LogRow;
  const rule = await decisionRule(env, first.model_id, first.model_version, first.scores);
  const labelled = checkItems(rule, rows, items);

  // The texts kept for training: the log's input, else the caller's, else an async prediction's stored input.
  const texts = new Map<number, string | null>();
  let asyncInputs: readonly string[] | undefined;
  for (const { row, item } of labelled) {
    let text = row.input ?? item.text ?? null;
    if (text === null && row.prediction_id !== null) {
      asyncInputs ??= await storedInputs(env, row.prediction_id);
      text = asyncInputs[row.item] ?? null;
    }
    texts.set(row.seq, text);
  }

  const seqs = labelled.map((l) => l.row.seq);
  const before = await recorded(db, seqs);
  conflicts(labelled, before);
  const fresh = labelled.filter((l) => !before.has(l.row.seq));
  if (fresh.length > 0) {
    await d1("record feedback", () =>
      db.batch(
        fresh.map(({ row, labels }) =>
          db
            .prepare(
              `INSERT INTO feedback (log_seq, caller, model_id, model_version, prediction_id, http_request_id,
                 item, labels, scores, text, predicted_at, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log_seq) DO NOTHING`,
            )
            .bind(
              row.seq,
              row.caller,
              row.model_id,
              row.model_version,
              row.prediction_id,
              row.http_request_id,
              row.item,
              JSON.stringify(labels),
              row.scores,
              texts.get(row.seq) ?? null,
              row.at,
              now,
            ),
        ),
      ),
    );
  }
  // Read back: a concurrent different feedback that won the insert is a conflict for this one.
  const after = fresh.length > 0 ? await recorded(db, seqs) : before;
  conflicts(labelled, after);
  const answer: FeedbackAnswer = {
    model: { id: first.model_id, version: first.model_version },
    prediction_id: first.prediction_id,
    request_id: first.prediction_id === null ? first.http_request_id : null,
    items: labelled.map(({ row, labels }) => {
      const stored = after.get(row.seq) as FeedbackRow;
      const predicted = predictedLabels(rule, JSON.parse(row.scores) as Record<string, number>);
      return {
        index: row.item,
        labels,
        predicted,
        correct: isCorrect(predicted, labels),
        text_stored: stored.text !== null,
        recorded_at: new Date(stored.created_at).toISOString(),
      };
    }),
  };
  return { answer, created: fresh.length > 0 };
}

/**
 * The log rows of the prediction `target` names (one per item, item order): the latest scoring
 * when several share the id (a client reusing an X-Request-Id, a redelivered async prediction).
 */
async function loggedItems(
  db: D1Database,
  owner: string | undefined,
  target: FeedbackTarget,
): Promise<LogRow[]> {
  const [column, value] =
    "predictionId" in target
      ? (["prediction_id", target.predictionId] as const)
      : (["http_request_id", target.requestId] as const);
  const { results } = await d1("read prediction log", () =>
    db
      .prepare(
        `SELECT seq, at, caller, model_id, model_version, prediction_id, http_request_id, item, scores, input
         FROM prediction_log WHERE ${column} = ?1 AND (?2 IS NULL OR caller = ?2)
         ORDER BY seq DESC LIMIT ?3`,
      )
      .bind(value, owner ?? null, MAX_LOG_ROWS)
      .all<LogRow>(),
  );
  const latest = results[0];
  if (!latest) {
    const what =
      "predictionId" in target
        ? `no finished prediction '${value.slice(0, 80)}' of this caller in the prediction log (GET /api/v1/predictions/${encodeURIComponent(value.slice(0, 80))} shows its status)`
        : `no prediction with X-Request-Id '${value.slice(0, 128)}' of this caller in the prediction log`;
    throw new ApiError(
      "prediction_not_found",
      `${what}; the log is written just after the answer (retry in a second) and only while PREDICTION_LOG is on, and rows older than RETENTION_DAYS are purged`,
    );
  }
  const byItem = new Map<number, LogRow>();
  for (const r of results) {
    const same = r.at === latest.at && r.caller === latest.caller && r.model_version === latest.model_version;
    if (same && r.model_id === latest.model_id && !byItem.has(r.item)) byItem.set(r.item, r);
  }
  return [...byItem.values()].sort((a, b) => a.item - b.item);
}

/** The decision rule of a version: task and thresholds from its manifest, labels in output order. */
async function decisionRule(
  env: Env,
  modelId: string,
  version: string,
  scoresJson: string,
): Promise<DecisionRule> {
  await ensureModelImported(env, modelId);
  const row = await d1("read version", () =>
    env.DB.prepare("SELECT manifest FROM model_versions WHERE model_id = ? AND version = ?")
      .bind(modelId, version)
      .first<{ manifest: string }>(),
  );
  const logged = Object.keys(JSON.parse(scoresJson) as Record<string, number>);
  if (!row) {
    throw new ApiError("model_version_not_found", `model '${modelId}' has no version '${version}' any more`);
  }
  const manifest = JSON.parse(row.manifest) as {
    task?: string;
    labels?: string[];
    thresholds?: Record<string, number>;
  };
  const task = manifest.task === "binary" || manifest.task === "multilabel" ? manifest.task : "multiclass";
  return { task, labels: manifest.labels ?? logged, thresholds: manifest.thresholds };
}

/** Validates the items against the prediction and the model's labels; labels in label order. */
function checkItems(
  rule: DecisionRule,
  rows: readonly LogRow[],
  items: readonly FeedbackItem[],
): { row: LogRow; item: FeedbackItem; labels: string[] }[] {
  const seen = new Set<number>();
  return items.map((item, k) => {
    let index = item.index;
    if (index === undefined) {
      if (rows.length !== 1) {
        throw new ApiError(
          "invalid_request",
          `this prediction scored ${rows.length} items: say which one with 'index' (0 to ${rows.length - 1})`,
          {
            extensions: { errors: [{ path: `items.${k}.index`, message: "index is required for a batch" }] },
          },
        );
      }
      index = rows[0]?.item as number;
    }
    const row = rows.find((r) => r.item === index);
    if (!row) {
      throw new ApiError(
        "invalid_request",
        `item ${index} is not one of the prediction's items (0 to ${rows.length - 1})`,
        { extensions: { errors: [{ path: `items.${k}.index`, message: "no such item" }] } },
      );
    }
    if (seen.has(index)) {
      throw new ApiError("invalid_request", `item ${index} is labelled twice in this request`, {
        extensions: { errors: [{ path: `items.${k}.index`, message: "duplicate index" }] },
      });
    }
    seen.add(index);
    const unknown = [...new Set(item.labels.filter((l) => !rule.labels.includes(l)))];
    if (unknown.length > 0) {
      throw new ApiError(
        "unknown_label",
        `model '${row.model_id}' version ${row.model_version} has no label ${unknown.map((l) => `'${l.slice(0, 128)}'`).join(", ")}; its labels are ${rule.labels.slice(0, 50).join(", ")}`,
        { extensions: { unknown_labels: unknown.slice(0, 50), labels: rule.labels.slice(0, 4096) } },
      );
    }
    const labels = rule.labels.filter((l) => item.labels.includes(l));
    if (rule.task !== "multilabel" && labels.length !== 1) {
      throw new ApiError(
        "invalid_request",
        `a ${rule.task} model takes exactly one true label per item (got ${labels.length}); one of ${rule.labels.slice(0, 50).join(", ")}`,
        { extensions: { errors: [{ path: `items.${k}.labels`, message: "exactly one label" }] } },
      );
    }
    return { row, item, labels };
  });
}

/** The feedback already recorded for `seqs`, by log row. */
async function recorded(db: D1Database, seqs: readonly number[]): Promise<Map<number, FeedbackRow>> {
  const out = new Map<number, FeedbackRow>();
  // D1 binds at most 100 parameters per statement.
  for (let i = 0; i < seqs.length; i += 90) {
    const chunk = seqs.slice(i, i + 90);
    const { results } = await d1("read feedback", () =>
      db
        .prepare(
          `SELECT log_seq, labels, text, created_at FROM feedback WHERE log_seq IN (${chunk.map(() => "?").join(",")})`,
        )
        .bind(...chunk)
        .all<FeedbackRow>(),
    );
    for (const r of results) out.set(r.log_seq, r);
  }
  return out;
}

/** 409 when an item already has different labels. */
function conflicts(
  labelled: readonly { row: LogRow; labels: string[] }[],
  recordedRows: ReadonlyMap<number, FeedbackRow>,
): void {
  for (const { row, labels } of labelled) {
    const stored = recordedRows.get(row.seq);
    if (stored && stored.labels !== JSON.stringify(labels)) {
      const earlier = JSON.parse(stored.labels) as string[];
      throw new ApiError(
        "feedback_conflict",
        `item ${row.item} already has feedback ${JSON.stringify(earlier)} (recorded ${new Date(stored.created_at).toISOString()}); feedback is recorded once per prediction — send the same labels to read it back`,
        { extensions: { index: row.item, recorded_labels: earlier } },
      );
    }
  }
}

/** The texts of an async prediction's stored input ([] for an image, or when it is gone). */
async function storedInputs(
  env: Pick<Env, "DB" | "MODELS">,
  predictionId: string,
): Promise<readonly string[]> {
  const row = await d1("read prediction", () =>
    env.DB.prepare("SELECT input_key FROM predictions WHERE id = ?")
      .bind(predictionId)
      .first<{ input_key: string }>(),
  );
  if (!row) return [];
  const object = await env.MODELS.get(row.input_key);
  if (!object) return [];
  const input = (await object.json()) as { text?: string; texts?: string[] };
  return input.texts ?? (input.text === undefined ? [] : [input.text]);
}
