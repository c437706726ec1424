import { DurableObject } from "cloudflare:workers";
import { DELIVERIES_TABLE, firstDelivery, pruneDeliveries } from "../src/batch";
import { LATENCY_BINS, latencyBin } from "../src/metering/latency";

/** One finished request, as counted by a shard. */
export interface CallEvent {
  /** Request start, epoch ms: picks the buckets. */
  at: number;
  status: number;
  latencyMs: number;
  caller: string;
}

/** One shard's view of the recent windows, all series oldest first, ending at `now`'s bucket. */
export interface ShardSnapshot {
  perSecond: number[];
  perMinute: number[];
  perHour: number[];
  /** Calls per status class (`2xx`, …) over the `perHour` window. */
  status: Record<string, number>;
  /** Sum of latencies over the `perHour` window. */
  latencyMsSum: number;
  /** Calls per caller in the current minute. */
  callers: Record<string, number>;
  /** Calls per status class per minute (`perMinute`'s window), e.g. `{"5xx": [0, 2, …]}`. */
  perMinuteStatus: Record<string, number[]>;
  /** Latency histograms (`src/metering/latency.ts` bins) over the last 60 minutes and the last 24 h. */
  latencyLastHour: number[];
  latencyLastDay: number[];
}

/** Bucket size, number of buckets reported, and retention before pruning, per unit. */
const UNITS = {
  s: { size: 1000, count: 60, keepMs: 2 * 60_000 },
  m: { size: 60_000, count: 60, keepMs: 2 * 3_600_000 },
  h: { size: 3_600_000, count: 24, keepMs: 25 * 3_600_000 },
} as const;
type Unit = keyof typeof UNITS;

const CALLERS_KEEP_MS = 2 * 60_000;
const PRUNE_EVERY_MS = 60_000;

/** Events sent together; the id (unique per batch, reused on retries) makes a batch count once. */
export interface CallBatch {
  id: string;
  events: CallEvent[];
}

/**
 * One shard of one API's counters (named `<api>:<index>`). Each call is added to UTC-aligned
 * second, minute and hour buckets in SQLite, so counts survive eviction and restarts. `recordBatch`
 * is idempotent per batch id and its writes are one atomic batch (no await in between), so a call
 * is counted exactly once even when delivery is retried. An alarm prunes old buckets.
 */
export class StatsShard extends DurableObject<Env> {
  private alarmSet = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS buckets (
        unit TEXT NOT NULL, start INTEGER NOT NULL, class TEXT NOT NULL,
        calls INTEGER NOT NULL, latency_ms REAL NOT NULL,
        PRIMARY KEY (unit, start, class)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS callers (
        minute INTEGER NOT NULL, caller TEXT NOT NULL, calls INTEGER NOT NULL,
        PRIMARY KEY (minute, caller)
      ) WITHOUT ROWID;
      ${DELIVERIES_TABLE}
      CREATE TABLE IF NOT EXISTS latency (
        unit TEXT NOT NULL, start INTEGER NOT NULL, bin INTEGER NOT NULL, calls INTEGER NOT NULL,
        PRIMARY KEY (unit, start, bin)
      ) WITHOUT ROWID;
    `);
  }

  /**
   * Counts the events of `batch` unless a batch with its id was already counted (a retried
   * delivery); returns whether it was new. The events are summed per bucket first, so a batch
   * costs a handful of writes whatever its size, all in one implicit transaction.
   */
  async recordBatch(batch: CallBatch): Promise<boolean> {
    const sql = this.ctx.storage.sql;
    if (!firstDelivery(sql, batch.id)) return false;
    const buckets = new Map<
      string,
      { unit: Unit; start: number; cls: string; calls: number; latencyMs: number }
    >();
    const callers = new Map<string, { minute: number; caller: string; calls: number }>();
    const latency = new Map<string, { unit: Unit; start: number; bin: number; calls: number }>();
    for (const event of batch.events) {
      const bin = latencyBin(event.latencyMs);
      for (const unit of ["m", "h"] as const) {
        const start = bucketStart(event.at, unit);
        const key = `${unit}|${start}|${bin}`;
        const entry = latency.get(key) ?? { unit, start, bin, calls: 0 };
        entry.calls++;
        latency.set(key, entry);
      }
      const cls = `${Math.floor(event.status / 100)}xx`;
      for (const unit of Object.keys(UNITS) as Unit[]) {
        const start = bucketStart(event.at, unit);
        const key = `${unit}|${start}|${cls}`;
        const bucket = buckets.get(key) ?? { unit, start, cls, calls: 0, latencyMs: 0 };
        bucket.calls++;
        bucket.latencyMs += event.latencyMs;
        buckets.set(key, bucket);
      }
      const minute = bucketStart(event.at, "m");
      const key = `${minute}|${event.caller}`;
      const entry = callers.get(key) ?? { minute, caller: event.caller, calls: 0 };
      entry.calls++;
      callers.set(key, entry);
    }
    for (const b of buckets.values()) {
      sql.exec(
        `INSERT INTO buckets (unit, start, class, calls, latency_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET calls = calls + excluded.calls, latency_ms = latency_ms + excluded.latency_ms`,
        b.unit,
        b.start,
        b.cls,
        b.calls,
        b.latencyMs,
      );
    }
    for (const c of callers.values()) {
      sql.exec(
        `INSERT INTO callers (minute, caller, calls) VALUES (?, ?, ?)
         ON CONFLICT DO UPDATE SET calls = calls + excluded.calls`,
        c.minute,
        c.caller,
        c.calls,
      );
    }
    for (const l of latency.values()) {
      sql.exec(
        `INSERT INTO latency (unit, start, bin, calls) VALUES (?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET calls = calls + excluded.calls`,
        l.unit,
        l.start,
        l.bin,
        l.calls,
      );
    }
    await this.scheduleAlarm();
    return true;
  }

  /** This shard's windows ending at `now` (epoch ms; the caller's clock, injectable in tests). */
  async read(now: number): Promise<ShardSnapshot> {
    const sql = this.ctx.storage.sql;
    const series = (unit: Unit): number[] => {
      const { size, count } = UNITS[unit];
      const last = bucketStart(now, unit);
      const first = last - (count - 1) * size;
      const out = new Array<number>(count).fill(0);
      const rows = sql.exec<{ start: number; calls: number }>(
        "SELECT start, SUM(calls) AS calls FROM buckets WHERE unit = ? AND start BETWEEN ? AND ? GROUP BY start",
        unit,
        first,
        last,
      );
      for (const row of rows) out[(row.start - first) / size] = row.calls;
      return out;
    };
    const lastHour = bucketStart(now, "h");
    const status: Record<string, number> = {};
    let latencyMsSum = 0;
    for (const row of sql.exec<{ class: string; calls: number; latency: number }>(
      `SELECT class, SUM(calls) AS calls, SUM(latency_ms) AS latency FROM buckets
       WHERE unit = 'h' AND start BETWEEN ? AND ? GROUP BY class`,
      lastHour - (UNITS.h.count - 1) * UNITS.h.size,
      lastHour,
    )) {
      status[row.class] = row.calls;
      latencyMsSum += row.latency;
    }
    const callers: Record<string, number> = {};
    for (const row of sql.exec<{ caller: string; calls: number }>(
      "SELECT caller, calls FROM callers WHERE minute = ?",
      bucketStart(now, "m"),
    )) {
      callers[row.caller] = row.calls;
    }
    const lastMinute = bucketStart(now, "m");
    const firstMinute = lastMinute - (UNITS.m.count - 1) * UNITS.m.size;
    const perMinuteStatus: Record<string, number[]> = {};
    for (const row of sql.exec<{ start: number; class: string; calls: number }>(
      "SELECT start, class, calls FROM buckets WHERE unit = 'm' AND start BETWEEN ? AND ?",
      firstMinute,
      lastMinute,
    )) {
      perMinuteStatus[row.class] ??= new Array<number>(UNITS.m.count).fill(0);
      (perMinuteStatus[row.class] as number[])[(row.start - firstMinute) / UNITS.m.size] = row.calls;
    }
    const histogram = (unit: "m" | "h", first: number, last: number): number[] => {
      const out = new Array<number>(LATENCY_BINS).fill(0);
      for (const row of sql.exec<{ bin: number; calls: number }>(
        "SELECT bin, SUM(calls) AS calls FROM latency WHERE unit = ? AND start BETWEEN ? AND ? GROUP BY bin",
        unit,
        first,
        last,
      )) {
        out[row.bin] = row.calls;
      }
      return out;
    };
    return {
      perSecond: series("s"),
      perMinute: series("m"),
      perHour: series("h"),
      status,
      latencyMsSum,
      callers,
      perMinuteStatus,
      latencyLastHour: histogram("m", firstMinute, lastMinute),
      latencyLastDay: histogram("h", lastHour - (UNITS.h.count - 1) * UNITS.h.size, lastHour),
    };
  }

  /** Prunes buckets, callers and delivery ids past their retention; re-arms while data remains. */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    for (const unit of Object.keys(UNITS) as Unit[]) {
      sql.exec("DELETE FROM buckets WHERE unit = ? AND start < ?", unit, now - UNITS[unit].keepMs);
      sql.exec("DELETE FROM latency WHERE unit = ? AND start < ?", unit, now - UNITS[unit].keepMs);
    }
    sql.exec("DELETE FROM callers WHERE minute < ?", now - CALLERS_KEEP_MS);
    pruneDeliveries(sql, now);
    const left = sql
      .exec<{ n: number }>("SELECT (SELECT COUNT(*) FROM buckets) + (SELECT COUNT(*) FROM seen) AS n")
      .one().n;
    // Re-armed directly: inside the handler the running alarm may still read as scheduled.
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

/** Start (epoch ms) of the UTC-aligned bucket of `unit` containing `at`. */
function bucketStart(at: number, unit: Unit): number {
  return Math.floor(at / UNITS[unit].size) * UNITS[unit].size;
}
