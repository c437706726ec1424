-- Model registry, training jobs, async predictions and the prediction log (issue 6).
-- Applied by `npm start` (`wrangler d1 migrations apply edge-inference --local`), by the tests
-- (vitest.config.ts → test/setup-d1.ts) and before deploys (`--remote`). Times are Unix epoch ms.

-- One row per model that has (or is getting) a version. `active_version` is mirrored by the
-- serving pointer `models/<id>/active.json` in R2, which the predict path reads.
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  active_version TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- Model versions. Bytes and manifest live in R2 at models/<id>/<version>/; `manifest` is a copy.
-- `state`: 'pending' while an upload is being written (a reservation), 'ready' once usable.
CREATE TABLE model_versions (
  model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
  version TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'ready')),
  source TEXT NOT NULL CHECK (source IN ('upload', 'training', 'import')),
  task TEXT NOT NULL,
  labels TEXT NOT NULL,
  metrics TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  manifest TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (model_id, version)
);

-- Training jobs (`POST /api/v1/models`). `spec` is the validated request without inline rows
-- (those are in R2 at jobs/<id>/rows.json).
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  model_id TEXT NOT NULL,
  version TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  stage TEXT NOT NULL,
  progress REAL NOT NULL DEFAULT 0,
  spec TEXT NOT NULL,
  metrics TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  caller TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX jobs_by_model ON jobs (model_id, status);
CREATE INDEX jobs_by_created ON jobs (created_at);

-- Async predictions (`POST /api/v1/predictions`); the input is in R2 at `input_key`.
CREATE TABLE predictions (
  id TEXT PRIMARY KEY,
  model_id TEXT NOT NULL,
  model_version TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
  input_key TEXT NOT NULL,
  request_id TEXT,
  n_top INTEGER,
  result TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  caller TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX predictions_by_model ON predictions (model_id);
CREATE INDEX predictions_by_created ON predictions (created_at);

-- The prediction log: one row per scored text (sync and async), written off the response path.
CREATE TABLE prediction_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('sync', 'async')),
  caller TEXT,
  model_id TEXT NOT NULL,
  model_version TEXT NOT NULL,
  request_id TEXT,
  prediction_id TEXT,
  item INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  top_label TEXT NOT NULL,
  top_score REAL NOT NULL,
  scores TEXT NOT NULL,
  input TEXT
);
CREATE INDEX prediction_log_by_at ON prediction_log (at);
CREATE INDEX prediction_log_by_model ON prediction_log (model_id, seq);
