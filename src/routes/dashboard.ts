/**
 * The dashboard (docs/dashboard.md):
 *   POST /api/v1/dashboard/login   ASAP caller → one-time login URL
 *   GET  /dashboard/login?code=…   code → session cookie, 303 to /dashboard
 *   GET  /dashboard[/app.js|/app.css]   the page (session cookie required)
 *   GET  /dashboard/api/{statistics,models,online,backlog,drift}   its read-only data (session cookie only)
 *
 * A session shows its issuer only what `ASAP_POLICY` lets that issuer read through the API: each
 * data route needs the policy's `GET` of the API it mirrors (`statistics`, `models`,
 * `online_metrics`), else 403 `forbidden`; other callers' names in the statistics only for admins.
 */

import {
  AllStatisticsSchema,
  BacklogSchema,
  DriftDashboardSchema,
  LoginUrlSchema,
  ModelListSchema,
  OnlineDashboardSchema,
} from "../answers";
import { isAdmin, isAllowed } from "../auth/policy";
import type { AppRequest, Handler } from "../context";
import { APP_CSS, APP_JS, DASHBOARD_CSP, PAGE_HTML } from "../dashboard/assets";
import { createLoginCode, exchangeLoginCode, sessionCookie } from "../dashboard/session";
import { readDrift } from "../drift/report";
import { ApiError } from "../errors";
import { reply } from "../http";
import { readAllStatistics, statisticsApis } from "../metering/stats";
import { learnerMetrics } from "../online/client";
import { listOnlineModelIds } from "../online/online-models";
import { readBacklog } from "../queue/backlog";
import { listModelSummaries } from "../registry/list";

/** Nothing the dashboard serves may be cached: it is per-session and live. */
const NO_STORE = { "cache-control": "no-store" };

/**
 * `POST /api/v1/dashboard/login`: a single-use code for the authenticated issuer, valid `LOGIN_CODE_TTL_S` (15 min), as
 * the absolute URL a browser opens. With `ASAP_AUTH=off` (dev/test only) the issuer is `anonymous`.
 */
export const dashboardLogin: Handler = async (request, env) => {
  const issuer = request.state.caller?.issuer ?? "anonymous";
  const { code, expiresAt } = await createLoginCode(env.DB, issuer, Date.now());
  const url = new URL("/dashboard/login", request.url);
  url.searchParams.set("code", code);
  return reply(
    LoginUrlSchema,
    { url: url.toString(), expires_at: new Date(expiresAt).toISOString() },
    200,
    NO_STORE,
  );
};

/** `GET /dashboard/login?code=…`: consumes the code, sets the session cookie, 303 to the page. */
export const dashboardExchange: Handler = async (request, env) => {
  const url = new URL(request.url);
  const { session, issuer } = await exchangeLoginCode(env.DB, url.searchParams.get("code") ?? "", Date.now());
  request.state.caller = { issuer, subject: "dashboard" };
  return new Response(null, {
    status: 303,
    headers: {
      location: "/dashboard",
      "set-cookie": sessionCookie(session, url),
      // The code is spent, but keep it out of Referer headers and caches anyway.
      "referrer-policy": "no-referrer",
      ...NO_STORE,
    },
  });
};

function asset(body: string, type: string, extra: Record<string, string> = {}): Handler {
  return () =>
    new Response(body, {
      headers: {
        "content-type": type,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        ...NO_STORE,
        ...extra,
      },
    });
}

/** `GET /dashboard`: the page. */
export const dashboardPage = asset(PAGE_HTML, "text/html; charset=utf-8", {
  "content-security-policy": DASHBOARD_CSP,
  "x-frame-options": "DENY",
});
/** `GET /dashboard/app.js`. */
export const dashboardScript = asset(APP_JS, "text/javascript; charset=utf-8");
/** `GET /dashboard/app.css`. */
export const dashboardStyles = asset(APP_CSS, "text/css; charset=utf-8");

/**
 * The session's issuer, after checking that its policy lets it `GET` `api` through the API (403
 * `forbidden` otherwise): the dashboard never widens what an issuer may read. With `ASAP_AUTH=off`
 * (dev/test only) there is no policy to apply, as on the API.
 */
function readerOf(request: AppRequest, api: string): string {
  const { config } = request.state;
  const issuer = request.state.caller?.issuer ?? "anonymous";
  if (config.ASAP_AUTH && !isAllowed(config.ASAP_POLICY, issuer, api, "GET")) {
    throw new ApiError(
      "forbidden",
      `issuer '${issuer}' may not read '${api}' (ASAP_POLICY), so the dashboard does not show it`,
    );
  }
  return issuer;
}

/**
 * `GET /dashboard/api/statistics`: every API's statistics, as `GET /api/v1/statistics` lists them
 * (needs `statistics:GET`); callers other than the session's issuer are listed only to admins.
 */
export function dashboardStatistics(routeApis: () => readonly string[]): Handler {
  return async (request, env) => {
    const issuer = readerOf(request, "statistics");
    const { config } = request.state;
    const stats = await readAllStatistics(env, statisticsApis(routeApis()), config.STATS_SHARDS, Date.now());
    if (config.ASAP_AUTH && !isAdmin(config.ASAP_POLICY, issuer)) {
      for (const api of stats.apis) {
        api.callers_current_minute = api.callers_current_minute.filter((c) => c.caller === issuer);
      }
    }
    return reply(AllStatisticsSchema, stats, 200, NO_STORE);
  };
}

/** `GET /dashboard/api/models`: the registry's models, as `GET /api/v1/models` lists them (`models:GET`). */
export const dashboardModels: Handler = async (request, env) => {
  readerOf(request, "models");
  return reply(
    ModelListSchema,
    { models: await listModelSummaries(env, request.state.config.DEFAULT_MODEL) },
    200,
    NO_STORE,
  );
};

/**
 * `GET /dashboard/api/online`: each online model's metrics report (`GET /api/v1/models/:id/metrics`,
 * so `online_metrics:GET`).
 */
export const dashboardOnline: Handler = async (request, env) => {
  readerOf(request, "online_metrics");
  const ids = await listOnlineModelIds(env, request.state.config);
  return reply(
    OnlineDashboardSchema,
    { models: await Promise.all(ids.map((id) => learnerMetrics(env, id))) },
    200,
    NO_STORE,
  );
};

/** `GET /dashboard/api/backlog`: unfinished training jobs and async predictions. */
export const dashboardBacklog: Handler = async (_request, env) =>
  reply(BacklogSchema, await readBacklog(env.DB, Date.now()), 200, NO_STORE);

/** Most models the dashboard's drift chart reads (the registry's first, by id). */
const DRIFT_CHART_MODELS = 20;

/**
 * `GET /dashboard/api/drift`: each model's drift over the last 24 h (its active version, as
 * `GET /api/v1/models/:id/drift` shows it; `models:GET`), for the PSI chart (docs/drift.md). A model
 * whose drift cannot be read is left out.
 */
export const dashboardDrift: Handler = async (request, env) => {
  readerOf(request, "models");
  const { config } = request.state;
  const models = (await listModelSummaries(env, config.DEFAULT_MODEL))
    .filter((m) => m.active_version !== null && m.kind !== "tensor")
    .slice(0, DRIFT_CHART_MODELS);
  const reports = await Promise.all(
    models.map((m) => readDrift(env, config, m.id, m.active_version ?? undefined, 24).catch(() => null)),
  );
  return reply(DriftDashboardSchema, { models: reports.filter((r) => r !== null) }, 200, NO_STORE);
};
