/** Admission: throttling from quota leases and sharded replay protection (docs/metering.md, docs/auth.md). */
export { gcra, gcraGiveBack, gcraTake } from "./gcra";
export { rateLimitHeaders } from "./headers";
export { LeaseHolder, type LeaseOptions, type QuotaSource } from "./leases";
export { type ReplayPolicy, replayChecked, replayPolicySchema, replayShard, spendToken } from "./replay";
export { afterCheck, createAdmission } from "./stage";
export type { Admission, AdmissionResult, LeaseGrant, RateDecision, RateLimitState } from "./types";
