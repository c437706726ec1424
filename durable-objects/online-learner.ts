import { DurableObject } from "cloudflare:workers";
import { concatBytes } from "../src/bytes";
import { loadConfig } from "../src/config";
import { BANK_FEATURIZER } from "../src/contracts/manifest";
import { createLogger } from "../src/log";
import { bankFeatures } from "../src/online/features";
import { DEFAULT_LEARNER, OnlineSoftmax } from "../src/online/learner";
import type { BankPredictInput, BankSample } from "../src/online/sample";
import { buildSnapshot, publishSnapshot, snapshotVersion } from "../src/online/snapshot";
import { type ClassificationSummary, classificationSummary } from "../src/training/metrics";

/** Predictions the windowed metrics cover (the last N made before learning). */
export const METRICS_WINDOW = 1000;
/** Checkpoint bytes per SQLite row (rows are limited to 2 MB). */
const CHECKPOINT_PART_BYTES = 1 << 20;

/** The latest published snapshot of an online model. */
export interface SnapshotInfo {
  version: string;
  samples: number;
  created_at: string;
}

/** Persistent counters of one online model (one SQLite row, JSON). */
interface LearnerState {
  model_id: string | null;
  /** Incremented by every applied samples request. */
  version: number;
  samples: number;
  /** Samples the stored checkpoint has learned (0: none; the state is rebuilt from the samples). */
  checkpoint_samples: number;
  snapshot: SnapshotInfo | null;
  /** When the first sample not in the latest snapshot arrived (ms), or null when none is pending. */
  pending_since: number | null;
  /** Why the last snapshot attempt failed, until one succeeds. */
  snapshot_error: string | null;
}

/** What `POST /api/v1/models/:id/samples` returns. */
export interface IngestResult {
  model: string;
  accepted: number;
  samples_total: number;
  /** The learner's version after this request: +1 per applied request, so concurrent posts get distinct versions. */
  version: number;
  classes_seen: number;
  new_classes: number;
  /** Accuracy of the last `METRICS_WINDOW` predictions made before learning. */
  accuracy_last_1000: number | null;
  /** The snapshot the edge predict path serves (null before the first one). */
  snapshot: SnapshotInfo | null;
}

/** Outcome of `ingest`: applied (`result`), or refused as a whole with nothing applied (`refused`). */
export interface IngestOutcome {
  result: IngestResult | null;
  refused: { code: "label_limit_reached"; detail: string; limit: number } | null;
}

/** One point of the metrics series, recorded every `METRICS_WINDOW` samples. */
export interface SeriesPoint extends Omit<ClassificationSummary, "rows"> {
  samples: number;
  at: string;
  classes: number;
}

/** What `GET /api/v1/models/:id/metrics` returns. */
export interface MetricsReport {
  model: string;
  version: number;
  samples_total: number;
  classes_seen: number;
  /** Metrics of the last `window.rows` (≤ 1,000) predictions made before learning. */
  window: ClassificationSummary;
  /**
   * Prequential accuracy since the model was created or last reset: every sample's prediction,
   * made before learning from it, against its label.
   */
  cumulative: { samples: number; correct: number; accuracy: number | null };
  snapshot: SnapshotInfo | null;
  snapshot_pending_samples: number;
  /** When the oldest sample not yet in a snapshot arrived (the next snapshot is due from it). */
  snapshot_pending_since: string | null;
  snapshot_error: string | null;
  series: SeriesPoint[];
}

/** The learner's own top-k prediction. */
export interface LearnerPrediction {
  version: number;
  samples_total: number;
  top: { AccountNumber: string; score: number }[];
}

const INITIAL_STATE: LearnerState = {
  model_id: null,
  version: 0,
  samples: 0,
  checkpoint_samples: 0,
  snapshot: null,
  pending_since: null,
  snapshot_error: null,
};

/**
 * One object per online model (`idFromName(modelId)`): it serialises every update, so concurrent
 * sample posts never lose one. For each sample it predicts with the current weights, stores the
 * sample with that prediction (SQLite), then learns from it (`OnlineSoftmax.step`).
 *
 * Durability without rewriting the weights on every request: the samples table is the log, and a
 * checkpoint of the learner's exact state is written with each snapshot. A fresh instance loads
 * the checkpoint and re-learns the samples stored after it; the learner is deterministic, so the
 * rebuilt weights are bit-identical. Snapshots (int8 ONNX, published and activated through the
 * registry) are taken by the alarm every `ONLINE_SNAPSHOT_SAMPLES` samples or
 * `ONLINE_SNAPSHOT_SECONDS` after the first sample not yet in one.
 */
export class OnlineLearner extends DurableObject<Env> {
  private learner = new OnlineSoftmax(BANK_FEATURIZER, DEFAULT_LEARNER);
  private state: LearnerState = { ...INITIAL_STATE };
  /** Ring of the last `METRICS_WINDOW` (predicted, true) labels; predicted is null before any label. */
  private windowPredicted: (string | null)[] = [];
  private windowTruth: string[] = [];
  private windowCorrect = 0;
  /** After a failed snapshot, no retry before this time (ms). */
  private retryAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.createTables();
    void ctx.blockConcurrencyWhile(async () => this.load());
  }

  private createTables(): void {
    const sql = this.ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS samples (
      seq INTEGER PRIMARY KEY, company TEXT NOT NULL, entry_date TEXT NOT NULL, entry_text TEXT NOT NULL,
      amount TEXT NOT NULL, account_name TEXT NOT NULL, account_number TEXT NOT NULL,
      account_type TEXT NOT NULL, predicted TEXT, received_at INTEGER NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS checkpoint (part INTEGER PRIMARY KEY, bytes BLOB NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS series (samples INTEGER PRIMARY KEY, point TEXT NOT NULL)`);
  }

  /**
   * Forgets everything: weights, samples, metrics, counters and a pending snapshot alarm (the
   * model's published snapshots are the registry's and stay). Used when an online model is
   * created, reset or deleted through the API.
   */
  async reset(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.createTables();
    this.retryAt = 0;
    this.load();
  }

  /** Rebuilds the in-memory state from storage: counters, checkpoint + replay, metrics window. */
  private load(): void {
    const sql = this.ctx.storage.sql;
    const row = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'state'").toArray()[0];
    this.state = row ? (JSON.parse(row.value) as LearnerState) : { ...INITIAL_STATE };
    if (this.state.checkpoint_samples > 0) {
      const parts = sql
        .exec<{ bytes: ArrayBuffer }>("SELECT bytes FROM checkpoint ORDER BY part")
        .toArray()
        .map((r) => new Uint8Array(r.bytes));
      this.learner = OnlineSoftmax.fromCheckpoint(concatBytes(parts));
    } else {
      this.learner = new OnlineSoftmax(BANK_FEATURIZER, DEFAULT_LEARNER);
    }
    const replay = sql.exec<{ company: string; entry_text: string; amount: string; account_number: string }>(
      "SELECT company, entry_text, amount, account_number FROM samples WHERE seq > ? ORDER BY seq",
      this.learner.learned,
    );
    for (const r of replay) {
      const input = { CompanyId: r.company, BankEntryText: r.entry_text, BankEntryAmount: r.amount };
      this.learner.learn(bankFeatures(input), r.account_number);
    }
    if (this.learner.learned !== this.state.samples) {
      throw new Error(
        `online learner rebuilt ${this.learner.learned} samples, state says ${this.state.samples}`,
      );
    }
    const recent = sql
      .exec<{ predicted: string | null; account_number: string }>(
        "SELECT predicted, account_number FROM samples ORDER BY seq DESC LIMIT ?",
        METRICS_WINDOW,
      )
      .toArray()
      .reverse();
    this.windowPredicted = recent.map((r) => r.predicted);
    this.windowTruth = recent.map((r) => r.account_number);
    this.windowCorrect = recent.filter((r) => r.predicted === r.account_number).length;
  }

  private saveState(): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('state', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      JSON.stringify(this.state),
    );
  }

  /**
   * Applies `samples` in order (predict, store with the prediction, learn), all or nothing: a
   * request that would grow the label set past `ONLINE_MAX_LABELS` is refused whole.
   */
  async ingest(modelId: string, samples: BankSample[]): Promise<IngestOutcome> {
    const config = loadConfig(this.env as unknown as Record<string, unknown>);
    const newLabels = new Set(
      samples.map((s) => s.AccountNumber).filter((l) => this.learner.indexOf(l) === undefined),
    );
    if (this.learner.labels.length + newLabels.size > config.ONLINE_MAX_LABELS) {
      return {
        result: null,
        refused: {
          code: "label_limit_reached",
          detail: `these samples add ${newLabels.size} account(s) to the ${this.learner.labels.length} known; the limit is ${config.ONLINE_MAX_LABELS}`,
          limit: config.ONLINE_MAX_LABELS,
        },
      };
    }
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    try {
      this.ctx.storage.transactionSync(() => {
        this.state.model_id ??= modelId;
        for (const s of samples) {
          const p = this.learner.step(bankFeatures(s), s.AccountNumber);
          const predicted = p < 0 ? null : (this.learner.labels[p] as string);
          const seq = ++this.state.samples;
          sql.exec(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            seq,
            s.CompanyId,
            s.BankEntryDate,
            s.BankEntryText,
            s.BankEntryAmount,
            s.AccountName,
            s.AccountNumber,
            s.AccountTypeName,
            predicted,
            now,
          );
          this.pushWindow(predicted, s.AccountNumber);
          if (seq % METRICS_WINDOW === 0) this.recordSeriesPoint(seq, now);
        }
        this.state.version++;
        this.state.pending_since ??= now;
        this.saveState();
      });
    } catch (error) {
      // Storage rolled back; bring memory back in line with it before rethrowing.
      this.load();
      throw error;
    }
    // Read before any await: the result describes this request's update.
    const result: IngestResult = {
      model: modelId,
      accepted: samples.length,
      samples_total: this.state.samples,
      version: this.state.version,
      classes_seen: this.learner.labels.length,
      new_classes: newLabels.size,
      accuracy_last_1000: this.windowTruth.length > 0 ? this.windowCorrect / this.windowTruth.length : null,
      snapshot: this.state.snapshot,
    };
    await this.schedule(config, false);
    return { result, refused: null };
  }

  private pushWindow(predicted: string | null, truth: string): void {
    this.windowPredicted.push(predicted);
    this.windowTruth.push(truth);
    if (predicted === truth) this.windowCorrect++;
    if (this.windowTruth.length > METRICS_WINDOW) {
      if (this.windowPredicted.shift() === this.windowTruth.shift()) this.windowCorrect--;
    }
  }

  private windowSummary(): ClassificationSummary {
    const ids = new Map<string | null, number>();
    const id = (label: string | null) => {
      let v = ids.get(label);
      if (v === undefined) {
        v = ids.size;
        ids.set(label, v);
      }
      return v;
    };
    return classificationSummary(this.windowPredicted.map(id), this.windowTruth.map(id));
  }

  private recordSeriesPoint(samples: number, now: number): void {
    const { rows: _rows, ...summary } = this.windowSummary();
    const point: SeriesPoint = {
      samples,
      at: new Date(now).toISOString(),
      classes: this.learner.labels.length,
      ...summary,
    };
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO series VALUES (?, ?)", samples, JSON.stringify(point));
  }

  /** Metrics of the last predictions, counters, the latest snapshot and the series for plotting. */
  metrics(modelId: string): MetricsReport {
    const series = this.ctx.storage.sql
      .exec<{ point: string }>("SELECT point FROM series ORDER BY samples")
      .toArray()
      .map((r) => JSON.parse(r.point) as SeriesPoint);
    const correct =
      this.ctx.storage.sql
        .exec<{ n: number }>("SELECT count(*) AS n FROM samples WHERE predicted = account_number")
        .toArray()[0]?.n ?? 0;
    return {
      model: this.state.model_id ?? modelId,
      version: this.state.version,
      samples_total: this.state.samples,
      classes_seen: this.learner.labels.length,
      window: this.windowSummary(),
      cumulative: {
        samples: this.state.samples,
        correct,
        accuracy: this.state.samples === 0 ? null : correct / this.state.samples,
      },
      snapshot: this.state.snapshot,
      snapshot_pending_samples: this.state.samples - (this.state.snapshot?.samples ?? 0),
      snapshot_pending_since:
        this.state.pending_since === null ? null : new Date(this.state.pending_since).toISOString(),
      snapshot_error: this.state.snapshot_error,
      series,
    };
  }

  /** The learner's own top-`nTop` prediction with the weights as of now (no snapshot involved). */
  predict(input: BankPredictInput, nTop: number): LearnerPrediction {
    const p = this.learner.probabilities(bankFeatures(input));
    const top = Array.from(p, (score, k) => ({ AccountNumber: this.learner.labels[k] as string, score }))
      .sort((a, b) => b.score - a.score)
      .slice(0, nTop);
    return { version: this.state.version, samples_total: this.state.samples, top };
  }

  /**
   * Sets the alarm for the next snapshot when samples are pending: now once
   * `ONLINE_SNAPSHOT_SAMPLES` have accumulated, else `ONLINE_SNAPSHOT_SECONDS` after the first
   * pending one (never before `retryAt` after a failure).
   */
  private async schedule(config: ReturnType<typeof loadConfig>, inAlarm: boolean): Promise<void> {
    const { samples, pending_since } = this.state;
    const pending = samples - (this.state.snapshot?.samples ?? 0);
    if (pending === 0 || pending_since === null) return;
    const due = Math.max(
      this.retryAt,
      pending >= config.ONLINE_SNAPSHOT_SAMPLES
        ? Date.now()
        : pending_since + config.ONLINE_SNAPSHOT_SECONDS * 1000,
    );
    // Inside the alarm handler the running alarm may still read as scheduled: set directly.
    const current = inAlarm ? null : await this.ctx.storage.getAlarm();
    if (current === null || current > due) await this.ctx.storage.setAlarm(due);
  }

  /** Takes a snapshot: checkpoint, export, publish + activate through the registry. */
  override async alarm(): Promise<void> {
    const config = loadConfig(this.env as unknown as Record<string, unknown>);
    const id = this.state.model_id;
    const samples = this.state.samples;
    if (id === null || samples === (this.state.snapshot?.samples ?? 0) || this.learner.labels.length === 0) {
      return;
    }
    this.writeCheckpoint();
    const window = this.windowSummary();
    try {
      // buildSnapshot copies the weights before its first await: samples learned meanwhile are not in it.
      const snapshot = await buildSnapshot(this.learner, id, samples, {
        accuracy_last_1000: window.accuracy,
        precision_weighted_last_1000: window.precision_weighted,
        recall_weighted_last_1000: window.recall_weighted,
      });
      await publishSnapshot(this.env, snapshot);
      this.state.snapshot = {
        version: snapshotVersion(samples),
        samples,
        created_at: snapshot.manifest.created_at,
      };
      this.state.snapshot_error = null;
      this.state.pending_since = this.state.samples > samples ? Date.now() : null;
      this.retryAt = 0;
    } catch (error) {
      this.state.snapshot_error = error instanceof Error ? error.message : String(error);
      this.retryAt = Date.now() + config.ONLINE_SNAPSHOT_SECONDS * 1000;
      createLogger(config.LOG_LEVEL).log("error", "online_snapshot_failed", {
        model: id,
        samples,
        error: this.state.snapshot_error,
      });
    }
    this.saveState();
    await this.schedule(config, true);
  }

  /** Replaces the stored checkpoint with the learner's current state. */
  private writeCheckpoint(): void {
    const bytes = this.learner.checkpoint();
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      sql.exec("DELETE FROM checkpoint");
      for (let part = 0; part * CHECKPOINT_PART_BYTES < bytes.byteLength; part++) {
        const chunk = bytes.subarray(part * CHECKPOINT_PART_BYTES, (part + 1) * CHECKPOINT_PART_BYTES);
        sql.exec("INSERT INTO checkpoint VALUES (?, ?)", part, chunk);
      }
      this.state.checkpoint_samples = this.learner.learned;
      this.saveState();
    });
  }
}
