/**
 * Who sees whose data: jobs, async predictions and prediction log rows belong to the issuer that
 * created them. An admin (`isAdmin`: granted `models_admin` in `ASAP_POLICY`) sees everyone's;
 * any other caller only its own, and another caller's row is answered as unknown (404), so ids
 * reveal nothing. Without authentication (`ASAP_AUTH=off`, dev/test only) there is no caller and
 * no restriction.
 */
import type { RequestState } from "../context";
import { isAdmin } from "./policy";

/** The issuer whose rows this request is limited to, or undefined when it may see every caller's. */
export function ownerScope(state: Pick<RequestState, "caller" | "config">): string | undefined {
  const issuer = state.caller?.issuer;
  if (issuer === undefined) return undefined;
  return isAdmin(state.config.ASAP_POLICY, issuer) ? undefined : issuer;
}

/** Whether this request may see a row created by `owner`. */
export function canSee(state: Pick<RequestState, "caller" | "config">, owner: string | null): boolean {
  const scope = ownerScope(state);
  return scope === undefined || owner === scope;
}
