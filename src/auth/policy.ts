/**
 * Per-issuer authorisation policy (`ASAP_POLICY`): which APIs (route names, see `ROUTES`) and
 * methods each issuer may call. Rules: `*`, `<api>`, `<api>:<METHOD>` or `*:<METHOD>`. Issuers not
 * listed get the `default` rules, which default to none: unknown issuers are denied everything.
 */

import type { Policy } from "../contracts/settings";

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
