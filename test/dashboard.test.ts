/**
 * The dashboard's login flow and access rules (docs/dashboard.md), through the real router, D1 and
 * StatsShard/OnlineLearner objects: one-time codes (single use, also under concurrency; expiry),
 * the session cookie's attributes, the page and data routes refusing requests without a live
 * session (bearer tokens included), the issuer policy, and what the data routes return.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createLoginCode, LOGIN_CODE_TTL_S, purgeDashboardLogins } from "../src/dashboard/session";
import { sha256Hex } from "../src/hash";
import { api, createTestKey, problem, seedShippedModel, TEST_ISSUER, testToken, tokenOf } from "./helpers";

const DATA_ROUTES = ["statistics", "models", "online", "backlog"].map((r) => `/dashboard/api/${r}`);

/** Calls the Worker at `url` (absolute) with `vars` overriding wrangler.toml's, and waits for its background work. */
async function call(
  url: string,
  init: RequestInit = {},
  vars: Record<string, string> = {},
): Promise<Response> {
  return api(url, { redirect: "manual", ...init }, { auth: false, vars });
}

/** `POST /api/v1/dashboard/login` with a fresh token of the default test issuer. */
async function loginUrl(
  vars: Record<string, string> = {},
  token?: string,
): Promise<{ url: string; expires_at: string }> {
  const res = await call(
    "http://edge.test/api/v1/dashboard/login",
    { method: "POST", headers: { authorization: `Bearer ${token ?? (await testToken())}` } },
    vars,
  );
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { url: string; expires_at: string };
}

/** Logs in through the URL and returns the `Cookie` header value of the session. */
async function session(vars: Record<string, string> = {}): Promise<string> {
  const res = await call((await loginUrl(vars)).url, {}, vars);
  expect(res.status).toBe(303);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return setCookie.split(";")[0] ?? "";
}

beforeAll(async () => {
  await seedShippedModel("spam");
});

describe("POST /api/v1/dashboard/login", () => {
  it("needs an ASAP token", async () => {
    const res = await api("/api/v1/dashboard/login", { method: "POST" }, { auth: false });
    expect(res.status).toBe(401);
    expect((await problem(res)).code).toBe("invalid_token");
  });

  it("returns an absolute one-time URL valid for 15 min (long enough after npm start), not cacheable", async () => {
    const before = Date.now();
    const res = await api("/api/v1/dashboard/login", { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { url: string; expires_at: string };
    expect(Object.keys(body).sort()).toEqual(["expires_at", "url"]);
    const url = new URL(body.url);
    expect(url.origin + url.pathname).toBe("http://edge.test/dashboard/login");
    expect(url.searchParams.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const expires = Date.parse(body.expires_at);
    expect(LOGIN_CODE_TTL_S).toBe(900);
    expect(expires).toBeGreaterThanOrEqual(before + LOGIN_CODE_TTL_S * 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + LOGIN_CODE_TTL_S * 1000);
  });

  it("stores only the code's hash", async () => {
    const { url } = await loginUrl();
    const code = new URL(url).searchParams.get("code") ?? "";
    const hash = await sha256Hex(new TextEncoder().encode(code));
    const rows = await env.DB.prepare("SELECT * FROM dashboard_codes WHERE code_hash = ?").bind(hash).all();
    expect(rows.results).toHaveLength(1);
    expect(JSON.stringify(rows.results)).not.toContain(code);
  });

  it("is refused (403) to an issuer the policy does not allow `dashboard`", async () => {
    const policy = JSON.stringify({ issuers: { [TEST_ISSUER]: ["predict"] }, default: [] });
    const res = await call(
      "http://edge.test/api/v1/dashboard/login",
      { method: "POST", headers: { authorization: `Bearer ${await testToken()}` } },
      { ASAP_POLICY: policy },
    );
    expect(res.status).toBe(403);
    expect((await problem(res)).code).toBe("forbidden");
  });
});

describe("GET /dashboard/login?code=…", () => {
  it("sets an HttpOnly, SameSite=Strict, Secure session cookie scoped to /dashboard and redirects (303)", async () => {
    const res = await call((await loginUrl()).url);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    const attrs = (res.headers.get("set-cookie") ?? "").split(";").map((a) => a.trim());
    expect(attrs[0]).toMatch(/^ei_dashboard=[A-Za-z0-9_-]{43}$/);
    expect(attrs.slice(1).sort()).toEqual([
      "HttpOnly",
      "Max-Age=3600",
      "Path=/dashboard",
      "SameSite=Strict",
      "Secure",
    ]);
  });

  it("leaves out Secure only for plain http on localhost", async () => {
    const { url } = await loginUrl();
    const local = new URL(url);
    local.host = "localhost:8871";
    const res = await call(local.toString());
    expect(res.status).toBe(303);
    const attrs = (res.headers.get("set-cookie") ?? "").split(";").map((a) => a.trim());
    expect(attrs).not.toContain("Secure");
    expect(attrs).toContain("HttpOnly");
    expect(attrs).toContain("SameSite=Strict");
  });

  it("accepts a code once: a second use is 401 as an HTML page", async () => {
    const { url } = await loginUrl();
    expect((await call(url)).status).toBe(303);
    const again = await call(url);
    expect(again.status).toBe(401);
    expect(again.headers.get("content-type")).toMatch(/^text\/html/);
    expect(again.headers.get("set-cookie")).toBeNull();
    expect(await again.text()).toContain("login_code_invalid");
  });

  it("of 10 concurrent exchanges of one code exactly one succeeds", async () => {
    const { url } = await loginUrl();
    const statuses = await Promise.all(Array.from({ length: 10 }, () => call(url).then((r) => r.status)));
    expect(statuses.filter((s) => s === 303)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(9);
  });

  it("refuses an expired code, and unknown, malformed or missing codes", async () => {
    const { code } = await createLoginCode(env.DB, TEST_ISSUER, Date.now() - LOGIN_CODE_TTL_S * 1000 - 1000);
    for (const query of [`?code=${code}`, `?code=${"A".repeat(43)}`, "?code=short", ""]) {
      const res = await call(`http://edge.test/dashboard/login${query}`);
      expect(res.status, query).toBe(401);
      expect(await res.text()).toContain("login_code_invalid");
    }
  });

  it("a code is the issuer's that asked for it: the session acts as that issuer", async () => {
    const other = await createTestKey("dashboard-other-issuer");
    const token = await tokenOf(other);
    const { url } = await loginUrl({}, token);
    const cookie = (await call(url)).headers.get("set-cookie")?.split(";")[0] ?? "";
    const hash = await sha256Hex(new TextEncoder().encode(cookie.split("=")[1] ?? ""));
    const row = await env.DB.prepare("SELECT issuer FROM dashboard_sessions WHERE session_hash = ?")
      .bind(hash)
      .first<{ issuer: string }>();
    expect(row?.issuer).toBe("dashboard-other-issuer");
    // A policy that allows the tests' issuer but not this one closes this issuer's session.
    const policy = JSON.stringify({ issuers: { [TEST_ISSUER]: ["*"] }, default: [] });
    const res = await call(
      "http://edge.test/dashboard/api/backlog",
      { headers: { cookie } },
      { ASAP_POLICY: policy },
    );
    expect(res.status).toBe(401);
    expect((await problem(res)).code).toBe("dashboard_login_required");
    expect((await call("http://edge.test/dashboard/api/backlog", { headers: { cookie } })).status).toBe(200);
  });
});

describe("the page and its data routes", () => {
  it("without a session: the page is a 401 HTML page, assets and data routes 401 problem+json", async () => {
    const page = await call("http://edge.test/dashboard");
    expect(page.status).toBe(401);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain("dashboard_login_required");
    expect(html).not.toContain("app.js");
    for (const path of [...DATA_ROUTES, "/dashboard/app.js", "/dashboard/app.css"]) {
      const res = await call(`http://edge.test${path}`);
      expect(res.status, path).toBe(401);
      expect((await problem(res)).code, path).toBe("dashboard_login_required");
    }
  });

  it("bearer tokens are not a way in", async () => {
    for (const path of ["/dashboard", ...DATA_ROUTES]) {
      const res = await api(path);
      expect(res.status, path).toBe(401);
    }
  });

  it("unknown, malformed and expired sessions are refused", async () => {
    const cookie = await session();
    const hash = await sha256Hex(new TextEncoder().encode(cookie.split("=")[1] ?? ""));
    for (const bad of [`ei_dashboard=${"B".repeat(43)}`, "ei_dashboard=x", "other=1"]) {
      const res = await call("http://edge.test/dashboard/api/models", { headers: { cookie: bad } });
      expect(res.status, bad).toBe(401);
    }
    expect((await call("http://edge.test/dashboard/api/models", { headers: { cookie } })).status).toBe(200);
    await env.DB.prepare("UPDATE dashboard_sessions SET expires_at = ? WHERE session_hash = ?")
      .bind(Date.now() - 1, hash)
      .run();
    const expired = await call("http://edge.test/dashboard/api/models", { headers: { cookie } });
    expect(expired.status).toBe(401);
    expect((await problem(expired)).detail).toMatch(/unknown or expired/);
    // The cron purge removes it (and expired codes).
    expect(await purgeDashboardLogins(env.DB, Date.now(), 1000)).toBeGreaterThanOrEqual(1);
    const left = await env.DB.prepare("SELECT COUNT(*) AS n FROM dashboard_sessions WHERE session_hash = ?")
      .bind(hash)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("with a session: the page with its CSP, script and stylesheet", async () => {
    const cookie = await session();
    const page = await call("http://edge.test/dashboard", { headers: { cookie } });
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    const html = await page.text();
    expect(html).toContain('<script src="/dashboard/app.js" defer></script>');
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/);
    const js = await call("http://edge.test/dashboard/app.js", { headers: { cookie } });
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain("/dashboard/api/statistics");
    const css = await call("http://edge.test/dashboard/app.css", { headers: { cookie } });
    expect(css.headers.get("content-type")).toMatch(/^text\/css/);
  });

  it("data routes serve statistics, models, online metrics and the backlog from the core modules", async () => {
    const cookie = await session();
    for (let i = 0; i < 3; i++) expect((await call("http://edge.test/api/v1/health")).status).toBe(200);
    type Stats = { api: string; per_second: number[]; status: Record<string, number> };
    let health: Stats | undefined;
    const counted = () => (health?.status["2xx"] ?? 0) >= 3;
    // Calls are counted off the response path (batched per isolate), so poll until they land.
    for (let attempt = 0; attempt < 50 && !counted(); attempt++) {
      const res = await call("http://edge.test/dashboard/api/statistics", { headers: { cookie } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { apis: Stats[] };
      health = body.apis.find((a) => a.api === "health");
      expect(body.apis.map((a) => a.api)).toContain("dashboard_data");
      if (!counted()) await new Promise((r) => setTimeout(r, 100));
    }
    expect(health?.status["2xx"]).toBeGreaterThanOrEqual(3);
    expect(health?.per_second).toHaveLength(60);

    const models = (await (
      await call("http://edge.test/dashboard/api/models", { headers: { cookie } })
    ).json()) as {
      models: { id: string; active_version: string }[];
    };
    const listed = (await (await api("/api/v1/models")).json()) as { models: unknown[] };
    expect(models.models).toEqual(listed.models);
    expect(models.models.map((m) => m.id)).toContain("spam");

    const online = (await (
      await call("http://edge.test/dashboard/api/online", { headers: { cookie } })
    ).json()) as {
      models: { model: string; samples_total: number; series: unknown[] }[];
    };
    expect(online.models.map((m) => m.model)).toContain("bank");
    const bank = await (await api("/api/v1/models/bank/metrics")).json();
    expect(online.models.find((m) => m.model === "bank")).toEqual(bank);

    await env.DB.prepare(
      "INSERT INTO predictions (id, model_id, model_version, status, input_key, created_at) VALUES (?, 'spam', 'v', 'queued', 'k', ?)",
    )
      .bind("dash-backlog-1", Date.now() - 5000)
      .run();
    const backlog = (await (
      await call("http://edge.test/dashboard/api/backlog", { headers: { cookie } })
    ).json()) as {
      predictions: { queued: number; running: number; oldest_queued_s: number };
      jobs: { queued: number };
    };
    expect(backlog.predictions.queued).toBeGreaterThanOrEqual(1);
    expect(backlog.predictions.oldest_queued_s).toBeGreaterThanOrEqual(5);
    expect(backlog.jobs.queued).toBeGreaterThanOrEqual(0);
    await env.DB.prepare("DELETE FROM predictions WHERE id = 'dash-backlog-1'").run();
  });
});
