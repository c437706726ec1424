import * as z from "zod";
import { BANK_FEATURIZER, MODEL_ID_RE } from "./contracts/manifest";
import { policySchema, rateLimitsSchema, replayPolicySchema } from "./contracts/settings";
import { LOG_LEVELS, parseRequestLog } from "./log";

const intVar = (name: string, min: number, max: number) =>
  z
    .string({ error: `${name} is required` })
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${name} must be >= ${min}`).max(max, `${name} must be <= ${max}`));

/** A var holding JSON, parsed and then validated by `schema`. */
const jsonVar = <S extends z.ZodType>(name: string, schema: S) =>
  z
    .string({ error: `${name} is required` })
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `${name} is not valid JSON: ${(e as Error).message}` });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** A comma-separated list var (blank entries dropped). */
const listVar = (name: string) =>
  z.string({ error: `${name} must be a comma-separated list` }).transform((text) =>
    text
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean),
  );

/** Why `url` is not a usable key repository base URL, or undefined when it is. */
function keyBaseUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `'${url}' is not a URL`;
  }
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(parsed.hostname);
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && loopback)) {
    return `'${url}' must use https (plain http only for loopback hosts)`;
  }
  if (parsed.search || parsed.hash || !url.endsWith("/")) return `'${url}' must end with '/'`;
  return undefined;
}

/** `WEBHOOK_DESTINATIONS`: issuer (or `default`) → allowed URL prefixes (https, or http in dev). */
const webhookDestinationsSchema = z.record(
  z.string().min(1),
  z.array(
    z.string().refine((entry) => {
      try {
        const url = new URL(entry);
        return (url.protocol === "https:" || url.protocol === "http:") && !url.search && !url.hash;
      } catch {
        return false;
      }
    }, "each WEBHOOK_DESTINATIONS entry must be an http(s) URL prefix without query or fragment"),
  ),
);

/**
 * `WEBHOOK_SECRETS`: issuer → Standard Webhooks secret (`whsec_` + base64 of 24-64 random bytes).
 * Parsed without echoing the text: a JSON error message would quote the secret.
 */
const webhookSecretsVar = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "WEBHOOK_SECRETS is not valid JSON (its text is not shown)" });
      return z.NEVER;
    }
  })
  .pipe(
    z.record(
      z.string().min(1),
      z
        .string()
        .regex(
          /^whsec_[A-Za-z0-9+/]{32,}={0,2}$/,
          "each WEBHOOK_SECRETS value must be whsec_ + base64 of 24-64 random bytes",
        ),
    ),
  );

/** Why `entry` is not a usable `CORS_ORIGINS` entry, or undefined when it is. */
function corsOriginProblem(entry: string): string | undefined {
  if (entry === "*") return undefined;
  try {
    const url = new URL(entry);
    if ((url.protocol === "https:" || url.protocol === "http:") && url.origin === entry) return undefined;
  } catch {
    // not a URL: reported below
  }
  return `'${entry}' is not an origin (scheme://host[:port], no path or trailing slash) or '*'`;
}

/** An `on`/`off` var as a boolean. */
const onOffVar = (name: string, fallback: "on" | "off") =>
  z
    .enum(["on", "off"], { error: `${name} must be 'on' or 'off'` })
    .default(fallback)
    .transform((v) => v === "on");

/** Schema of the `[vars]` in wrangler.toml; every value arrives as a string. */
const configSchema = z.object({
  ENVIRONMENT: z.enum(["dev", "test", "staging", "production"]),
  LOG_LEVEL: z.enum(LOG_LEVELS),
  // Share of requests that get the per-request log line (1 = all, 0 = off), whatever LOG_LEVEL is.
  REQUEST_LOG: z
    .string({ error: "REQUEST_LOG must be all, off or sample:<rate>" })
    .default("all")
    .transform((text, ctx) => {
      const rate = parseRequestLog(text);
      if (rate !== undefined) return rate;
      ctx.addIssue({
        code: "custom",
        message: `REQUEST_LOG must be all, off or sample:<rate> with 0 < rate <= 1, not '${text.slice(0, 40)}'`,
      });
      return z.NEVER;
    }),
  // Most request lines one console.log carries (src/log.ts, RequestLog); 1 writes each at once.
  REQUEST_LOG_BATCH: intVar("REQUEST_LOG_BATCH", 1, 256).prefault("32"),
  DEFAULT_MODEL: z.string().regex(MODEL_ID_RE, "DEFAULT_MODEL must be a model id"),
  /** The image model used when an image arrives without `model` (docs/images.md). */
  DEFAULT_IMAGE_MODEL: z
    .string()
    .regex(MODEL_ID_RE, "DEFAULT_IMAGE_MODEL must be a model id")
    .default("moderation-image"),
  MAX_BODY_BYTES: intVar("MAX_BODY_BYTES", 1024, 100 * 1024 * 1024),
  MAX_TEXT_BYTES: intVar("MAX_TEXT_BYTES", 1, 10 * 1024 * 1024),
  MAX_BATCH: intVar("MAX_BATCH", 1, 1024),
  // The per-request work budget of the classification core (src/inference/budget.ts,
  // docs/configuration.md): image model runs, decoded pixels and text bytes of one request.
  MAX_REQUEST_IMAGES: intVar("MAX_REQUEST_IMAGES", 1, 64).prefault("8"),
  MAX_REQUEST_PIXELS: intVar("MAX_REQUEST_PIXELS", 1, 64 * 1024 * 1024).prefault("4194304"),
  MAX_REQUEST_TEXT_BYTES: intVar("MAX_REQUEST_TEXT_BYTES", 1, 64 * 1024 * 1024).prefault("1048576"),
  MODEL_CACHE_BYTES: intVar("MODEL_CACHE_BYTES", 1024, 1024 * 1024 * 1024),
  MAX_MODEL_BYTES: intVar("MAX_MODEL_BYTES", 1024, 1024 * 1024 * 1024),
  // Upload validation: the WASM heap a model's load + probe may grow the isolate to (docs/byom.md).
  MAX_WASM_HEAP_BYTES: intVar("MAX_WASM_HEAP_BYTES", 16 * 1024 * 1024, 4 * 1024 * 1024 * 1024).prefault(
    "100663296",
  ),
  ACTIVE_POINTER_TTL_MS: intVar("ACTIVE_POINTER_TTL_MS", 0, 600_000),
  // Metering (docs/metering.md). Defaults apply only when a var is absent.
  METERING: z.enum(["on", "off"]).default("on"),
  STATS_SHARDS: intVar("STATS_SHARDS", 1, 64).prefault("4"),
  // Live input profiles for drift (docs/drift.md): collected per scored input when "on".
  DRIFT: z.enum(["on", "off"]).default("on"),
  // Inputs one complete hour needs to become the baseline reference of a version without one.
  DRIFT_BASELINE_MIN: intVar("DRIFT_BASELINE_MIN", 100, 1_000_000).prefault("1000"),
  RATE_LIMITS: jsonVar("RATE_LIMITS", rateLimitsSchema).prefault('{"default":{"limit":600,"window":60}}'),
  RATE_LIMIT_FAILURE_MODE: z.enum(["open", "closed"]).default("open"),
  RATE_LIMIT_TIMEOUT_MS: intVar("RATE_LIMIT_TIMEOUT_MS", 10, 10_000).prefault("1000"),
  // Quota leases (src/admission/leases.ts): lifetime (0 = every request asks the caller's guard)
  // and largest lease as a percentage of the policy's burst.
  RATE_LEASE_MS: intVar("RATE_LEASE_MS", 0, 60_000).prefault("1000"),
  RATE_LEASE_MAX_SHARE_PCT: intVar("RATE_LEASE_MAX_SHARE_PCT", 1, 100).prefault("10"),
  // ASAP authentication (docs/auth.md). Defaults apply only when a var is absent.
  ASAP_AUTH: z
    .enum(["on", "off"], { error: "ASAP_AUTH must be 'on' or 'off'" })
    .default("on")
    .transform((v) => v === "on"),
  ASAP_AUDIENCE: listVar("ASAP_AUDIENCE")
    .prefault("edge-inference")
    .pipe(z.array(z.string()).min(1, "ASAP_AUDIENCE must name at least one audience")),
  ASAP_KEY_SOURCE: z.enum(["r2", "http"], { error: "ASAP_KEY_SOURCE must be 'r2' or 'http'" }).default("r2"),
  ASAP_KEY_BASE_URLS: listVar("ASAP_KEY_BASE_URLS")
    .prefault("")
    .superRefine((urls, ctx) => {
      for (const url of urls) {
        const problem = keyBaseUrlProblem(url);
        if (problem) ctx.addIssue({ code: "custom", message: `ASAP_KEY_BASE_URLS: ${problem}` });
      }
    }),
  ASAP_KEY_TIMEOUT_MS: intVar("ASAP_KEY_TIMEOUT_MS", 50, 30_000).prefault("2000"),
  ASAP_REPLAY_TIMEOUT_MS: intVar("ASAP_REPLAY_TIMEOUT_MS", 10, 60_000).prefault("10000"),
  ASAP_LEEWAY_S: intVar("ASAP_LEEWAY_S", 0, 300).prefault("30"),
  ASAP_REPLAY_PROTECTION: z
    .enum(["on", "off"], { error: "ASAP_REPLAY_PROTECTION must be 'on' or 'off'" })
    .default("on")
    .transform((v) => v === "on"),
  ASAP_POLICY: jsonVar("ASAP_POLICY", policySchema).prefault('{"default":[]}'),
  // Replay checking per issuer (`strict` | `off`) and the number of replay shard objects.
  ASAP_REPLAY_POLICY: jsonVar("ASAP_REPLAY_POLICY", replayPolicySchema).prefault('{"default":"strict"}'),
  ASAP_REPLAY_SHARDS: intVar("ASAP_REPLAY_SHARDS", 1, 256).prefault("16"),
  // HTTP behaviour (docs/api.md "HTTP behaviour"). Defaults apply only when a var is absent.
  // The client IP from `CF-Connecting-IP` is used as a metering identity only when the Worker is
  // behind Cloudflare's edge, which sets it; elsewhere any client could pick it.
  TRUST_CF_CONNECTING_IP: onOffVar("TRUST_CF_CONNECTING_IP", "off"),
  HSTS: onOffVar("HSTS", "off"),
  CORS_ORIGINS: listVar("CORS_ORIGINS")
    .prefault("")
    .superRefine((entries, ctx) => {
      for (const entry of entries) {
        const problem = corsOriginProblem(entry);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }
      if (entries.includes("*") && entries.length > 1) {
        ctx.addIssue({ code: "custom", message: "'*' must be the only entry" });
      }
    }),
  // Registry, jobs, async predictions, prediction log (docs/registry.md).
  PREDICTION_LOG: z
    .enum(["on", "off"], { error: "PREDICTION_LOG must be 'on' or 'off'" })
    .default("on")
    .transform((v) => v === "on"),
  PREDICTION_LOG_INPUTS: z
    .enum(["on", "off"], { error: "PREDICTION_LOG_INPUTS must be 'on' or 'off'" })
    .default("off")
    .transform((v) => v === "on"),
  RETENTION_DAYS: intVar("RETENTION_DAYS", 1, 3650).prefault("30"),
  MAX_DATASET_BYTES: intVar("MAX_DATASET_BYTES", 1024, 64 * 1024 * 1024).prefault("16777216"),
  MAX_DATASET_ROWS: intVar("MAX_DATASET_ROWS", 10, 200_000).prefault("50000"),
  // The stuck-work sweep (docs/registry.md "Nothing left stuck"): an unfinished async prediction /
  // training job whose state has not moved for this long is re-enqueued, at most STUCK_MAX_REQUEUES
  // times, then failed. Floors: longer than the consumers' leases (2 min / 15 min), which a live
  // run may hold without touching its row.
  STUCK_PREDICTION_SECONDS: intVar("STUCK_PREDICTION_SECONDS", 180, 7 * 86_400).prefault("900"),
  STUCK_JOB_SECONDS: intVar("STUCK_JOB_SECONDS", 960, 7 * 86_400).prefault("1800"),
  STUCK_MAX_REQUEUES: intVar("STUCK_MAX_REQUEUES", 0, 10).prefault("2"),
  // Signed webhooks (docs/webhooks.md): allowed `callback_url` destinations per issuer (URL
  // prefixes; "default" for every issuer), each issuer's signing secret (a Worker secret, never a
  // var), and how often and how far apart a failed delivery is retried.
  WEBHOOK_DESTINATIONS: jsonVar("WEBHOOK_DESTINATIONS", webhookDestinationsSchema).prefault("{}"),
  WEBHOOK_SECRETS: webhookSecretsVar.prefault("{}"),
  WEBHOOK_MAX_ATTEMPTS: intVar("WEBHOOK_MAX_ATTEMPTS", 1, 20).prefault("8"),
  WEBHOOK_RETRY_BASE_SECONDS: intVar("WEBHOOK_RETRY_BASE_SECONDS", 1, 3600).prefault("30"),
  // Online learning (docs/online.md): which model ids learn from streamed samples, when
  // a snapshot is exported (every K samples or T seconds after the first unexported sample), rows
  // per samples request, and the largest label set (the snapshot is buckets × labels int8 bytes).
  ONLINE_MODELS: listVar("ONLINE_MODELS")
    .prefault("bank")
    .pipe(z.array(z.string().regex(MODEL_ID_RE, "ONLINE_MODELS must list model ids"))),
  ONLINE_SNAPSHOT_SAMPLES: intVar("ONLINE_SNAPSHOT_SAMPLES", 1, 10_000_000).prefault("5000"),
  ONLINE_SNAPSHOT_SECONDS: intVar("ONLINE_SNAPSHOT_SECONDS", 1, 86_400).prefault("60"),
  ONLINE_MAX_SAMPLES: intVar("ONLINE_MAX_SAMPLES", 1, 10_000).prefault("1000"),
  ONLINE_MAX_LABELS: intVar("ONLINE_MAX_LABELS", 2, 4096).prefault("2048"),
  // Compatibility routes of the replaced services (docs/protocols.md).
  COMPAT_ROUTES: z
    .enum(["on", "off"], { error: "COMPAT_ROUTES must be 'on' or 'off'" })
    .default("on")
    .transform((v) => v === "on"),
  COMPAT_ONLINE_MODEL: z
    .string()
    .regex(MODEL_ID_RE, "COMPAT_ONLINE_MODEL must be a model id")
    .default("bank"),
});

/** Cross-var rules the per-var schemas cannot express. */
const checkedConfigSchema = configSchema.superRefine((config, ctx) => {
  if (!config.ASAP_AUTH && config.ENVIRONMENT !== "dev" && config.ENVIRONMENT !== "test") {
    ctx.addIssue({
      code: "custom",
      path: ["ASAP_AUTH"],
      message: "ASAP_AUTH=off is only allowed when ENVIRONMENT is dev or test",
    });
  }
  if (config.ASAP_KEY_SOURCE === "http" && config.ASAP_KEY_BASE_URLS.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["ASAP_KEY_BASE_URLS"],
      message: "ASAP_KEY_BASE_URLS must list at least one base URL when ASAP_KEY_SOURCE is 'http'",
    });
  }
  if (config.ONLINE_MODELS.includes(config.DEFAULT_IMAGE_MODEL)) {
    ctx.addIssue({
      code: "custom",
      path: ["ONLINE_MODELS"],
      message: "ONLINE_MODELS must not list DEFAULT_IMAGE_MODEL (online models are text models)",
    });
  }
  if (config.ONLINE_MODELS.includes(config.DEFAULT_MODEL)) {
    ctx.addIssue({
      code: "custom",
      path: ["ONLINE_MODELS"],
      message: "ONLINE_MODELS must not list DEFAULT_MODEL (snapshots would replace its versions)",
    });
  }
  // A snapshot's int8 weight matrix is buckets × labels bytes; the rest of the file is < 1 MiB.
  if (config.ONLINE_MAX_LABELS * BANK_FEATURIZER.buckets + 1024 * 1024 > config.MAX_MODEL_BYTES) {
    ctx.addIssue({
      code: "custom",
      path: ["ONLINE_MAX_LABELS"],
      message: `ONLINE_MAX_LABELS × ${BANK_FEATURIZER.buckets} bytes (+ 1 MiB) must fit MAX_MODEL_BYTES (${config.MAX_MODEL_BYTES})`,
    });
  }
});

/** Validated configuration. */
export type Config = z.infer<typeof configSchema>;

/** Thrown when the deployed vars are invalid; the message lists every problem. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const cache = new WeakMap<object, Config>();
const VAR_NAMES = Object.keys(configSchema.shape);
/** The last vars parsed, by value: the runtime may hand each request a new `env` object. */
let last: { raw: unknown[]; config: Config } | undefined;

/**
 * Parses and validates the Worker's vars. The result is memoised per `env` object and by the
 * vars' values, so the check runs once per isolate ("at startup") and an invalid deployment fails
 * every request with the same clear message instead of misbehaving.
 */
export function loadConfig(env: Record<string, unknown>): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const raw = VAR_NAMES.map((name) => env[name]);
  if (last?.raw.every((v, i) => v === raw[i])) {
    cache.set(env, last.config);
    return last.config;
  }
  const parsed = checkedConfigSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(vars)"}: ${i.message}`);
    throw new ConfigError(`invalid configuration in wrangler.toml [vars]: ${problems.join("; ")}`);
  }
  cache.set(env, parsed.data);
  last = { raw, config: parsed.data };
  return parsed.data;
}
