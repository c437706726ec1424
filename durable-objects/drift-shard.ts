import { DurableObject } from "cloudflare:workers";
import { DELIVERIES_TABLE, firstDelivery, pruneDeliveries } from "../src/batch";
import { DRIFT_KEEP_HOURS, type DriftBatch, HOUR_MS, type HourProfile } from "../src/drift/live";
import type { Signals } from "../src/drift/profile";

const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * One shard of one model's live profiles (named `<model id>:<index>`): per version and UTC hour, the
 * count of scored inputs and every signal's histogram (src/drift/profile.ts), one SQLite row per
 * non-empty bin. `record` is idempotent per batch id and its writes are one implicit transaction (no
 * await in between), so an input is counted exactly once even when delivery is retried; readers sum
 * the shards. Hours older than `DRIFT_KEEP_HOURS` are pruned by an alarm, so a shard holds at most
 * versions × 48 hours × (signals × bins) rows. Also remembers which (version, hour) warnings were
 * logged (`warnOnce`, shard 0 only), so the drift warning is logged once per hour.
 */
export class DriftShard extends DurableObject<Env> {
  private alarmSet = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS counts (
        version TEXT NOT NULL, hour INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (version, hour)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS bins (
        version TEXT NOT NULL, hour INTEGER NOT NULL, signal TEXT NOT NULL, bin INTEGER NOT NULL,
        n INTEGER NOT NULL, PRIMARY KEY (version, hour, signal, bin)
      ) WITHOUT ROWID;
      ${DELIVERIES_TABLE}
      CREATE TABLE IF NOT EXISTS warned (
        version TEXT NOT NULL, hour INTEGER NOT NULL, PRIMARY KEY (version, hour)
      ) WITHOUT ROWID;
    `);
  }

  /** Adds the batch's profiles unless its id was already counted; returns whether it was new. */
  async record(batch: DriftBatch): Promise<boolean> {
    const sql = this.ctx.storage.sql;
    if (!firstDelivery(sql, batch.id)) return false;
    for (const p of batch.profiles) {
      sql.exec(
        "INSERT INTO counts (version, hour, n) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        p.version,
        p.hour,
        p.count,
      );
      for (const [signal, bins] of Object.entries(p.signals)) {
        for (let bin = 0; bin < bins.length; bin++) {
          const n = bins[bin] as number;
          if (n === 0) continue;
          sql.exec(
            `INSERT INTO bins (version, hour, signal, bin, n) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO UPDATE SET n = n + excluded.n`,
            p.version,
            p.hour,
            signal,
            bin,
            n,
          );
        }
      }
    }
    await this.scheduleAlarm();
    return true;
  }

  /**
   * This shard's profiles of `version` for the hours in [`from`, `to`] (hour starts, epoch ms):
   * only hours with inputs. Each histogram has the length of its highest non-empty bin + 1 (the
   * reader pads it to the reference's bins).
   */
  async read(version: string, from: number, to: number): Promise<HourProfile[]> {
    const sql = this.ctx.storage.sql;
    const hours = new Map<number, HourProfile>();
    for (const row of sql.exec<{ hour: number; n: number }>(
      "SELECT hour, n FROM counts WHERE version = ? AND hour BETWEEN ? AND ?",
      version,
      from,
      to,
    )) {
      hours.set(row.hour, { version, hour: row.hour, count: row.n, signals: {} });
    }
    for (const row of sql.exec<{ hour: number; signal: string; bin: number; n: number }>(
      "SELECT hour, signal, bin, n FROM bins WHERE version = ? AND hour BETWEEN ? AND ?",
      version,
      from,
      to,
    )) {
      const h = hours.get(row.hour);
      if (!h) continue;
      const signals: Signals = h.signals;
      const bins = signals[row.signal] ?? [];
      signals[row.signal] = bins;
      while (bins.length <= row.bin) bins.push(0);
      bins[row.bin] = row.n;
    }
    return [...hours.values()];
  }

  /** True the first time it is asked about (`version`, `hour`): the caller logs the warning then. */
  async warnOnce(version: string, hour: number): Promise<boolean> {
    const rows = this.ctx.storage.sql
      .exec(
        "INSERT INTO warned (version, hour) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING hour",
        version,
        hour,
      )
      .toArray();
    if (rows.length > 0) await this.scheduleAlarm();
    return rows.length > 0;
  }

  /**
   * Forgets every version's live profiles and logged warnings (the model was deleted: a model that
   * reuses the id, even with the same version names, starts from nothing). The tables stay, so the
   * shard keeps recording without a restart; delivery ids stay too (a retried batch is not counted).
   */
  async clear(): Promise<void> {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM counts");
    sql.exec("DELETE FROM bins");
    sql.exec("DELETE FROM warned");
  }

  /** Prunes hours past `DRIFT_KEEP_HOURS` and old delivery ids; re-arms while data remains. */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const oldest = Math.floor(now / HOUR_MS) * HOUR_MS - (DRIFT_KEEP_HOURS - 1) * HOUR_MS;
    sql.exec("DELETE FROM counts WHERE hour < ?", oldest);
    sql.exec("DELETE FROM bins WHERE hour < ?", oldest);
    sql.exec("DELETE FROM warned WHERE hour < ?", oldest);
    pruneDeliveries(sql, now);
    const left = sql
      .exec<{ n: number }>(
        "SELECT (SELECT COUNT(*) FROM counts) + (SELECT COUNT(*) FROM seen) + (SELECT COUNT(*) FROM warned) AS n",
      )
      .one().n;
    this.alarmSet = left > 0;
    if (left > 0) await this.ctx.storage.setAlarm(now + PRUNE_EVERY_MS);
  }

  private async scheduleAlarm(): Promise<void> {
    if (this.alarmSet) return;
    this.alarmSet = true;
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + PRUNE_EVERY_MS);
  }
}
