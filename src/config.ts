import { z } from "zod";
import { MODEL_ID_RE } from "./inference/manifest";
import { LOG_LEVELS } from "./log";

const intVar = (name: string, min: number, max: number) =>
  z
    .string({ error: `${name} is required` })
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${name} must be >= ${min}`).max(max, `${name} must be <= ${max}`));

/** Schema of the `[vars]` in wrangler.toml; every value arrives as a string. */
const configSchema = z.object({
  ENVIRONMENT: z.enum(["dev", "test", "staging", "production"]),
  LOG_LEVEL: z.enum(LOG_LEVELS),
  DEFAULT_MODEL: z.string().regex(MODEL_ID_RE, "DEFAULT_MODEL must be a model id"),
  MAX_BODY_BYTES: intVar("MAX_BODY_BYTES", 1024, 100 * 1024 * 1024),
  MAX_TEXT_BYTES: intVar("MAX_TEXT_BYTES", 1, 10 * 1024 * 1024),
  MAX_BATCH: intVar("MAX_BATCH", 1, 1024),
  MODEL_CACHE_BYTES: intVar("MODEL_CACHE_BYTES", 1024, 1024 * 1024 * 1024),
  MAX_MODEL_BYTES: intVar("MAX_MODEL_BYTES", 1024, 1024 * 1024 * 1024),
  ACTIVE_POINTER_TTL_MS: intVar("ACTIVE_POINTER_TTL_MS", 0, 600_000),
});

/** Validated configuration. */
export type Config = z.infer<typeof configSchema>;

/** Thrown when the deployed vars are invalid; the message lists every problem. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const cache = new WeakMap<object, Config>();

/**
 * Parses and validates the Worker's vars. The result is memoised per `env` object, so the check
 * runs once per isolate ("at startup") and an invalid deployment fails every request with the
 * same clear message instead of misbehaving.
 */
export function loadConfig(env: Record<string, unknown>): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(vars)"}: ${i.message}`);
    throw new ConfigError(`invalid configuration in wrangler.toml [vars]: ${problems.join("; ")}`);
  }
  cache.set(env, parsed.data);
  return parsed.data;
}
