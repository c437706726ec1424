import type { AppRequest } from "../context";

/**
 * The identity that throttling and per-caller metering are keyed by: the ASAP issuer once the
 * auth stage has authenticated the request; otherwise the client IP Cloudflare reports in
 * `CF-Connecting-IP` (set by the edge, not spoofable in production); otherwise `anonymous`.
 */
export function callerIdentity(request: AppRequest): string {
  return request.state.caller?.issuer ?? request.headers.get("cf-connecting-ip")?.slice(0, 64) ?? "anonymous";
}
