-- Dashboard login (docs/dashboard.md): one-time login codes and the sessions they open. Only
-- SHA-256 hashes of codes and session ids are stored; both rows expire (purged by the cron).
CREATE TABLE dashboard_codes (
  code_hash TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX dashboard_codes_by_expiry ON dashboard_codes (expires_at);

CREATE TABLE dashboard_sessions (
  session_hash TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
