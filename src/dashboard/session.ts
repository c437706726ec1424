/**
 * Dashboard login (docs/dashboard.md): an ASAP caller gets a one-time code, a browser exchanges it
 * for a session cookie. Codes and session ids are 256-bit random values; D1 stores only their
 * SHA-256, so a database leak opens no session. A code is consumed by one `DELETE … RETURNING`,
 * so of concurrent exchanges exactly one wins.
 */
import { isAllowed } from "../auth/policy";
import { d1 } from "../contracts/d1";
import type { Policy } from "../contracts/settings";
import { ApiError } from "../errors";
import { sha256Hex } from "../hash";

/**
 * How long a login code can be exchanged: long enough to open the link `npm start` prints a while
 * later (it is single-use; `edge-inference dashboard` mints a fresh one at any time).
 */
export const LOGIN_CODE_TTL_S = 900;
/** How long a dashboard session lasts (the cookie's `Max-Age`). */
export const SESSION_TTL_S = 3600;
/** Name of the session cookie (scoped to `Path=/dashboard`). */
export const SESSION_COOKIE = "ei_dashboard";
/** The API an issuer must be allowed (`ASAP_POLICY`) to log in, and to keep using a session. */
export const DASHBOARD_API = "dashboard";
/** Method of the login route, for the policy check. */
const LOGIN_METHOD = "POST";

const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;

/** 32 random bytes, base64url without padding (43 characters). */
function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

const hashOf = (secret: string) => sha256Hex(new TextEncoder().encode(secret));

/** A fresh login code for `issuer`, valid `LOGIN_CODE_TTL_S` from `now`. */
export async function createLoginCode(
  db: D1Database,
  issuer: string,
  now: number,
): Promise<{ code: string; expiresAt: number }> {
  const code = randomSecret();
  const expiresAt = now + LOGIN_CODE_TTL_S * 1000;
  await d1("store login code", async () =>
    db
      .prepare("INSERT INTO dashboard_codes (code_hash, issuer, expires_at) VALUES (?, ?, ?)")
      .bind(await hashOf(code), issuer, expiresAt)
      .run(),
  );
  return { code, expiresAt };
}

/**
 * Consumes `code` (it is gone afterwards, valid or not) and opens a session for its issuer: returns
 * the session id for the cookie. 401 `login_code_invalid` when the code is unknown, used or expired.
 */
export async function exchangeLoginCode(
  db: D1Database,
  code: string,
  now: number,
): Promise<{ session: string; issuer: string }> {
  const invalid = () =>
    new ApiError(
      "login_code_invalid",
      "this login link is invalid, expired or already used; run `edge-inference dashboard` again",
    );
  if (!SECRET_RE.test(code)) throw invalid();
  const codeHash = await hashOf(code);
  const row = await d1("consume login code", () =>
    db
      .prepare("DELETE FROM dashboard_codes WHERE code_hash = ? RETURNING issuer, expires_at")
      .bind(codeHash)
      .first<{ issuer: string; expires_at: number }>(),
  );
  if (!row || row.expires_at <= now) throw invalid();
  const session = randomSecret();
  const sessionHash = await hashOf(session);
  await d1("store session", () =>
    db
      .prepare(
        "INSERT INTO dashboard_sessions (session_hash, issuer, created_at, expires_at) VALUES (?, ?, ?, ?)",
      )
      .bind(sessionHash, row.issuer, now, now + SESSION_TTL_S * 1000)
      .run(),
  );
  return { session, issuer: row.issuer };
}

/** The session id in the request's `Cookie` header, if any. */
export function sessionFromCookie(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The issuer of a live session, checked against the current policy too (an issuer no longer allowed
 * `dashboard` loses its sessions). 401 `dashboard_login_required` otherwise. Bearer tokens are not
 * a way in: only the cookie is read.
 */
export async function sessionIssuer(
  db: D1Database,
  cookieHeader: string | null,
  policy: Policy,
  now: number,
): Promise<string> {
  const required = (why: string) =>
    new ApiError("dashboard_login_required", `${why}; run \`edge-inference dashboard\` to log in`);
  const session = sessionFromCookie(cookieHeader);
  if (session === undefined) throw required("no dashboard session cookie");
  if (!SECRET_RE.test(session)) throw required("the dashboard session cookie is malformed");
  const sessionHash = await hashOf(session);
  const row = await d1("read session", () =>
    db
      .prepare("SELECT issuer FROM dashboard_sessions WHERE session_hash = ? AND expires_at > ?")
      .bind(sessionHash, now)
      .first<{ issuer: string }>(),
  );
  if (!row) throw required("the dashboard session is unknown or expired");
  if (!isAllowed(policy, row.issuer, DASHBOARD_API, LOGIN_METHOD)) {
    throw required(`issuer '${row.issuer}' may no longer use the dashboard`);
  }
  return row.issuer;
}

/**
 * The `Set-Cookie` value of a new session: HttpOnly, SameSite=Strict, scoped to `/dashboard`, and
 * `Secure` unless the dashboard is served over plain http from a loopback host (local development).
 */
export function sessionCookie(session: string, url: URL): string {
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(url.hostname);
  const secure = !(url.protocol === "http:" && loopback);
  return `${SESSION_COOKIE}=${session}; Path=/dashboard; Max-Age=${SESSION_TTL_S}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

/** Deletes expired codes and sessions (at most `limit` of each); returns how many rows went. */
export async function purgeDashboardLogins(db: D1Database, now: number, limit: number): Promise<number> {
  const results = await db.batch([
    db
      .prepare(
        "DELETE FROM dashboard_codes WHERE code_hash IN (SELECT code_hash FROM dashboard_codes WHERE expires_at <= ? LIMIT ?)",
      )
      .bind(now, limit),
    db
      .prepare(
        "DELETE FROM dashboard_sessions WHERE session_hash IN (SELECT session_hash FROM dashboard_sessions WHERE expires_at <= ? LIMIT ?)",
      )
      .bind(now, limit),
  ]);
  return results.reduce((n, r) => n + r.meta.changes, 0);
}
