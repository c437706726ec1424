import { DurableObject } from "cloudflare:workers";

/**
 * ASAP replay protection for one issuer (`idFromName(iss)`): the set of token ids (`jti`) seen,
 * each kept until its token can no longer be accepted. SQLite-backed; an alarm deletes expired ids.
 */
export class ReplayGuard extends DurableObject<Env> {
  /** Time of the scheduled alarm, mirrored in memory so a claim does not read it from storage. */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS seen (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
    );
    ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expires_at)");
  }

  /**
   * Records `jti` until `expiresAt` (ms since the epoch). Returns false when `jti` is already
   * recorded and unexpired, i.e. the token is a replay.
   */
  async claim(jti: string, expiresAt: number): Promise<boolean> {
    const sql = this.ctx.storage.sql;
    // Synchronous SQL before any await: no other call can interleave between check and insert.
    const [seen] = sql
      .exec<{ expires_at: number }>("SELECT expires_at FROM seen WHERE jti = ?", jti)
      .toArray();
    if (seen && seen.expires_at > Date.now()) return false;
    sql.exec(
      "INSERT INTO seen (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at",
      jti,
      expiresAt,
    );
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === null || expiresAt < this.alarmAt) {
      this.alarmAt = expiresAt;
      await this.ctx.storage.setAlarm(expiresAt);
    }
    return true;
  }

  /** Deletes expired ids and schedules the alarm for the next expiry. */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM seen WHERE expires_at <= ?", Date.now());
    const { next } = sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM seen").one();
    this.alarmAt = next;
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }
}
