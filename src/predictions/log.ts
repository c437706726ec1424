/**
 * The prediction log: one D1 row per scored text, sync and async, written off the response path.
 * Rows arriving within a few milliseconds in an isolate are inserted together, in one D1 batch
 * (one round trip) that the request opening the batch leaves to `ctx.waitUntil`. A failed insert
 * is logged and dropped: the log never fails or slows a prediction.
 */
import type { z } from "zod";
import type { PredictionLogPageSchema } from "../answers";
import { IsolateBatches } from "../batch";
import type { RequestState } from "../context";
import type { Logger } from "../log";

/** One scored item. */
export interface PredictionLogEntry {
  at: number;
  kind: "sync" | "async";
  caller: string | null;
  modelId: string;
  modelVersion: string;
  /** The client's `request_id`, JSON-encoded (it may be a string or a number). */
  requestId: string | null;
  predictionId: string | null;
  item: number;
  latencyMs: number;
  labels: readonly string[];
  scores: ArrayLike<number>;
  /** The input text, only when `PREDICTION_LOG_INPUTS` is on. */
  input: string | null;
  /** The `X-Request-Id` of the HTTP request that scored a sync prediction (feedback finds it by it). */
  httpRequestId: string | null;
}

/** Rows collected for 10 ms are inserted together, at most 200 per flush. */
const batches = new IsolateBatches<PredictionLogEntry>(10, 200);

/**
 * Queues `entries` for insertion (see `IsolateBatches`: the request opening a batch leaves its
 * insert to `ctx.waitUntil`). A failed insert is logged once per batch and dropped.
 */
export function logPredictions(
  ctx: Pick<ExecutionContext, "waitUntil">,
  db: D1Database,
  entries: readonly PredictionLogEntry[],
  logger: Logger,
): void {
  if (entries.length === 0) return;
  batches.add(ctx, "log", entries, async (batch) => {
    try {
      await insert(db, batch);
    } catch (error) {
      logger.log("error", "prediction_log_failed", {
        rows: batch.length,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  });
}

/** One scoring of one or more items by one model version, as the log records it. */
export interface LoggedScoring {
  kind: "sync" | "async";
  caller: string | null;
  model: { id: string; version: string };
  /** The client's `request_id`, JSON-encoded. */
  requestId: string | null;
  predictionId: string | null;
  latencyMs: number;
  labels: readonly string[];
  /** Every label's score, one vector per item (never ranked or cut: `n_top` shapes only answers). */
  scores: readonly ArrayLike<number>[];
  /** The input texts (logged only with `PREDICTION_LOG_INPUTS`); images are never logged. */
  inputs?: readonly string[] | undefined;
  /** The `X-Request-Id` of a sync prediction's HTTP request. */
  httpRequestId?: string | undefined;
}

/** The log entries of one scoring, one per item: the one builder of prediction-log rows. */
export function predictionLogEntries(
  scoring: LoggedScoring,
  logInputs: boolean,
  at = Date.now(),
): PredictionLogEntry[] {
  return scoring.scores.map((scores, item) => ({
    at,
    kind: scoring.kind,
    caller: scoring.caller,
    modelId: scoring.model.id,
    modelVersion: scoring.model.version,
    requestId: scoring.requestId,
    predictionId: scoring.predictionId,
    item,
    latencyMs: scoring.latencyMs,
    labels: scoring.labels,
    scores,
    input: logInputs ? (scoring.inputs?.[item] ?? null) : null,
    httpRequestId: scoring.httpRequestId ?? null,
  }));
}

/**
 * Records the items of a synchronous prediction (`state.model` scored them) off the response path,
 * when `PREDICTION_LOG` is on; the input texts only with `PREDICTION_LOG_INPUTS`.
 */
export function logSyncPrediction(
  env: Env,
  ctx: ExecutionContext,
  state: RequestState,
  labels: readonly string[],
  scores: readonly ArrayLike<number>[],
  inputs?: readonly string[],
): void {
  const { config, model } = state;
  if (!config.PREDICTION_LOG || !model) return;
  const at = Date.now();
  const entries = predictionLogEntries(
    {
      kind: "sync",
      caller: state.caller?.issuer ?? null,
      model,
      requestId: state.clientRequestId === undefined ? null : JSON.stringify(state.clientRequestId),
      predictionId: null,
      latencyMs: at - state.startedAt,
      labels,
      scores,
      inputs,
      httpRequestId: state.requestId,
    },
    config.PREDICTION_LOG_INPUTS,
    at,
  );
  logPredictions(ctx, env.DB, entries, state.logger);
}

/**
 * Characters of row JSON one INSERT carries: the JSON is one bound string, and D1 caps a string at
 * 2,000,000 bytes (a JS character is at most 3 UTF-8 bytes here, a surrogate pair 4 for 2).
 */
const MAX_STATEMENT_CHARS = 600_000;

/**
 * Writes `entries` in one D1 batch of as few statements as possible: each statement binds one JSON
 * array of rows and SQLite unpacks it with `json_each`. Per row this costs a fraction of bound
 * parameters (D1 binds at most 100 per statement, i.e. 7 rows of 13 columns).
 */
function insert(db: D1Database, entries: readonly PredictionLogEntry[]): Promise<unknown> {
  const statements: D1PreparedStatement[] = [];
  let chunk: string[] = [];
  let chars = 0;
  const close = () => {
    statements.push(
      db
        .prepare(
          `INSERT INTO prediction_log (at, kind, caller, model_id, model_version, request_id, prediction_id,
             item, latency_ms, top_label, top_score, scores, input, http_request_id)
           SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6,
             value->>7, value->>8, value->>9, value->>10, value->>11, value->>12, value->>13 FROM json_each(?)`,
        )
        .bind(`[${chunk.join(",")}]`),
    );
    chunk = [];
    chars = 0;
  };
  for (const entry of entries) {
    const json = JSON.stringify(row(entry));
    if (chunk.length > 0 && chars + json.length > MAX_STATEMENT_CHARS) close();
    chunk.push(json);
    chars += json.length + 1;
  }
  if (chunk.length > 0) close();
  return db.batch(statements);
}

/** The column values of one log row, in `insert`'s column order. */
function row(e: PredictionLogEntry): (string | number | null)[] {
  let top = 0;
  for (let k = 1; k < e.scores.length; k++) if ((e.scores[k] as number) > (e.scores[top] as number)) top = k;
  const scores = Object.fromEntries(e.labels.map((label, k) => [label, e.scores[k] as number]));
  return [
    e.at,
    e.kind,
    e.caller,
    e.modelId,
    e.modelVersion,
    e.requestId,
    e.predictionId,
    e.item,
    e.latencyMs,
    e.labels[top] ?? "",
    (e.scores[top] as number) ?? 0,
    JSON.stringify(scores),
    e.input,
    e.httpRequestId,
  ];
}

interface LogRow {
  seq: number;
  at: number;
  kind: PredictionLogEntry["kind"];
  caller: string | null;
  model_id: string;
  model_version: string;
  request_id: string | null;
  prediction_id: string | null;
  item: number;
  latency_ms: number;
  top_label: string;
  top_score: number;
  scores: string;
  input: string | null;
}

/** A page of the log, oldest first, and the cursor of the next page (null at the end). */
export type LogPage = z.input<typeof PredictionLogPageSchema>;

/**
 * Reads up to `limit` rows after `cursor` (a `seq`), optionally of one caller (issuer), of one
 * model and since a time.
 */
export async function readLog(
  db: D1Database,
  query: {
    caller?: string | undefined;
    model?: string | undefined;
    since?: number | undefined;
    after: number;
    limit: number;
  },
): Promise<LogPage> {
  const where = ["seq > ?"];
  const args: (string | number)[] = [query.after];
  if (query.caller !== undefined) {
    where.push("caller = ?");
    args.push(query.caller);
  }
  if (query.model !== undefined) {
    where.push("model_id = ?");
    args.push(query.model);
  }
  if (query.since !== undefined) {
    where.push("at >= ?");
    args.push(query.since);
  }
  const { results } = await db
    .prepare(`SELECT * FROM prediction_log WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`)
    .bind(...args, query.limit + 1)
    .all<LogRow>();
  const page = results.slice(0, query.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      at: new Date(r.at).toISOString(),
      kind: r.kind,
      caller: r.caller,
      model: { id: r.model_id, version: r.model_version },
      request_id: r.request_id === null ? null : (JSON.parse(r.request_id) as string | number),
      prediction_id: r.prediction_id,
      item: r.item,
      latency_ms: r.latency_ms,
      top_label: r.top_label,
      top_score: r.top_score,
      scores: JSON.parse(r.scores) as Record<string, number>,
      ...(r.input === null ? {} : { input: r.input }),
    })),
    next_cursor: results.length > query.limit && last ? String(last.seq) : null,
  };
}
