-- Feedback and live quality (docs/rollout.md, issue 30 item 3).
-- The prediction log gains the X-Request-Id of the HTTP request that scored a sync prediction, so
-- a caller can give feedback by the id it got in the answer's `X-Request-Id` header.
ALTER TABLE prediction_log ADD COLUMN http_request_id TEXT;
-- Partial indexes: only the rows that can be looked up by that id pay for the index on insert.
CREATE INDEX prediction_log_by_http_request ON prediction_log (http_request_id) WHERE http_request_id IS NOT NULL;
CREATE INDEX prediction_log_by_prediction ON prediction_log (prediction_id) WHERE prediction_id IS NOT NULL;

-- One row per prediction-log row (one scored item) that a caller labelled: the true labels, and a
-- copy of what the quality figures need (version, scores) so they never re-read the log. `text` is
-- the item's input when it is known (the log's input with PREDICTION_LOG_INPUTS, the async
-- prediction's stored input, or the text the caller sent with its feedback); it is what a training
-- job with `feedback: true` learns from. Purged with the log, by `predicted_at` (src/retention.ts).
CREATE TABLE feedback (
  log_seq INTEGER PRIMARY KEY,
  caller TEXT,
  model_id TEXT NOT NULL,
  model_version TEXT NOT NULL,
  prediction_id TEXT,
  http_request_id TEXT,
  item INTEGER NOT NULL,
  labels TEXT NOT NULL,
  scores TEXT NOT NULL,
  text TEXT,
  predicted_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX feedback_by_model ON feedback (model_id, predicted_at);
CREATE INDEX feedback_by_predicted ON feedback (predicted_at);
