/**
 * The dashboard (docs/dashboard.md):
 *   POST /api/v1/dashboard/login   ASAP caller → one-time login URL
 *   GET  /dashboard/login?code=…   code → session cookie, 303 to /dashboard
 *   GET  /dashboard[/app.js|/app.css]   the page (session cookie required)
 *   GET  /dashboard/api/{statistics,models,online,backlog,drift}   its read-only data (session cookie only)
 *   GET  /dashboard/api/models/:id   the per-model view (session cookie only)
 *   POST /dashboard/api/explain   explain one text (session cookie only; the issuer needs predict:POST)
 *
 * A session shows its issuer only what `ASAP_POLICY` lets that issuer read through the API: each
 * data route needs the policy's `GET` of the API it mirrors (`statistics`, `models`,
 * `online_metrics`), else 403 `forbidden`; other callers' names in the statistics only for admins.
 */

import * as z from "zod";
import {
  AllStatisticsSchema,
  BacklogSchema,
  DashboardExplainSchema,
  DashboardModelViewSchema,
  DriftDashboardSchema,
  LoginUrlSchema,
  ModelListSchema,
  OnlineDashboardSchema,
} from "../answers";
import { isAdmin, isAllowed } from "../auth/policy";
import type { AppRequest, Handler } from "../context";
import { MODEL_ID_RE } from "../contracts/manifest";
import { APP_CSS, APP_JS, DASHBOARD_CSP, PAGE_HTML } from "../dashboard/assets";
import { createLoginCode, exchangeLoginCode, sessionCookie } from "../dashboard/session";
import { readDrift } from "../drift/report";
import { ApiError } from "../errors";
import { readJsonBody, reply, validate } from "../http";
import type { TextExplanation } from "../inference/explain";
import { flaggedLabels } from "../inference/network";
import { onlyOwnCallers, readAllStatistics, statisticsApis } from "../metering/stats";
import { learnerMetrics } from "../online/client";
import { listOnlineModelIds } from "../online/online-models";
import { checkTextLimits, classifyTexts, explainOption, ranked } from "../predictions/classify";
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
    onlyOwnCallers(stats.apis, config.ASAP_AUTH ? issuer : undefined, isAdmin(config.ASAP_POLICY, issuer));
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

// ---- Per-model view (docs/dashboard.md, issue 30): the model's rollout, read through its API routes ----

/** The per-model API reads the view gathers besides `GET /api/v1/models/:id`. */
export const MODEL_VIEWS = ["quality", "shadow", "traffic"] as const;

/** An API route the per-model view reads: its api name (for the policy) and its handler. */
export interface MirroredRoute {
  api: string;
  handler: Handler;
}

/** The per-model view's answer: each part is the API route's answer, or null. */
type ModelView = { model: unknown } & Record<(typeof MODEL_VIEWS)[number], unknown>;

/**
 * `GET /dashboard/api/models/:id`: the answers of `GET /api/v1/models/:id` and of its `/quality`,
 * `/shadow` and `/traffic` views for the session's issuer, in one JSON. `lookup` finds an API route
 * by path; a view this deployment has no route for, or one the issuer's policy does not let it
 * `GET`, is null (the page hides its panel). The model itself needs `models:GET` (403) and must
 * exist (404 `model_not_found`).
 */
export function dashboardModelView(lookup: (path: string) => MirroredRoute | undefined): Handler {
  return async (request, env, ctx) => {
    const { config } = request.state;
    const issuer = request.state.caller?.issuer ?? "anonymous";
    const read = async (path: string, required: boolean): Promise<unknown> => {
      const route = lookup(path);
      if (!route) return null;
      if (config.ASAP_AUTH && !isAllowed(config.ASAP_POLICY, issuer, route.api, "GET")) {
        if (required) readerOf(request, route.api);
        return null;
      }
      try {
        const res = await route.handler(request, env, ctx);
        return res.status === 200 ? await res.json() : null;
      } catch (error) {
        if (required || !(error instanceof ApiError) || error.status >= 500) throw error;
        return null;
      }
    };
    const [model, ...views] = await Promise.all([
      read("/api/v1/models/:id", true),
      ...MODEL_VIEWS.map((view) => read(`/api/v1/models/:id/${view}`, false)),
    ]);
    const body = {
      model,
      ...Object.fromEntries(MODEL_VIEWS.map((v, i) => [v, views[i] ?? null])),
    } as ModelView;
    return reply(DashboardModelViewSchema, body as z.input<typeof DashboardModelViewSchema>, 200, NO_STORE);
  };
}
// Explain a text (docs/explanations.md): the dashboard's "Explain a text" box.

/** Body of `POST /dashboard/api/explain`: one text and, optionally, the text model. */
export const dashboardExplainBodySchema = z.strictObject({
  text: z.string(),
  model: z.string().regex(MODEL_ID_RE, "model must be a model id").optional(),
});

/**
 * `POST /dashboard/api/explain`: scores and explains one text (`explain: true` of
 * `POST /api/v1/predict`, top 10 n-grams per label) for a session whose issuer may `POST` predict.
 * The session cookie is `SameSite=Strict`, so another site cannot make a browser send it here.
 */
export const dashboardExplain: Handler = async (request, env, ctx) => {
  const { config } = request.state;
  const issuer = request.state.caller?.issuer ?? "anonymous";
  if (config.ASAP_AUTH && !isAllowed(config.ASAP_POLICY, issuer, "predict", "POST")) {
    throw new ApiError(
      "forbidden",
      `issuer '${issuer}' may not call 'predict' (ASAP_POLICY), so the dashboard cannot explain for it`,
    );
  }
  const body = validate(dashboardExplainBodySchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  checkTextLimits([body.text], request.state, () => "text");
  const explain = explainOption(env, request.state, true, undefined);
  const result = await classifyTexts(env, ctx, request.state, { model: body.model }, [body.text], explain);
  const scores = result.scores[0] ?? new Float32Array();
  return reply(
    DashboardExplainSchema,
    {
      model: result.model,
      predictions: ranked(result.labels, scores),
      ...(result.thresholds && { flagged: flaggedLabels(result.labels, scores, result.thresholds) }),
      explanation: result.explanations?.[0] as TextExplanation,
    },
    200,
    NO_STORE,
  );
};

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
