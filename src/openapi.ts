/**
 * The OpenAPI 3.1 document of every route (`GET /api/v1/openapi.json`), generated from the route
 * table and the zod schemas the routes validate with (`z.toJSONSchema`). A route's documentation
 * (summary, request schema, query, answer) is declared beside it in the route table (`RouteDoc`);
 * errors are the one problem+json shape with every stable code (`ERROR_CODES`).
 */
import * as z from "zod";
import type { Handler } from "./context";
import { ERROR_CODES } from "./errors";
import { json } from "./http";

/** What the document says of one route. */
export interface RouteDoc {
  summary: string;
  /** Request body: a zod schema of JSON, or another media type with a description. */
  body?: z.ZodType | { mediaType: string; description: string };
  /** Query parameters (a strict object of strings). */
  query?: z.ZodObject;
  /** Success status (default 200) and the answer's schema (a zod schema, or a description). */
  status?: number;
  response?: z.ZodType | string;
  /** Error codes this route answers besides the common ones of its stages. */
  errors?: (keyof typeof ERROR_CODES)[];
}

/** What the document needs of a route; src/router.ts's `RouteDef` adds the handler. */
export interface DocumentedRoute {
  method: string;
  path: string;
  /** Names the route in logs, statistics and policies (`ASAP_POLICY`). */
  api: string;
  /** Requires a valid ASAP bearer token allowed by `ASAP_POLICY` (docs/auth.md); health probes do not. */
  auth: boolean;
  /** Counted against the caller's rate limit before the handler runs (health probes are not). */
  throttle: boolean;
  /** A replaced service's compatibility route: 404 unless `COMPAT_ROUTES` is on. */
  compat?: boolean;
  /**
   * Requires a live dashboard session cookie instead of a token (docs/dashboard.md); the session's
   * issuer becomes the caller (throttling, metering).
   */
  session?: boolean;
  doc: RouteDoc;
}

/** `/v2/models/:model` → `/v2/models/{model}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]\w*)/g, "{$1}");
}

function schema(type: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(type, { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
  return rest;
}

const problem = {
  type: "object",
  description: "RFC 9457 problem details; `code` is stable, `detail` is for people. Extra members per code.",
  required: ["type", "title", "status", "code", "detail"],
  properties: {
    type: { type: "string", examples: ["urn:edge-inference:problem:invalid_request"] },
    title: { type: "string" },
    status: { type: "integer" },
    code: { type: "string", enum: Object.keys(ERROR_CODES) },
    detail: { type: "string" },
    instance: { type: "string" },
    request_id: { type: "string" },
    errors: {
      type: "array",
      items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } },
    },
  },
};

/** `{"error": "…"}`: the Open Inference Protocol's error shape, used on `/v2` routes. */
const oipError = {
  type: "object",
  required: ["error"],
  properties: { error: { type: "string" }, code: { type: "string", enum: Object.keys(ERROR_CODES) } },
};

/** Error codes every route of a kind can answer, from the stages before its handler. */
function stageCodes(route: DocumentedRoute): (keyof typeof ERROR_CODES)[] {
  const codes: (keyof typeof ERROR_CODES)[] = ["internal_error", "config_invalid"];
  if (route.auth) codes.push("invalid_token", "forbidden", "auth_unavailable");
  if (route.throttle) codes.push("rate_limited", "rate_limiter_unavailable");
  return codes;
}

function operation(route: DocumentedRoute): Record<string, unknown> {
  const { doc } = route;
  const oip = route.path === "/v2" || route.path.startsWith("/v2/");
  const params = [...route.path.matchAll(/:([A-Za-z_]\w*)/g)].map((m) => ({
    name: m[1],
    in: "path",
    required: true,
    schema: { type: "string" },
  }));
  const query = doc.query
    ? Object.entries((schema(doc.query).properties ?? {}) as Record<string, unknown>).map(([name, s]) => ({
        name,
        in: "query",
        required: false,
        schema: s,
      }))
    : [];
  const codes = [...new Set([...stageCodes(route), ...(doc.errors ?? [])])];
  const byStatus = new Map<number, string[]>();
  for (const code of codes) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const errorResponses = Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, list]) => [
        String(status),
        {
          description: `Codes: ${list.join(", ")}`,
          content: oip
            ? { "application/json": { schema: { $ref: "#/components/schemas/OipError" } } }
            : { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
        },
      ]),
  );
  const success =
    typeof doc.response === "string" || doc.response === undefined
      ? { description: doc.response ?? "OK" }
      : { description: "OK", content: { "application/json": { schema: schema(doc.response) } } };
  let requestBody: Record<string, unknown> | undefined;
  if (doc.body && "mediaType" in doc.body) {
    requestBody = {
      required: true,
      description: doc.body.description,
      content: { [doc.body.mediaType]: {} },
    };
  } else if (doc.body) {
    requestBody = {
      required: true,
      content: { "application/json": { schema: schema(doc.body as z.ZodType) } },
    };
  }
  return {
    operationId: `${route.method.toLowerCase()}_${route.api}_${openApiPath(route.path).replace(/[^A-Za-z0-9]+/g, "_")}`,
    summary: doc.summary,
    tags: [route.compat ? "compatibility" : oip ? "open-inference-protocol" : route.api],
    ...(route.session ? { security: [{ dashboardSession: [] }] } : route.auth ? {} : { security: [] }),
    ...(params.length + query.length > 0 && { parameters: [...params, ...query] }),
    ...(requestBody && { requestBody }),
    responses: { [String(doc.status ?? 200)]: success, ...errorResponses },
    "x-api": route.api,
    "x-throttled": route.throttle,
  };
}

/** The OpenAPI 3.1 document of `routes`. */
export function openApiDocument(routes: readonly DocumentedRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const key = openApiPath(route.path);
    paths[key] ??= {};
    (paths[key] as Record<string, unknown>)[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "edge-inference",
      version: "0.1.0",
      description:
        "ML inference at the edge: native /api/v1 routes, Open Inference Protocol v2 (/v2) and the " +
        "replaced services' compatibility routes. Errors are application/problem+json (on /v2: {error}).",
    },
    security: [{ asap: [] }],
    paths,
    components: {
      securitySchemes: {
        asap: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT (ASAP: RS/PS/ES 256-512, one jti per request; docs/auth.md)",
        },
        dashboardSession: {
          type: "apiKey",
          in: "cookie",
          name: "ei_dashboard",
          description: "Set by GET /dashboard/login from a one-time code (docs/dashboard.md)",
        },
      },
      schemas: { Problem: problem, OipError: oipError },
    },
  };
}

/** `GET /api/v1/openapi.json`: the document of `routes()` (built once per isolate). */
export function openApi(routes: () => readonly DocumentedRoute[]): Handler {
  let document: Record<string, unknown> | undefined;
  return () => {
    document ??= openApiDocument(routes());
    return json(document);
  };
}
