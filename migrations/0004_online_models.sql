-- Online models created through the API (`POST /api/v1/models` with `task: "online"`), besides the
-- ones ONLINE_MODELS configures. `fields` maps each learner field (the bank CSV's column names) to
-- the name the caller's samples use (JSON object).
CREATE TABLE online_models (
  id TEXT PRIMARY KEY,
  fields TEXT NOT NULL,
  caller TEXT,
  created_at INTEGER NOT NULL
);
