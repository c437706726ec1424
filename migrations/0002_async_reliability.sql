-- Nothing left stuck, Idempotency-Key (issue 14). Times are Unix epoch ms.

-- `updated_at`: the last time the row's state moved (created, claimed, retried, a job's stage,
-- finished). The scheduled sweep (src/predictions/sweep.ts, src/jobs/sweep.ts) re-enqueues a
-- `queued`/`running` row whose `updated_at` is older than its deadline, counting in `sweeps`, and
-- fails it once `sweeps` reaches the limit. `error_code`: why a `failed` row failed
-- ('invalid' | 'retries_exhausted' | 'stuck'), next to the human `error`.
-- `idempotency_key` / `request_hash`: the caller's Idempotency-Key and the SHA-256 of the request it
-- came with; unique per issuer, so concurrent submits with one key create one row.
ALTER TABLE predictions ADD COLUMN updated_at INTEGER;
ALTER TABLE predictions ADD COLUMN sweeps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE predictions ADD COLUMN error_code TEXT;
ALTER TABLE predictions ADD COLUMN idempotency_key TEXT;
ALTER TABLE predictions ADD COLUMN request_hash TEXT;
UPDATE predictions SET updated_at = COALESCE(finished_at, started_at, created_at);

ALTER TABLE jobs ADD COLUMN updated_at INTEGER;
ALTER TABLE jobs ADD COLUMN sweeps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN error_code TEXT;
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE jobs ADD COLUMN request_hash TEXT;
UPDATE jobs SET updated_at = COALESCE(finished_at, started_at, created_at);

-- The sweep's scan: unfinished rows by age. Partial, so finished rows (almost all) cost nothing.
CREATE INDEX predictions_unfinished ON predictions (updated_at) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_unfinished ON jobs (updated_at) WHERE status IN ('queued', 'running');

-- One row per (issuer, key). `ifnull`: calls without an issuer (ASAP_AUTH=off) share one scope.
CREATE UNIQUE INDEX predictions_by_idempotency_key ON predictions (ifnull(caller, ''), idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (ifnull(caller, ''), idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- The prediction log read per caller (non-admin callers see only their own rows).
CREATE INDEX prediction_log_by_caller ON prediction_log (caller, seq);
