/** Rate-limit configuration (`RATE_LIMITS`): schema, policy resolution and route cross-check. */

import type { RateLimits, RatePolicy } from "../contracts/settings";

/** The name the total is kept under in a caller's guard (never an API name: those start with a letter). */
export const TOTAL_API = "*";

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
