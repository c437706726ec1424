/**
 * Which issuers' tokens are checked for replay (`ASAP_REPLAY_POLICY`): decided by the auth stage,
 * which marks a strict issuer's token id on the request; the admission stage spends it
 * (`src/admission/replay.ts`).
 */

import type { ReplayPolicy } from "../contracts/settings";

/** Whether tokens of `issuer` are checked for replay under `policy`. */
export function replayChecked(policy: ReplayPolicy, issuer: string): boolean {
  const mode = Object.hasOwn(policy.issuers, issuer) ? policy.issuers[issuer] : policy.default;
  return mode !== "off";
}
