-- Signed webhooks (docs/webhooks.md): one delivery per async prediction or training job submitted
-- with a `callback_url`. `waiting` until its subject finishes, then `pending` (queued, retried with
-- backoff), and finally `delivered` or `failed`. `id` is the Standard Webhooks `webhook-id`:
-- the same on every attempt, so a receiver deduplicates on it.
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  subject_kind TEXT NOT NULL CHECK (subject_kind IN ('prediction', 'job')),
  subject_id TEXT NOT NULL UNIQUE,
  issuer TEXT,
  url TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('waiting', 'pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_status INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  next_attempt_at INTEGER,
  delivered_at INTEGER
);
CREATE INDEX webhook_deliveries_by_issuer ON webhook_deliveries (issuer, created_at);
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (status, updated_at);
