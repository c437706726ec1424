/**
 * Where a webhook may go (docs/webhooks.md). A `callback_url` is accepted only when:
 * - it is an absolute https URL (plain http only when `ENVIRONMENT` is dev or test), without
 *   credentials;
 * - outside dev/test, its host is not a loopback, private, link-local, unspecified, CGNAT,
 *   multicast or reserved address literal, nor `localhost` / `*.localhost` / `*.local` /
 *   `*.internal` (no SSRF into the operator's network);
 * - it starts with one of the issuer's prefixes in `WEBHOOK_DESTINATIONS` (or the `default` list),
 *   compared on the parsed URL (same origin, path prefix on a segment boundary);
 * - the issuer has a signing secret in `WEBHOOK_SECRETS`.
 * Checked when the job or prediction is submitted and again before every delivery attempt, so a
 * destination removed from the allow-list stops receiving at once. Redirects are not followed.
 */
import type { Config } from "../config";
import { ApiError } from "../errors";

/** Longest `callback_url` accepted. */
export const MAX_CALLBACK_URL_CHARS = 2048;

type WebhookConfig = Pick<Config, "ENVIRONMENT" | "WEBHOOK_DESTINATIONS" | "WEBHOOK_SECRETS">;

const devLike = (config: Pick<Config, "ENVIRONMENT">) =>
  config.ENVIRONMENT === "dev" || config.ENVIRONMENT === "test";

/** Whether `a.b.c.d` is an address no webhook may reach outside dev. */
function forbiddenIpv4(host: string): boolean {
  const parts = host.split(".").map(Number);
  const [a = 0, b = 0] = parts;
  return (
    a === 0 || // "this" network
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) || // CGNAT
    (a === 169 && b === 254) || // link-local (cloud metadata)
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    a >= 224 // multicast, reserved, broadcast
  );
}

/** Whether an IPv6 literal (without brackets, as `URL` normalises it) is forbidden outside dev. */
function forbiddenIpv6(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "::" || h === "::1") return true;
  // IPv4-mapped / -translated (::ffff:a.b.c.d, which URL writes as ::ffff:xxxx:xxxx): judge the IPv4.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (mapped) {
    const hi = Number.parseInt(mapped[1] as string, 16);
    const lo = Number.parseInt(mapped[2] as string, 16);
    return forbiddenIpv4(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return (
    /^f[cd]/.test(h) || // unique local fc00::/7
    /^fe[89ab]/.test(h) || // link-local fe80::/10
    /^ff/.test(h) || // multicast
    /^64:ff9b:/.test(h) || // NAT64 (reaches IPv4 addresses)
    /^2001:db8:/.test(h) || // documentation
    /^::/.test(h) // other IPv4-compatible forms
  );
}

/** Why `url`'s host is refused outside dev, or undefined. */
function forbiddenHost(url: URL): string | undefined {
  const host = url.hostname.toLowerCase();
  if (host.startsWith("[")) {
    return forbiddenIpv6(host.slice(1, -1)) ? "a loopback, private or link-local IPv6 address" : undefined;
  }
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
    return forbiddenIpv4(host) ? "a loopback, private, link-local or reserved IPv4 address" : undefined;
  }
  if (host === "localhost" || /\.(localhost|local|internal)\.?$/.test(host)) return "a local host name";
  return undefined;
}

/** Whether `url` starts with allow-list entry `prefix` (same origin; path prefix on a segment boundary). */
function underPrefix(url: URL, prefix: string): boolean {
  const allowed = new URL(prefix);
  if (allowed.origin !== url.origin) return false;
  const path = allowed.pathname;
  if (path === "/" || url.pathname === path) return true;
  return url.pathname.startsWith(path.endsWith("/") ? path : `${path}/`);
}

/**
 * Checks `raw` as `issuer`'s callback destination (see the module comment); the parsed URL, or
 * 400 `invalid_callback_url` / 403 `callback_not_allowed` naming the reason.
 */
export function checkCallbackUrl(raw: string, issuer: string | undefined, config: WebhookConfig): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ApiError("invalid_callback_url", "callback_url must be an absolute URL");
  }
  if (raw.length > MAX_CALLBACK_URL_CHARS) {
    throw new ApiError(
      "invalid_callback_url",
      `callback_url is longer than ${MAX_CALLBACK_URL_CHARS} characters`,
    );
  }
  const dev = devLike(config);
  if (url.protocol !== "https:" && !(dev && url.protocol === "http:")) {
    throw new ApiError(
      "invalid_callback_url",
      `callback_url must use https${dev ? " (or http in dev/test)" : ""}; got '${url.protocol}'`,
    );
  }
  if (url.username || url.password) {
    throw new ApiError("invalid_callback_url", "callback_url must not carry credentials (user:password@)");
  }
  const forbidden = dev ? undefined : forbiddenHost(url);
  if (forbidden) {
    throw new ApiError(
      "invalid_callback_url",
      `callback_url's host '${url.hostname}' is ${forbidden}; webhooks go to public hosts only`,
    );
  }
  const who = issuer ?? "anonymous";
  const prefixes = config.WEBHOOK_DESTINATIONS[who] ?? config.WEBHOOK_DESTINATIONS.default ?? [];
  if (!prefixes.some((prefix) => underPrefix(url, prefix))) {
    throw new ApiError(
      "callback_not_allowed",
      `callback_url is not under any destination WEBHOOK_DESTINATIONS allows issuer '${who}'`,
      { extensions: { allowed: prefixes } },
    );
  }
  if (!config.WEBHOOK_SECRETS[who]) {
    throw new ApiError(
      "callback_not_allowed",
      `issuer '${who}' has no webhook signing secret (WEBHOOK_SECRETS); ask the operator for one`,
    );
  }
  return url;
}
