-- Traffic split and shadow versions (docs/rollout.md): D1's mirror of what the active pointer
-- `models/<id>/active.json` in R2 holds (the serving path reads the pointer), as JSON:
-- `split` {"<version>": <percent>, …} or NULL, `shadows` [{"version", "sample_rate"}, …] or NULL.
ALTER TABLE models ADD COLUMN split TEXT;
ALTER TABLE models ADD COLUMN shadows TEXT;
