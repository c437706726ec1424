import { DurableObject } from "cloudflare:workers";
import { gcra, gcraGiveBack, gcraTake } from "../src/admission/gcra";
import type { Admission, AdmissionResult, LeaseGrant } from "../src/admission/types";
import type { RateDecision } from "../src/contracts/rate";
import type { RatePolicy } from "../src/contracts/settings";

/** Expired rows (spent ids, full buckets) are pruned at most this often. */
const PRUNE_EVERY_MS = 60_000;

/** How long rate decisions are collected before they are written to storage together. */
const PERSIST_RATES_AFTER_MS = 100;

/**
 * Most token ids one guard keeps in memory (~150 bytes each, so ~15 MB); ids beyond it go to the
 * indexed table, which costs more per id.
 */
export const MAX_IDS_IN_MEMORY = 100_000;

/**
 * Admission state in SQLite, in two roles (src/admission/): a caller's object
 * (`idFromName(caller)`; the caller is the ASAP issuer once authenticated) holds its GCRA state per
 * API, the authority that isolates lease slices of quota from (`lease`); a replay
 * shard (`idFromName("replay-shard:<i>")`) holds the spent token ids that hash to it (`admit` with
 * a token). `admit` can also do both in one call (a single request's decision).
 *
 * The object handles one call at a time and decides each call with synchronous code, so
 * concurrent requests are decided strictly one after another:
 * - Token ids: an id that is not spent joins the group written at the next turn of the event loop,
 *   in one commit, and is answered only after that (the output gate holds the answer until the
 *   commit), so an accepted id survives a restart. Spent ids are looked up in memory: every
 *   unexpired id of the append-only `spent` log is held in a map, loaded when the object starts.
 *   Appending costs a fraction of inserting into an index, whose random keys dirty a page each.
 *   Beyond `MAX_IDS_IN_MEMORY` ids, further ids go to the `seen` table, indexed by id and looked up
 *   there.
 * - Rate state is decided in memory and written behind, all changed rows in one commit
 *   `PERSIST_RATES_AFTER_MS` after the first change. Should the object crash in between, the
 *   caller regains at most that many milliseconds of quota.
 * An alarm prunes expired ids and full buckets, at most once a minute.
 */
export class CallerGuard extends DurableObject<Env> {
  /** `MAX_IDS_IN_MEMORY`, per instance so tests can lower it. */
  maxIdsInMemory = MAX_IDS_IN_MEMORY;
  /**
   * Time of the alarm this instance scheduled (null: none yet). A new instance sets its own on its
   * first write, replacing any earlier one: pruning is periodic, so either time serves.
   */
  private alarmAt: number | null = null;
  /** Every id of the `spent` log that was unexpired when loaded or written, with its expiry. */
  private readonly spent = new Map<string, number>();
  /** When `forgetExpired` last ran (a full memory must not rescan for every group). */
  private forgotAt = 0;
  /** Whether the `seen` table may hold an unexpired id (it is read only then). */
  private seenMayHoldIds: boolean;
  /** Token ids accepted but not yet written, with their expiry. */
  private readonly pendingIds = new Map<string, number>();
  /** Settles when `pendingIds` has been written. */
  private idsWritten: Promise<void> | undefined;
  /** GCRA state per API: every row read so far and every decision since (the authority). */
  private readonly tats = new Map<string, number>();
  /** APIs whose state in `tats` is newer than their row. */
  private readonly dirtyApis = new Set<string>();
  private ratesTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS spent (jti TEXT NOT NULL, expires_at INTEGER NOT NULL)");
    sql.exec(
      "CREATE TABLE IF NOT EXISTS seen (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
    );
    // Pruning once a minute scans the tables; an expiry index would cost every id a second write.
    sql.exec("DROP INDEX IF EXISTS seen_by_expiry");
    sql.exec("CREATE TABLE IF NOT EXISTS gcra (api TEXT PRIMARY KEY, tat REAL NOT NULL)");
    const now = Date.now();
    // Rows as arrays, not objects: a wake reloads up to MAX_IDS_IN_MEMORY of them (~40 ms for 50,000).
    const rows = sql.exec("SELECT jti, expires_at FROM spent WHERE expires_at > ?", now).raw();
    for (const [jti, expiresAt] of rows) this.spent.set(jti as string, expiresAt as number);
    this.seenMayHoldIds = this.seenHoldsIds(now);
  }

  /**
   * Admits one request: refuses a replayed token, takes one request from the quota, then records
   * the token. A replay takes no quota; a throttled request's token is not recorded, so it may be
   * retried with the same token. `now` exists for tests (injected clock for the rate part);
   * production callers leave it to this object's clock.
   */
  async admit(request: Admission, now: number = Date.now()): Promise<AdmissionResult> {
    const { token, rate } = request;
    if (token && this.isSpent(token.jti)) return { replayed: true };
    const decision = rate && this.take(rate.api, rate.policy, now);
    if (token && decision?.allowed !== false) await this.record(token.jti, token.expiresAt);
    return decision ? { replayed: false, decision } : { replayed: false };
  }

  /**
   * Leases up to `want` requests of `api` at once (src/admission/leases.ts): as many as the bucket
   * holds, at least 1, or a refusal (`granted` 0). Leased requests count as taken from now on.
   * First gives back `unused` requests of the caller's expired lease. `now` is for tests.
   */
  async lease(
    api: string,
    policy: RatePolicy,
    want: number,
    unused = 0,
    now: number = Date.now(),
  ): Promise<LeaseGrant> {
    let tat = this.tatOf(api, now);
    if (unused > 0) tat = gcraGiveBack(tat, now, policy, Math.min(unused, 1_000_000));
    const result = gcraTake(tat, now, policy, Math.max(1, Math.min(Math.floor(want), 1_000_000)));
    if (result.granted > 0 || unused > 0) this.setTat(api, result.tat);
    return { granted: result.granted, decision: result.decision };
  }

  /** Whether `jti` is spent: in the group being gathered, or stored and unexpired. */
  private isSpent(jti: string): boolean {
    if (this.pendingIds.has(jti)) return true;
    const now = Date.now();
    if ((this.spent.get(jti) ?? 0) > now) return true;
    return (
      this.seenMayHoldIds &&
      this.ctx.storage.sql.exec("SELECT 1 FROM seen WHERE jti = ? AND expires_at > ?", jti, now).toArray()
        .length > 0
    );
  }

  /**
   * Adds `jti` (spent until `expiresAt`) to the group written at the next turn of the event loop;
   * settles once the group is stored.
   */
  private record(jti: string, expiresAt: number): Promise<void> {
    this.pendingIds.set(jti, expiresAt);
    this.idsWritten ??= new Promise<void>((resolve, reject) =>
      setTimeout(() => {
        try {
          this.writeIds();
          resolve();
        } catch (error) {
          reject(error);
        }
      }, 0),
    );
    return this.idsWritten;
  }

  /**
   * Writes the pending ids in one transaction: appended to the `spent` log while they fit in
   * memory, the rest into `seen`. All or nothing: should it fail, no id of the group is spent (all
   * are answered 503).
   */
  private writeIds(): void {
    const ids = [...this.pendingIds];
    this.pendingIds.clear();
    this.idsWritten = undefined;
    if (this.spent.size + ids.length > this.maxIdsInMemory && Date.now() - this.forgotAt >= 1000) {
      this.forgetExpired();
    }
    const room = Math.max(0, this.maxIdsInMemory - this.spent.size);
    const logged = ids.slice(0, room);
    const indexed = ids.slice(room);
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      if (logged.length > 0) {
        sql.exec(
          "INSERT INTO spent (jti, expires_at) SELECT value ->> 0, value ->> 1 FROM json_each(?)",
          JSON.stringify(logged),
        );
      }
      if (indexed.length > 0) {
        // An id already in `seen` has expired there (else it would be spent): take it over.
        // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT, not a join.
        sql.exec(
          `INSERT INTO seen (jti, expires_at) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE true
           ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at`,
          JSON.stringify(indexed),
        );
      }
    });
    for (const [jti, expiresAt] of logged) this.spent.set(jti, expiresAt);
    if (indexed.length > 0) this.seenMayHoldIds = true;
    let latest = 0;
    for (const [, expiresAt] of ids) latest = Math.max(latest, expiresAt);
    this.ensureAlarm(latest);
  }

  /** Drops expired ids from memory (their log rows go at the next prune). */
  private forgetExpired(): void {
    const now = Date.now();
    this.forgotAt = now;
    for (const [jti, expiresAt] of this.spent) if (expiresAt <= now) this.spent.delete(jti);
  }

  private seenHoldsIds(now: number): boolean {
    return (
      this.ctx.storage.sql
        .exec<{ found: number }>("SELECT EXISTS (SELECT 1 FROM seen WHERE expires_at > ?) AS found", now)
        .one().found === 1
    );
  }

  private take(api: string, policy: RatePolicy, now: number): RateDecision {
    const result = gcra(this.tatOf(api, now), now, policy);
    if (result.decision.allowed) this.setTat(api, result.tat);
    return result.decision;
  }

  private tatOf(api: string, now: number): number {
    return (
      this.tats.get(api) ??
      this.ctx.storage.sql.exec<{ tat: number }>("SELECT tat FROM gcra WHERE api = ?", api).toArray()[0]
        ?.tat ??
      now
    );
  }

  /** Records `api`'s new state; written behind (`PERSIST_RATES_AFTER_MS`). */
  private setTat(api: string, tat: number): void {
    this.tats.set(api, tat);
    this.dirtyApis.add(api);
    this.ratesTimer ??= setTimeout(() => this.writeRates(), PERSIST_RATES_AFTER_MS);
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
    sql.exec("DELETE FROM spent WHERE expires_at <= ?", now);
    sql.exec("DELETE FROM seen WHERE expires_at <= ?", now);
    sql.exec("DELETE FROM gcra WHERE tat <= ?", now);
    this.forgetExpired();
    this.seenMayHoldIds = this.seenHoldsIds(now);
    this.tats.clear();
    const { next } = sql
      .exec<{ next: number | null }>(
        `SELECT MIN(t) AS next FROM (SELECT MIN(expires_at) AS t FROM spent
         UNION ALL SELECT MIN(expires_at) FROM seen UNION ALL SELECT MIN(tat) FROM gcra)`,
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
