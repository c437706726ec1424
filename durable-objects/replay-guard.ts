import { DurableObject } from "cloudflare:workers";

/** Expired ids are pruned at most this often (a claim ignores expired ids anyway). */
const PRUNE_EVERY_MS = 60_000;

/**
 * ASAP replay protection for one issuer (`idFromName(iss)`): the set of token ids (`jti`) seen,
 * each kept until its token can no longer be accepted. SQLite-backed; an alarm deletes expired ids
 * about once a minute while any remain.
 */
export class ReplayGuard extends DurableObject<Env> {
  /** Time of the scheduled alarm, mirrored in memory so a claim does not read it from storage. */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS seen (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
    );
    // Pruning once a minute scans the table; an expiry index would cost every claim a second write.
    ctx.storage.sql.exec("DROP INDEX IF EXISTS seen_by_expiry");
  }

  /**
   * Records `jti` until `expiresAt` (ms since the epoch). Returns false when `jti` is already
   * recorded and unexpired, i.e. the token is a replay.
   */
  async claim(jti: string, expiresAt: number): Promise<boolean> {
    const now = Date.now();
    // One statement, before any await: nothing can interleave between check and write. It inserts
    // a new id or takes over an expired one; a row comes back only in those cases.
    const fresh =
      this.ctx.storage.sql
        .exec(
          `INSERT INTO seen (jti, expires_at) VALUES (?, ?)
           ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at <= ?
           RETURNING 1`,
          jti,
          expiresAt,
          now,
        )
        .toArray().length > 0;
    if (!fresh) return false;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === null) {
      this.alarmAt = Math.max(expiresAt, now + PRUNE_EVERY_MS);
      await this.ctx.storage.setAlarm(this.alarmAt);
    }
    return true;
  }

  /** Deletes expired ids; re-arms (no sooner than a minute from now) while any remain. */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    sql.exec("DELETE FROM seen WHERE expires_at <= ?", now);
    const { next } = sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM seen").one();
    // Re-armed directly: inside the handler the running alarm may still read as scheduled.
    this.alarmAt = next === null ? null : Math.max(next, now + PRUNE_EVERY_MS);
    if (this.alarmAt !== null) await this.ctx.storage.setAlarm(this.alarmAt);
  }
}
