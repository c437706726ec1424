import type { AppRequest } from "../context";

/**
 * The identity that throttling and per-caller metering are keyed by: the ASAP issuer once the
 * auth stage has authenticated the request; otherwise, when `TRUST_CF_CONNECTING_IP` is on, the
 * client IP Cloudflare's edge reports in `CF-Connecting-IP` (the edge overwrites any value the
 * client sent; without the edge in front the header is whatever the client chose, so it is
 * ignored); otherwise `anonymous`.
 */
export function callerIdentity(request: AppRequest): string {
  const issuer = request.state.caller?.issuer;
  if (issuer !== undefined) return issuer;
  const ip = request.state.config?.TRUST_CF_CONNECTING_IP
    ? request.headers.get("cf-connecting-ip")?.slice(0, 64)
    : undefined;
  return ip || "anonymous";
}
