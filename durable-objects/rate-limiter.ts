import { DurableObject } from "cloudflare:workers";
import type { RatePolicy } from "../src/metering/limits";

/** Outcome of one `take`, with what the IETF `RateLimit` header and `Retry-After` need. */
export interface RateDecision {
  allowed: boolean;
  /** Requests that may still be made right now (`r`). */
  remaining: number;
  /** Seconds until the full burst is available again (`t`), rounded up. */
  resetSeconds: number;
  /** Seconds until a refused request would be accepted, rounded up; 0 when allowed. */
  retryAfterSeconds: number;
}

/**
 * GCRA (the generic cell rate algorithm, a token bucket stored as one timestamp). A request costs
 * one emission interval `T = window / limit`; the theoretical arrival time `tat` advances by `T`
 * per accepted request and the request is accepted while `tat' - now <= burst * T`. A refusal
 * leaves `tat` untouched, so it consumes no quota. Times are in milliseconds.
 */
export function gcra(tat: number, now: number, policy: RatePolicy): { decision: RateDecision; tat: number } {
  const interval = (policy.window * 1000) / policy.limit;
  const capacity = (policy.burst ?? policy.limit) * interval;
  const base = Math.max(tat, now);
  const next = base + interval;
  // Float slack of 1/1000 interval: `interval` may be fractional (60 000 / 7), and rounding must
  // never cost a whole request.
  const slack = interval / 1000;
  const seconds = (ms: number) => Math.ceil((ms - slack) / 1000);
  if (next - now > capacity + slack) {
    const wait = next - capacity - now;
    return {
      tat,
      decision: {
        allowed: false,
        remaining: 0,
        resetSeconds: seconds(base - now),
        retryAfterSeconds: Math.max(1, seconds(wait)),
      },
    };
  }
  return {
    tat: next,
    decision: {
      allowed: true,
      remaining: Math.floor((capacity - (next - now) + slack) / interval),
      resetSeconds: seconds(next - now),
      retryAfterSeconds: 0,
    },
  };
}

/**
 * One object per caller (`idFromName(caller)`), holding that caller's GCRA state per API in
 * SQLite. The object handles one call at a time and `take` does its read-decide-write without
 * awaiting, so concurrent requests are decided strictly one after another. Expired rows (bucket
 * full again) are pruned by an alarm.
 */
export class RateLimiter extends DurableObject<Env> {
  /** Time of the scheduled alarm; `undefined` until read from storage. */
  private alarmAt: number | null | undefined;
  /** Write-through cache of the `gcra` rows read so far: a decision costs one write, no read. */
  private readonly tats = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS gcra (api TEXT PRIMARY KEY, tat REAL NOT NULL)");
  }

  /**
   * Takes one request from this caller's quota for `api` under `policy`. `now` exists for tests
   * (injected clock); production callers leave it to this object's clock.
   */
  async take(api: string, policy: RatePolicy, now: number = Date.now()): Promise<RateDecision> {
    const sql = this.ctx.storage.sql;
    const tat =
      this.tats.get(api) ??
      sql.exec<{ tat: number }>("SELECT tat FROM gcra WHERE api = ?", api).toArray()[0]?.tat ??
      now;
    const result = gcra(tat, now, policy);
    if (result.decision.allowed) {
      this.tats.set(api, result.tat);
      sql.exec(
        "INSERT INTO gcra (api, tat) VALUES (?, ?) ON CONFLICT (api) DO UPDATE SET tat = excluded.tat",
        api,
        result.tat,
      );
      await this.scheduleAlarm(result.tat);
    }
    return result.decision;
  }

  /** Deletes rows whose bucket is full again; re-arms while any remain. */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM gcra WHERE tat <= ?", Date.now());
    this.tats.clear();
    const latest = sql.exec<{ tat: number | null }>("SELECT MAX(tat) AS tat FROM gcra").one().tat;
    // Re-armed directly: inside the handler the running alarm may still read as scheduled.
    this.alarmAt = latest === null ? null : Math.max(Math.ceil(latest), Date.now() + 1000);
    if (this.alarmAt !== null) await this.ctx.storage.setAlarm(this.alarmAt);
  }

  private async scheduleAlarm(at: number): Promise<void> {
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null) return;
    this.alarmAt = Math.max(Math.ceil(at), Date.now());
    await this.ctx.storage.setAlarm(this.alarmAt);
  }
}
