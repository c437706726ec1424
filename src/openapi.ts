/**
 * The OpenAPI 3.1 document of every route (`GET /api/v1/openapi.json`), generated from the route
 * table and the zod schemas the routes validate with (`z.toJSONSchema`). A route's documentation
 * (summary, request schema, query, answer) is declared beside it in the route table (`RouteDoc`);
 * errors are the one problem+json shape with every stable code (`ERROR_CODES`).
 */
import * as z from "zod";
import { JobSchema, PredictionSchema } from "./answers";
import type { Handler } from "./context";
import { ERROR_CODES } from "./errors";
import { json } from "./http";

/**
 * One success answer of a route: a zod schema of its JSON body (from src/answers.ts, the schema the
 * handler replies with, see `reply`), or another media type / no body with a description.
 */
export type Answer = z.ZodType | { description: string; mediaType?: string; schema?: z.ZodType };

/** A request body of another media type than JSON. */
export interface BodyDoc {
  mediaType: string;
  description: string;
  schema?: z.ZodType;
}

/** What the document says of one route. */
export interface RouteDoc {
  summary: string;
  /** Request body: a zod schema of JSON, or another media type with a description. */
  body?: z.ZodType | BodyDoc;
  /** Further media types the same body may be sent as (e.g. `text/csv` samples). */
  bodyAlso?: BodyDoc[];
  /** Query parameters (a strict object of strings). */
  query?: z.ZodObject;
  /**
   * Every success answer by status, e.g. `{ 200: ModelListSchema }` or `{ 201: A, 202: B }`. A new
   * route declares its answer schema in src/answers.ts, replies with `reply(Schema, …)` and lists
   * it here: the document and test/node/openapi-answers.test.ts then cover it with no more work.
   */
  responses: Record<number, Answer>;
  /** Error codes this route answers besides the common ones of its stages. */
  errors?: (keyof typeof ERROR_CODES)[];
  /**
   * The same operation as another route under a second path (a trailing slash the replaced
   * service's clients send): served, but left out of the document (OpenAPI forbids neither, but
   * generators would emit the operation twice).
   */
  alias?: boolean;
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

/** Named schemas (`.meta({ id })`) met while rendering, for `components.schemas`. */
type Components = Record<string, unknown>;

/**
 * `type` as JSON Schema: requests as their input (what a caller may send), answers as their output;
 * named schemas are moved to `components` and referenced from there.
 */
function schema(
  type: z.ZodType,
  io: "input" | "output" = "input",
  components?: Components,
): Record<string, unknown> {
  const rendered = z.toJSONSchema(type, { io, unrepresentable: "any" }) as Record<string, unknown>;
  const {
    $schema: _,
    $defs,
    ...rest
  } = rendered as { $defs?: Record<string, unknown> } & Record<string, unknown>;
  const relink = <T>(value: T): T =>
    JSON.parse(JSON.stringify(value).replaceAll('"#/$defs/', '"#/components/schemas/')) as T;
  for (const [id, def] of Object.entries($defs ?? {})) {
    if (!components) continue;
    const named = relink(def);
    if (id in components && JSON.stringify(components[id]) !== JSON.stringify(named)) {
      throw new Error(`two different schemas are named '${id}' (.meta({ id }))`);
    }
    components[id] = named;
  }
  return relink(rest);
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

/** One success response of the document. */
function successResponse(answer: Answer, components: Components): Record<string, unknown> {
  if (answer instanceof z.ZodType) {
    return {
      description: "OK",
      content: { "application/json": { schema: schema(answer, "output", components) } },
    };
  }
  if (!answer.mediaType) return { description: answer.description };
  return {
    description: answer.description,
    content: {
      [answer.mediaType]: answer.schema ? { schema: schema(answer.schema, "output", components) } : {},
    },
  };
}

/** The operation id of a route: method, API name and path (unique: `openApiDocument` checks). */
function operationId(route: DocumentedRoute): string {
  return `${route.method.toLowerCase()}_${route.api}_${openApiPath(route.path).replace(/[^A-Za-z0-9]+/g, "_")}`;
}

function operation(route: DocumentedRoute, components: Components): Record<string, unknown> {
  const { doc } = route;
  const oip = route.path === "/v2" || route.path.startsWith("/v2/");
  const params = [...route.path.matchAll(/:([A-Za-z_]\w*)/g)].map((m) => ({
    name: m[1],
    in: "path",
    required: true,
    schema: { type: "string" },
  }));
  const query = doc.query
    ? Object.entries((schema(doc.query, "input").properties ?? {}) as Record<string, unknown>).map(
        ([name, s]) => ({
          name,
          in: "query",
          required: false,
          schema: s,
        }),
      )
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
  const successes = Object.fromEntries(
    Object.entries(doc.responses).map(([status, answer]) => [status, successResponse(answer, components)]),
  );
  let requestBody: Record<string, unknown> | undefined;
  const content: Record<string, unknown> = {};
  for (const body of [...(doc.body ? [doc.body] : []), ...(doc.bodyAlso ?? [])]) {
    if ("mediaType" in body) {
      content[body.mediaType] = body.schema ? { schema: schema(body.schema, "input", components) } : {};
    } else content["application/json"] = { schema: schema(body as z.ZodType, "input", components) };
  }
  if (Object.keys(content).length > 0) {
    const described = [doc.body, ...(doc.bodyAlso ?? [])]
      .filter((b): b is BodyDoc => b !== undefined && "mediaType" in b)
      .map((b) => `${b.mediaType}: ${b.description}`);
    requestBody = {
      required: true,
      ...(described.length > 0 && { description: described.join("; ") }),
      content,
    };
  }
  return {
    operationId: operationId(route),
    summary: doc.summary,
    tags: [route.compat ? "compatibility" : oip ? "open-inference-protocol" : route.api],
    ...(route.session ? { security: [{ dashboardSession: [] }] } : route.auth ? {} : { security: [] }),
    ...(params.length + query.length > 0 && { parameters: [...params, ...query] }),
    ...(requestBody && { requestBody }),
    responses: { ...successes, ...errorResponses },
    "x-api": route.api,
    "x-throttled": route.throttle,
  };
}

/**
 * The signed webhooks the service sends (docs/webhooks.md): a finished async prediction or training
 * job, POSTed with the body its `GET` returns and the Standard Webhooks headers.
 */
function webhookOperations(components: Components): Record<string, unknown> {
  const headers = [
    ["webhook-id", "`msg_<id>`: the same on every attempt; deduplicate on it"],
    ["webhook-timestamp", "Unix seconds of this attempt"],
    ["webhook-signature", "`v1,<base64 HMAC-SHA256>` of `<id>.<timestamp>.<body>` with the issuer's secret"],
  ].map(([name, description]) => ({
    name,
    in: "header",
    required: true,
    description,
    schema: { type: "string" },
  }));
  const operation = (id: string, summary: string, body: z.ZodType) => ({
    post: {
      operationId: id,
      summary,
      security: [],
      parameters: headers,
      requestBody: {
        required: true,
        content: { "application/json": { schema: schema(body, "output", components) } },
      },
      responses: {
        "200": { description: "Any 2xx: delivered. Anything else (or no answer in 10 s): retried." },
      },
    },
  });
  return {
    predictionFinished: operation(
      "webhook_prediction_finished",
      "An async prediction submitted with callback_url is done or failed",
      PredictionSchema,
    ),
    jobFinished: operation(
      "webhook_job_finished",
      "A training job submitted with callback_url succeeded or failed",
      JobSchema,
    ),
  };
}

/** The OpenAPI 3.1 document of `routes` (aliases left out; operation ids must be unique). */
export function openApiDocument(routes: readonly DocumentedRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const components: Components = {};
  const ids = new Set<string>();
  for (const route of routes) {
    if (route.doc.alias) continue;
    const id = operationId(route);
    if (ids.has(id)) throw new Error(`duplicate operationId ${id}`);
    ids.add(id);
    const key = openApiPath(route.path);
    paths[key] ??= {};
    (paths[key] as Record<string, unknown>)[route.method.toLowerCase()] = operation(route, components);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "edge-inference",
      version: "0.1.0",
      description:
        "ML inference at the edge: native /api/v1 routes, Open Inference Protocol v2 (/v2) and the " +
        "replaced services' compatibility routes. Errors are application/problem+json (on /v2: {error}).",
      license: { name: "UNLICENSED (proprietary; no license is granted)" },
    },
    servers: [
      { url: "/", description: "the origin that serves this document" },
      { url: "http://localhost:8787", description: "local development (npm start)" },
    ],
    security: [{ asap: [] }],
    paths,
    webhooks: webhookOperations(components),
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
      schemas: { Problem: problem, OipError: oipError, ...components },
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
