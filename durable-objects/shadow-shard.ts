import { DurableObject } from "cloudflare:workers";
import { DELIVERIES_TABLE, firstDelivery, pruneDeliveries } from "../src/batch";
import { LATENCY_BINS } from "../src/metering/latency";
import { emptySums, type PairSums } from "../src/rollout/comparison";

/** Observations summed per pair, sent together; the id (reused on retries) makes a batch count once. */
export interface ShadowBatch {
  id: string;
  sums: PairSums[];
}

const PRUNE_EVERY_MS = 60_000;

/**
 * One shard of one model's shadow comparisons (named `<model>:<index>`): running sums per
 * (shadow version, serving version) pair and label, and a latency histogram, in SQLite (they
 * survive eviction and restarts). Storage is bounded by pairs × labels, whatever the traffic.
 * `recordBatch` is idempotent per batch id and its writes run with no await in between (one
 * implicit transaction), so concurrent and retried deliveries are each counted exactly once;
 * readers add the shards' sums (`src/rollout/shadow-stats.ts`). Pure logic: src/rollout/comparison.ts.
 */
export class ShadowShard extends DurableObject<Env> {
  private alarmSet = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS pairs (
        shadow TEXT NOT NULL, serving TEXT NOT NULL,
        runs INTEGER NOT NULL, errors INTEGER NOT NULL, items INTEGER NOT NULL, agree INTEGER NOT NULL,
        flagged_serving INTEGER NOT NULL, flagged_shadow INTEGER NOT NULL, latency_ms REAL NOT NULL,
        PRIMARY KEY (shadow, serving)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS labels (
        shadow TEXT NOT NULL, serving TEXT NOT NULL, label TEXT NOT NULL, abs_diff REAL NOT NULL,
        PRIMARY KEY (shadow, serving, label)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS latency (
        shadow TEXT NOT NULL, serving TEXT NOT NULL, bin INTEGER NOT NULL, runs INTEGER NOT NULL,
        PRIMARY KEY (shadow, serving, bin)
      ) WITHOUT ROWID;
      ${DELIVERIES_TABLE}
    `);
  }

  /**
   * Adds the sums of `batch` unless its id was already counted; whether it was new. A batch costs
   * a few writes per pair and label, however many shadow runs it sums.
   */
  async recordBatch(batch: ShadowBatch): Promise<boolean> {
    const sql = this.ctx.storage.sql;
    if (!firstDelivery(sql, batch.id)) return false;
    for (const o of batch.sums) {
      sql.exec(
        `INSERT INTO pairs (shadow, serving, runs, errors, items, agree, flagged_serving, flagged_shadow, latency_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET runs = runs + excluded.runs, errors = errors + excluded.errors,
           items = items + excluded.items, agree = agree + excluded.agree,
           flagged_serving = flagged_serving + excluded.flagged_serving,
           flagged_shadow = flagged_shadow + excluded.flagged_shadow,
           latency_ms = latency_ms + excluded.latency_ms`,
        o.shadow,
        o.serving,
        o.runs,
        o.errors,
        o.items,
        o.agree,
        o.flaggedServing,
        o.flaggedShadow,
        o.latencyMs,
      );
      for (const [label, diff] of Object.entries(o.absDiff)) {
        sql.exec(
          `INSERT INTO labels (shadow, serving, label, abs_diff) VALUES (?, ?, ?, ?)
           ON CONFLICT DO UPDATE SET abs_diff = abs_diff + excluded.abs_diff`,
          o.shadow,
          o.serving,
          label,
          diff,
        );
      }
      o.latency.forEach((runs, bin) => {
        if (runs <= 0 || bin >= LATENCY_BINS) return;
        sql.exec(
          `INSERT INTO latency (shadow, serving, bin, runs) VALUES (?, ?, ?, ?)
           ON CONFLICT DO UPDATE SET runs = runs + excluded.runs`,
          o.shadow,
          o.serving,
          bin,
          runs,
        );
      });
    }
    await this.scheduleAlarm();
    return true;
  }

  /** This shard's sums, one entry per (shadow, serving) pair. */
  async read(): Promise<PairSums[]> {
    const sql = this.ctx.storage.sql;
    const pairs = new Map<string, PairSums>();
    for (const row of sql.exec<{
      shadow: string;
      serving: string;
      runs: number;
      errors: number;
      items: number;
      agree: number;
      flagged_serving: number;
      flagged_shadow: number;
      latency_ms: number;
    }>("SELECT * FROM pairs")) {
      pairs.set(`${row.shadow}\n${row.serving}`, {
        ...emptySums(row.shadow, row.serving),
        runs: row.runs,
        errors: row.errors,
        items: row.items,
        agree: row.agree,
        flaggedServing: row.flagged_serving,
        flaggedShadow: row.flagged_shadow,
        latencyMs: row.latency_ms,
      });
    }
    for (const row of sql.exec<{ shadow: string; serving: string; label: string; abs_diff: number }>(
      "SELECT * FROM labels",
    )) {
      const pair = pairs.get(`${row.shadow}\n${row.serving}`);
      if (pair) pair.absDiff[row.label] = row.abs_diff;
    }
    for (const row of sql.exec<{ shadow: string; serving: string; bin: number; runs: number }>(
      "SELECT * FROM latency",
    )) {
      const pair = pairs.get(`${row.shadow}\n${row.serving}`);
      if (pair && row.bin >= 0 && row.bin < LATENCY_BINS) pair.latency[row.bin] = row.runs;
    }
    return [...pairs.values()];
  }

  /**
   * Forgets every comparison (the model was deleted). Rows, not the storage: `deleteAll()` drops the
   * tables too, and this object (still in memory, its constructor run) would then fail every
   * recording and read of a model reusing the id with "no such table" until evicted. Delivery ids
   * stay (a retried batch is not counted).
   */
  async clear(): Promise<void> {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM pairs");
    sql.exec("DELETE FROM labels");
    sql.exec("DELETE FROM latency");
  }

  /** Prunes delivery ids past their retention; re-arms while some remain. */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    pruneDeliveries(sql, now);
    const left = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM seen").one().n;
    this.alarmSet = left > 0;
    if (left > 0) await this.ctx.storage.setAlarm(now + PRUNE_EVERY_MS);
  }

  private async scheduleAlarm(): Promise<void> {
    if (this.alarmSet) return;
    this.alarmSet = true;
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + PRUNE_EVERY_MS);
    }
  }
}
