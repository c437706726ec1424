/**
 * The schemas of the structured settings (`ASAP_POLICY`, `ASAP_REPLAY_POLICY`, `RATE_LIMITS`): what
 * `src/config.ts` validates, and the types the auth and admission stages read. The rules that apply
 * them live with their stage (`src/auth/policy.ts`, `src/auth/replay-policy.ts`,
 * `src/admission/policy.ts`).
 */
import * as z from "zod";

const RULE_RE = /^(\*|[a-z][a-z0-9_]*)(:(GET|POST|PUT|DELETE|\*))?$/;

const rules = z.array(
  z.string().regex(RULE_RE, "a rule is '*', '<api>', '<api>:<METHOD>' or '*:<METHOD>' (e.g. 'predict:POST')"),
);

/** Schema of the parsed `ASAP_POLICY` JSON. */
export const policySchema = z.strictObject({
  /** Rules per issuer (`iss`). */
  issuers: z.record(z.string().min(1), rules).default({}),
  /** Rules for issuers not listed in `issuers`. */
  default: rules.default([]),
});

/** A validated policy. */
export type Policy = z.infer<typeof policySchema>;

/** Per-issuer replay checking (`ASAP_REPLAY_POLICY`): `strict` (every `jti` once) or `off`. */
export const replayPolicySchema = z.strictObject({
  default: z.enum(["strict", "off"]).default("strict"),
  issuers: z.record(z.string().min(1).max(256), z.enum(["strict", "off"])).default({}),
});

export type ReplayPolicy = z.infer<typeof replayPolicySchema>;

const API_NAME = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "must be an API name like `predict`");

/** `limit` requests per `window` seconds, with bursts of up to `burst` (default `limit`). */
const ratePolicySchema = z.strictObject({
  limit: z.number().int().min(1).max(1_000_000),
  window: z.number().int().min(1).max(86_400),
  burst: z.number().int().min(1).max(1_000_000).optional(),
});

/** A rate-limit policy: sustained `limit` per `window` seconds, bursts of up to `burst`. */
export type RatePolicy = z.infer<typeof ratePolicySchema>;

const overridesSchema = z.record(API_NAME, ratePolicySchema).default({});

/** Schema of the parsed `RATE_LIMITS` JSON. */
export const rateLimitsSchema = z.strictObject({
  default: ratePolicySchema,
  apis: overridesSchema,
  /**
   * Optional: every caller's total over all throttled APIs together, besides each API's own limit,
   * so spreading one workload over several protocols cannot exceed it.
   */
  total: ratePolicySchema.optional(),
  callers: z
    .record(
      z.string().min(1).max(256),
      z.strictObject({
        default: ratePolicySchema.optional(),
        apis: overridesSchema,
        /** This caller's total over all throttled APIs (overrides the top-level `total`). */
        total: ratePolicySchema.optional(),
      }),
    )
    .default({}),
});

/** Validated rate-limit configuration. */
export type RateLimits = z.infer<typeof rateLimitsSchema>;
