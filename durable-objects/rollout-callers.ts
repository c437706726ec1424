import { DurableObject } from "cloudflare:workers";
import { MAX_ROLLOUT_CALLERS } from "../src/contracts/rollout";

/** Longest caller name stored (ASAP issuers are at most 256 characters in a policy). */
export const MAX_CALLER_LENGTH = 1024;

/**
 * The callers of one model's traffic split (named by the model id), in order of first sight: the
 * first caller gets ordinal 0, the next 1, … (src/rollout/callers.ts turns an ordinal into the
 * caller's position; docs/rollout.md). An ordinal never changes: rows are never updated or deleted,
 * also not when the split is cleared or the model is deleted (a model recreated under the same id
 * gives its callers the positions they had, as every isolate's cache still does).
 *
 * The object runs one call at a time and `ordinal` is synchronous SQL (no await inside), so two
 * isolates that ask for a new caller at once get the same ordinal: the second finds the first's row.
 * The insert is `ON CONFLICT DO NOTHING` followed by a read-back, so a row is never replaced, and
 * the answer leaves the object only once the row is committed (the output gate), so an ordinal
 * handed out survives a restart.
 * Storage is bounded: at most `maxCallers` rows of at most `MAX_CALLER_LENGTH` characters (about
 * 100 bytes each for typical issuers: ~10 MB at the cap); a caller beyond either gets null, and
 * the client falls back to the caller's hash position.
 */
export class RolloutCallers extends DurableObject<Env> {
  /** `MAX_ROLLOUT_CALLERS`, per instance so tests can lower it. */
  maxCallers = MAX_ROLLOUT_CALLERS;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS callers (
        caller TEXT PRIMARY KEY, ordinal INTEGER NOT NULL UNIQUE, first_seen INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
  }

  /**
   * The ordinal of `caller`: its row's, else the next free one (0, 1, …) stored now; null when the
   * caller is new and the table is full, or the name is longer than `MAX_CALLER_LENGTH`.
   */
  ordinal(caller: string): number | null {
    if (caller.length > MAX_CALLER_LENGTH) return null;
    const sql = this.ctx.storage.sql;
    const known = sql
      .exec<{ ordinal: number }>("SELECT ordinal FROM callers WHERE caller = ?", caller)
      .toArray();
    if (known[0]) return known[0].ordinal;
    // The next ordinal is one past the highest (the UNIQUE index answers MAX without a scan).
    sql.exec(
      `INSERT INTO callers (caller, ordinal, first_seen)
       SELECT ?1, next, ?2 FROM (SELECT COALESCE(MAX(ordinal) + 1, 0) AS next FROM callers) WHERE next < ?3
       ON CONFLICT (caller) DO NOTHING`,
      caller,
      Date.now(),
      this.maxCallers,
    );
    const stored = sql
      .exec<{ ordinal: number }>("SELECT ordinal FROM callers WHERE caller = ?", caller)
      .toArray();
    return stored[0]?.ordinal ?? null;
  }

  /** How many callers have an ordinal. */
  count(): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM callers").one().n;
  }
}
