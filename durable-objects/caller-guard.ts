import { DurableObject } from "cloudflare:workers";
import type { RatePolicy } from "../src/metering/limits";

/** Expired rows (spent ids, full buckets) are pruned at most this often. */
const PRUNE_EVERY_MS = 60_000;

/** How long rate decisions are collected before they are written to storage together. */
const PERSIST_RATES_AFTER_MS = 100;

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

/** What one request asks of its caller's guard; either part may be absent. */
export interface Admission {
  /** Replay protection: the token's id, recorded until `expiresAt` (ms since the epoch). */
  token?: { jti: string; expiresAt: number };
  /** Throttling: one request of `api` to take from the caller's quota under `policy`. */
  rate?: { api: string; policy: RatePolicy };
}

/** The guard's answer. On a replay nothing is recorded and no quota is taken. */
export interface AdmissionResult {
  replayed: boolean;
  /** The rate decision, when `rate` was asked and the token is not a replay. */
  decision?: RateDecision;
}

/**
 * The admission state of one caller (`idFromName(caller)`; the caller is the ASAP issuer once
 * authenticated): the token ids it has used (replay protection) and its GCRA state per API
 * (throttling), so an authenticated, throttled request costs one round trip. Both live in SQLite.
 *
 * The object handles one call at a time and every decision is made by synchronous code (a rate
 * take when the call arrives, a group of token ids in one write), so concurrent requests are
 * decided strictly one after another:
 * - Token ids are group-committed: an id joins the group written at the next turn of the event
 *   loop, where each id is inserted (or takes over an expired one) by one statement that says
 *   whether it was new, all in one commit. The answer leaves only after that (the output gate
 *   holds it until the commit), so an accepted id survives a restart.
 * - Rate state is decided in memory and written behind, all changed rows in one commit
 *   `PERSIST_RATES_AFTER_MS` after the first change. Should the object crash in between, the
 *   caller regains at most that many milliseconds of quota.
 * An alarm prunes expired ids and full buckets, at most once a minute.
 */
export class CallerGuard extends DurableObject<Env> {
  /**
   * Time of the alarm this instance scheduled (null: none yet). A new instance sets its own on its
   * first write, replacing any earlier one: pruning is periodic, so either time serves.
   */
  private alarmAt: number | null = null;
  /** Token ids accepted but not yet written, with their expiry. */
  private readonly pendingIds = new Map<string, number>();
  /** Settles when `pendingIds` has been written, with the ids accepted. */
  private idsWritten: Promise<ReadonlySet<string>> | undefined;
  /** GCRA state per API: every row read so far and every decision since (the authority). */
  private readonly tats = new Map<string, number>();
  /** APIs whose state in `tats` is newer than their row. */
  private readonly dirtyApis = new Set<string>();
  private ratesTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS seen (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
    );
    // Pruning once a minute scans the table; an expiry index would cost every id a second write.
    ctx.storage.sql.exec("DROP INDEX IF EXISTS seen_by_expiry");
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS gcra (api TEXT PRIMARY KEY, tat REAL NOT NULL)");
  }

  /**
   * Admits one request: takes one request from the quota, then records the token unless it is a
   * replay. A throttled request's token is not recorded, so it may be retried with the same token;
   * a replay's take is refunded, so it costs no quota. `now` exists for tests (injected clock for
   * the rate part); production callers leave it to this object's clock.
   */
  async admit(request: Admission, now: number = Date.now()): Promise<AdmissionResult> {
    const { token, rate } = request;
    // The same id twice in one group: the second is a replay whatever storage says of the first.
    if (token && this.pendingIds.has(token.jti)) return { replayed: true };
    const decision = rate && this.take(rate.api, rate.policy, now);
    if (token && decision?.allowed !== false) {
      const accepted = await this.record(token.jti, token.expiresAt);
      if (!accepted.has(token.jti)) {
        if (rate) this.refund(rate.api, rate.policy);
        return { replayed: true };
      }
    }
    return decision ? { replayed: false, decision } : { replayed: false };
  }

  /**
   * Adds `jti` (spent until `expiresAt`) to the group written at the next turn of the event loop;
   * settles, once the group is stored, with the ids that were not spent already.
   */
  private record(jti: string, expiresAt: number): Promise<ReadonlySet<string>> {
    this.pendingIds.set(jti, expiresAt);
    this.idsWritten ??= new Promise<ReadonlySet<string>>((resolve, reject) =>
      setTimeout(() => {
        try {
          resolve(this.writeIds());
        } catch (error) {
          reject(error);
        }
      }, 0),
    );
    return this.idsWritten;
  }

  /**
   * Writes the pending ids in one commit, each with one statement that inserts a new id or takes
   * over an expired one and reports which it did; returns the ids so accepted.
   */
  private writeIds(): Set<string> {
    const ids = [...this.pendingIds];
    this.pendingIds.clear();
    this.idsWritten = undefined;
    const now = Date.now();
    // All or nothing: should a statement fail, no id of the group is spent (all are answered 503).
    let latest = 0;
    const accepted = this.ctx.storage.transactionSync(() => {
      const fresh = new Set<string>();
      for (const [jti, expiresAt] of ids) {
        const inserted = this.ctx.storage.sql
          .exec(
            `INSERT INTO seen (jti, expires_at) VALUES (?, ?)
             ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at <= ?
             RETURNING 1`,
            jti,
            expiresAt,
            now,
          )
          .toArray();
        if (inserted.length === 0) continue;
        fresh.add(jti);
        latest = Math.max(latest, expiresAt);
      }
      return fresh;
    });
    this.ensureAlarm(latest);
    return accepted;
  }

  private take(api: string, policy: RatePolicy, now: number): RateDecision {
    const tat =
      this.tats.get(api) ??
      this.ctx.storage.sql.exec<{ tat: number }>("SELECT tat FROM gcra WHERE api = ?", api).toArray()[0]
        ?.tat ??
      now;
    const result = gcra(tat, now, policy);
    if (result.decision.allowed) {
      this.tats.set(api, result.tat);
      this.dirtyApis.add(api);
      this.ratesTimer ??= setTimeout(() => this.writeRates(), PERSIST_RATES_AFTER_MS);
    }
    return result.decision;
  }

  /** Gives back the request `take` took (its token turned out to be a replay). */
  private refund(api: string, policy: RatePolicy): void {
    const tat = this.tats.get(api);
    if (tat === undefined) return;
    this.tats.set(api, tat - (policy.window * 1000) / policy.limit);
    this.dirtyApis.add(api);
  }

  private writeRates(): void {
    if (this.ratesTimer !== undefined) clearTimeout(this.ratesTimer);
    this.ratesTimer = undefined;
    let latest = 0;
    for (const api of this.dirtyApis) {
      const tat = this.tats.get(api) as number;
      latest = Math.max(latest, tat);
      this.ctx.storage.sql.exec(
        "INSERT INTO gcra (api, tat) VALUES (?, ?) ON CONFLICT (api) DO UPDATE SET tat = excluded.tat",
        api,
        tat,
      );
    }
    this.dirtyApis.clear();
    this.ensureAlarm(latest);
  }

  /** Deletes spent ids that expired and buckets that are full again; re-arms while rows remain. */
  override async alarm(): Promise<void> {
    this.writeRates();
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    sql.exec("DELETE FROM seen WHERE expires_at <= ?", now);
    sql.exec("DELETE FROM gcra WHERE tat <= ?", now);
    this.tats.clear();
    const { next } = sql
      .exec<{ next: number | null }>(
        "SELECT MIN(t) AS next FROM (SELECT MIN(expires_at) AS t FROM seen UNION ALL SELECT MIN(tat) FROM gcra)",
      )
      .one();
    // Re-armed directly: inside the handler the running alarm may still read as scheduled.
    this.alarmAt = null;
    if (next !== null) this.ensureAlarm(next);
  }

  /** Arms the pruning alarm for a row expiring at `expiresAt` unless one is set (0: nothing written). */
  private ensureAlarm(expiresAt: number): void {
    if (this.alarmAt !== null || expiresAt === 0) return;
    const at = Math.max(Math.ceil(expiresAt), Date.now() + PRUNE_EVERY_MS);
    this.alarmAt = at;
    // Storage calls are ordered, so this need not be awaited; a failure is retried by the next write.
    this.ctx.storage.setAlarm(at).catch(() => {
      this.alarmAt = null;
    });
  }
}
