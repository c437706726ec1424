/**
 * Per-issuer authorisation policy (`ASAP_POLICY`): which APIs (route names, see `ROUTES`) and
 * methods each issuer may call. Rules: `*`, `<api>`, `<api>:<METHOD>` or `*:<METHOD>`. Issuers not
 * listed get the `default` rules, which default to none: unknown issuers are denied everything.
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

/** Whether `issuer` may call `api` with `method` under `policy`. */
export function isAllowed(policy: Policy, issuer: string, api: string, method: string): boolean {
  const granted = Object.hasOwn(policy.issuers, issuer) ? policy.issuers[issuer] : policy.default;
  return (granted ?? []).some((rule) => {
    const [ruleApi, ruleMethod = "*"] = rule.split(":");
    return (ruleApi === "*" || ruleApi === api) && (ruleMethod === "*" || ruleMethod === method);
  });
}

/** The API of the registry's mutations; an issuer granted it (any method) is an admin. */
export const ADMIN_API = "models_admin";

/**
 * Whether `issuer` is an admin: `policy` lets it change the registry (`models_admin` with POST,
 * PUT or DELETE; `*:GET` alone does not make a reader an admin). Admins see every caller's jobs,
 * async predictions and prediction log rows; others see only their own.
 */
export function isAdmin(policy: Policy, issuer: string): boolean {
  return ["POST", "PUT", "DELETE"].some((method) => isAllowed(policy, issuer, ADMIN_API, method));
}
