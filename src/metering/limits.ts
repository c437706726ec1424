/** Rate-limit configuration (`RATE_LIMITS`): schema, policy resolution and route cross-check. */
import { z } from "zod";

const API_NAME = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "must be an API name like `predict`");

/** `limit` requests per `window` seconds, with bursts of up to `burst` (default `limit`). */
const policySchema = z.strictObject({
  limit: z.number().int().min(1).max(1_000_000),
  window: z.number().int().min(1).max(86_400),
  burst: z.number().int().min(1).max(1_000_000).optional(),
});

/** A rate-limit policy: sustained `limit` per `window` seconds, bursts of up to `burst`. */
export type RatePolicy = z.infer<typeof policySchema>;

const overridesSchema = z.record(API_NAME, policySchema).default({});

/** Schema of the parsed `RATE_LIMITS` JSON. */
export const rateLimitsSchema = z.strictObject({
  default: policySchema,
  apis: overridesSchema,
  /**
   * Optional: every caller's total over all throttled APIs together, besides each API's own limit,
   * so spreading one workload over several protocols cannot exceed it.
   */
  total: policySchema.optional(),
  callers: z
    .record(
      z.string().min(1).max(256),
      z.strictObject({
        default: policySchema.optional(),
        apis: overridesSchema,
        /** This caller's total over all throttled APIs (overrides the top-level `total`). */
        total: policySchema.optional(),
      }),
    )
    .default({}),
});

/** The name the total is kept under in a caller's guard (never an API name: those start with a letter). */
export const TOTAL_API = "*";

/** Validated rate-limit configuration. */
export type RateLimits = z.infer<typeof rateLimitsSchema>;

/**
 * The policy for `caller` on `api`, most specific first: the caller's API override, the caller's
 * default, the API override, the global default.
 */
export function resolvePolicy(limits: RateLimits, api: string, caller: string): RatePolicy {
  const own = Object.hasOwn(limits.callers, caller) ? limits.callers[caller] : undefined;
  return (
    (own && Object.hasOwn(own.apis, api) ? own.apis[api] : undefined) ??
    own?.default ??
    (Object.hasOwn(limits.apis, api) ? limits.apis[api] : undefined) ??
    limits.default
  );
}

/** The total over all APIs that applies to `caller`: its own, else the top-level one; none when neither is set. */
export function resolveTotal(limits: RateLimits, caller: string): RatePolicy | undefined {
  const own = Object.hasOwn(limits.callers, caller) ? limits.callers[caller] : undefined;
  return own?.total ?? limits.total;
}

/** Config paths of API overrides in `limits` that name no throttled API (typos such as `"predcit"`). */
export function unknownApiOverrides(limits: RateLimits, throttled: readonly string[]): string[] {
  const overrides = [
    ...Object.keys(limits.apis).map((api) => ({ api, path: `RATE_LIMITS.apis.${api}` })),
    ...Object.entries(limits.callers).flatMap(([caller, own]) =>
      Object.keys(own.apis).map((api) => ({ api, path: `RATE_LIMITS.callers.${caller}.apis.${api}` })),
    ),
  ];
  return overrides.filter((o) => !throttled.includes(o.api)).map((o) => o.path);
}
