/**
 * Public-key resolution for ASAP: `kid` → CryptoKey, from R2 (`asap-keys/<kid>`) or from HTTP key
 * repositories (`GET {base}{kid}`, mirrors tried in order). Results are cached per isolate in a
 * bounded LRU honouring `Cache-Control` (default 10 min); missing or unusable keys are cached
 * briefly; concurrent lookups of one key share a single fetch.
 */
import { importSPKI } from "jose";
import { BoundedMap } from "../bounded-map";
import { type AsapAlgorithm, PEM_CONTENT_TYPE, R2_KEY_PREFIX } from "./asap";
import { AuthError } from "./failure";

/** Where keys come from (the validated `ASAP_KEY_*` configuration). */
export interface KeySource {
  kind: "r2" | "http";
  /** HTTP only: primary base URL first, then mirrors; each ends with `/`. */
  baseUrls: readonly string[];
  timeoutMs: number;
}

const DEFAULT_TTL_MS = 10 * 60_000;
const MAX_TTL_MS = 24 * 3600_000;
const NEGATIVE_TTL_MS = 10_000;
const MAX_ENTRIES = 512;
const MAX_PEM_BYTES = 16 * 1024;
const PEM_RE = /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/;

type Failure = "unknown_key" | "key_invalid" | "key_server_unavailable";
type Entry =
  | { ok: true; pem: string; until: number; imported: Map<string, Promise<CryptoKey>> }
  | { ok: false; failure: Failure; until: number; detail?: string };

/**
 * Content types a key repository may serve a PEM with: the ASAP media type, and what plain static
 * file servers send for a `.pem` file (the body must still be a PEM public key).
 */
const PEM_TYPES = new Set([
  PEM_CONTENT_TYPE,
  "application/octet-stream",
  "text/plain",
  "application/x-x509-ca-cert",
]);

const cache = new BoundedMap<string, Entry>(MAX_ENTRIES);
const inflight = new Map<string, Promise<Entry>>();

const DESCRIPTIONS: Record<Failure, string> = {
  unknown_key: "no public key is published for the token's kid",
  key_invalid: "the key published for the token's kid is not a PEM public key",
  key_server_unavailable: "the public key repository is unavailable; retry later",
};

/** Resolves the public key `kid` for `alg`, or throws an `AuthError`. */
export async function getPublicKey(
  bucket: R2Bucket,
  source: KeySource,
  kid: string,
  alg: AsapAlgorithm,
): Promise<CryptoKey> {
  return (await resolvePublicKey(bucket, source, kid, alg)).key;
}

/** `getPublicKey`, with the PEM the key was imported from. */
export async function resolvePublicKey(
  bucket: R2Bucket,
  source: KeySource,
  kid: string,
  alg: AsapAlgorithm,
): Promise<{ key: CryptoKey; pem: string }> {
  const entry = await publishedKey(bucket, source, kid);
  let key = entry.imported.get(alg);
  if (!key) {
    key = importSPKI(entry.pem, alg);
    entry.imported.set(alg, key);
  }
  try {
    return { key: await key, pem: entry.pem };
  } catch {
    throw new AuthError("key_alg_mismatch", `the issuer's key cannot verify ${alg} signatures`);
  }
}

/**
 * The PEM currently published for `kid` (through the same cache as `getPublicKey`), or throws an
 * `AuthError`: what a verified token's key is compared with when the token is reused.
 */
export async function getPublicKeyPem(bucket: R2Bucket, source: KeySource, kid: string): Promise<string> {
  return (await publishedKey(bucket, source, kid)).pem;
}

async function publishedKey(
  bucket: R2Bucket,
  source: KeySource,
  kid: string,
): Promise<Extract<Entry, { ok: true }>> {
  const cacheKey = source.kind === "r2" ? `r2 ${kid}` : `${source.baseUrls.join(" ")} ${kid}`;
  let entry = cache.touch(cacheKey);
  if (entry && entry.until <= Date.now()) entry = undefined;
  if (!entry) {
    let pending = inflight.get(cacheKey);
    if (!pending) {
      pending = (source.kind === "r2" ? fromR2(bucket, kid) : fromHttp(source, kid)).finally(() =>
        inflight.delete(cacheKey),
      );
      inflight.set(cacheKey, pending);
    }
    entry = await pending;
    if (entry.until > Date.now()) cache.set(cacheKey, entry);
  }
  if (!entry.ok) throw new AuthError(entry.failure, entry.detail ?? DESCRIPTIONS[entry.failure]);
  return entry;
}

/** Lifetime from `Cache-Control`: `max-age` (capped at a day), none for no-store/no-cache, else 10 min. */
function ttlFrom(cacheControl: string | null | undefined): number {
  if (!cacheControl) return DEFAULT_TTL_MS;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(cacheControl)) return 0;
  const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?\s*(?:,|$)/i.exec(cacheControl);
  return maxAge ? Math.min(Number(maxAge[1]) * 1000, MAX_TTL_MS) : DEFAULT_TTL_MS;
}

function found(pem: string, cacheControl: string | null | undefined): Entry {
  if (!PEM_RE.test(pem)) return failed("key_invalid");
  return { ok: true, pem, until: Date.now() + ttlFrom(cacheControl), imported: new Map() };
}

function failed(failure: Failure, detail?: string): Entry {
  // Outages are not cached: the next request retries.
  return {
    ok: false,
    failure,
    ...(detail !== undefined && { detail }),
    until: failure === "key_server_unavailable" ? 0 : Date.now() + NEGATIVE_TTL_MS,
  };
}

async function fromR2(bucket: R2Bucket, kid: string): Promise<Entry> {
  let object: R2ObjectBody | null;
  try {
    object = await bucket.get(`${R2_KEY_PREFIX}${kid}`);
  } catch {
    return failed("key_server_unavailable");
  }
  if (!object) return failed("unknown_key");
  if (object.size > MAX_PEM_BYTES) {
    await object.body.cancel();
    return failed("key_invalid");
  }
  return found(await object.text(), object.httpMetadata?.cacheControl);
}

const RANK: Record<Failure, number> = { key_server_unavailable: 0, key_invalid: 1, unknown_key: 2 };

/** Tries each base URL in turn; a definitive answer (404, then unusable key) outranks an outage. */
async function fromHttp(source: KeySource, kid: string): Promise<Entry> {
  let worst: Entry & { ok: false } = failed("key_server_unavailable") as Entry & { ok: false };
  for (const base of source.baseUrls) {
    const entry = await fetchKey(`${base}${kid}`, source.timeoutMs);
    if (entry.ok) return entry;
    if (RANK[entry.failure] > RANK[worst.failure]) worst = entry;
  }
  return worst;
}

async function fetchKey(url: string, timeoutMs: number): Promise<Entry> {
  try {
    const res = await fetch(url, {
      headers: { accept: PEM_CONTENT_TYPE },
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      return failed(res.status === 404 || res.status === 410 ? "unknown_key" : "key_server_unavailable");
    }
    const type = (res.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (!PEM_TYPES.has(type ?? "")) {
      await res.body?.cancel();
      return failed(
        "key_invalid",
        `the key repository served the token's kid as '${(type || "no content type").slice(0, 64)}', not a PEM (${[...PEM_TYPES].join(", ")})`,
      );
    }
    if (declared > MAX_PEM_BYTES) {
      await res.body?.cancel();
      return failed("key_invalid");
    }
    const bytes = await res.arrayBuffer();
    if (bytes.byteLength > MAX_PEM_BYTES) return failed("key_invalid");
    return found(new TextDecoder().decode(bytes), res.headers.get("cache-control"));
  } catch {
    return failed("key_server_unavailable"); // network error or timeout
  }
}
