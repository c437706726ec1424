/**
 * Generates test/fixtures/asap-vectors.json: language-neutral ASAP verification vectors (token,
 * public keys by kid, clock, expected verdict and reason), signed with keys generated afresh on
 * each run. The claims are fixed, so a rerun changes only keys and signatures. The keys are
 * test-only: their private halves are never written anywhere. Format: docs/auth.md.
 *
 *   npm run gen:asap-vectors
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { base64url, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from "jose";
import { ASAP_ALGORITHMS, type AsapAlgorithm, MAX_LIFETIME_S, MAX_TOKEN_BYTES } from "../src/auth/asap";

const OUT = path.join(path.dirname(new URL(import.meta.url).pathname), "../test/fixtures/asap-vectors.json");

/** The verifier's clock for every vector, seconds since the epoch (2027-01-15T08:00:00Z). */
const NOW = 1_800_000_000;
const AUDIENCE = "edge-inference";
const LEEWAY_S = 30;
const ISSUER = "asap-vectors";
const OTHER_ISSUER = "asap-vectors-other";

type KeyName = "es256" | "es384" | "es512" | "rsa" | "stranger";

interface GeneratedKey {
  /** PKCS#8 PEM, kept in memory only: imported once per algorithm that signs with it. */
  pkcs8: string;
  spki: string;
  jwk: Record<string, unknown>;
}

/** Generates one keypair: EC on the curve of `alg`, or RSA 2048 (usable for RS* and PS*). */
async function generate(alg: AsapAlgorithm): Promise<GeneratedKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = (await exportJWK(publicKey)) as Record<string, unknown>;
  return { pkcs8: await exportPKCS8(privateKey), spki: await exportSPKI(publicKey), jwk };
}

const generated: Record<KeyName, GeneratedKey> = {
  es256: await generate("ES256"),
  es384: await generate("ES384"),
  es512: await generate("ES512"),
  rsa: await generate("RS256"),
  // Same curve as es256 but published nowhere: signs the "wrong key" vectors.
  stranger: await generate("ES256"),
};

/** The key map of the file: kid → the public key a verifier finds for it. */
const KIDS: Record<string, KeyName | "not-a-key"> = {
  [`${ISSUER}/es256`]: "es256",
  [`${ISSUER}/es384`]: "es384",
  [`${ISSUER}/es512`]: "es512",
  [`${ISSUER}/rsa`]: "rsa",
  [`${ISSUER}/team.a/key_1+x-2`]: "es256",
  [`${ISSUER}/not-a-key`]: "not-a-key",
  [`${OTHER_ISSUER}/es256`]: "es256",
};

const DEFAULT_ALG: Record<KeyName, AsapAlgorithm> = {
  es256: "ES256",
  es384: "ES384",
  es512: "ES512",
  rsa: "RS256",
  stranger: "ES256",
};

const HASH: Record<string, string> = { "256": "SHA-256", "384": "SHA-384", "512": "SHA-512" };

/** WebCrypto parameters of a JWS algorithm (RFC 7518 §3). */
function signParams(alg: AsapAlgorithm): AlgorithmIdentifier | RsaPssParams | EcdsaParams {
  const bits = alg.slice(2);
  if (alg.startsWith("ES")) return { name: "ECDSA", hash: HASH[bits] as string };
  if (alg.startsWith("PS")) return { name: "RSA-PSS", saltLength: Number(bits) / 8 };
  return { name: "RSASSA-PKCS1-v1_5" };
}

const imported = new Map<string, Promise<CryptoKey>>();
function privateKey(name: KeyName, alg: AsapAlgorithm): Promise<CryptoKey> {
  const id = `${name} ${alg}`;
  let key = imported.get(id);
  if (!key) {
    key = importPKCS8(generated[name].pkcs8, alg);
    imported.set(id, key);
  }
  return key;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const enc = (value: unknown) => base64url.encode(typeof value === "string" ? value : JSON.stringify(value));

/**
 * The JSON object `segment` encodes, re-encoded with a filler member `_` long enough that the
 * encoding has `remainder` characters beyond a multiple of 4 (so it can be padded or carry
 * unused bits).
 */
function withRemainder(segment: string, remainder: 2 | 3): string {
  const value = JSON.parse(new TextDecoder().decode(base64url.decode(segment))) as Record<string, unknown>;
  for (let n = 0; ; n++) {
    const out = enc(n === 0 ? value : { ...value, _: "x".repeat(n - 1) });
    if (out.length % 4 === remainder) return out;
  }
}

/** `segment` with `=` padding to a multiple of 4 characters (fails if it needs none). */
function padded(segment: string): string {
  const pad = (4 - (segment.length % 4)) % 4;
  if (pad === 0) throw new Error(`segment of ${segment.length} characters needs no padding`);
  return segment + "=".repeat(pad);
}

/** `segment` with one unused bit of its last character set: the same bytes, spelled differently. */
function trailingBitSet(segment: string): string {
  if (segment.length % 4 < 2) throw new Error(`segment of ${segment.length} characters has no unused bits`);
  const last = ALPHABET.indexOf(segment.slice(-1));
  return segment.slice(0, -1) + ALPHABET[last | 1];
}

type Segments = { header: string; payload: string };

interface Spec {
  id: string;
  description: string;
  /** `accept`, or the reason the verifier must give. */
  expect: "accept" | string;
  /** Signing key and algorithm (default es256 / ES256); the header's alg and kid follow them. */
  signer?: KeyName;
  alg?: AsapAlgorithm;
  /** Header members (undefined removes one), over `{ alg, kid, typ: "JWT" }`. */
  header?: Record<string, unknown>;
  /** Claims (undefined removes one), over the valid defaults. */
  claims?: Record<string, unknown>;
  /** Rewrites the encoded segments before they are signed. */
  segments?: (s: Segments) => Segments;
  /** Rewrites the finished token (after signing: invalidates or re-spells it). */
  token?: (token: string, s: Segments & { signature: string }) => string;
  /** Signs with something else than the spec's key (e.g. HMAC); returns the raw signature. */
  rawSign?: (input: Uint8Array<ArrayBuffer>) => Promise<ArrayBuffer>;
}

/** Removes the members whose value is `undefined`. */
function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}

async function build(spec: Spec): Promise<Record<string, unknown>> {
  const signer = spec.signer ?? "es256";
  const alg = spec.alg ?? DEFAULT_ALG[signer];
  // The stranger signs under es256's kid: its own key is published nowhere.
  const kid = `${ISSUER}/${signer === "stranger" ? "es256" : signer}`;
  const header = defined({ alg, kid, typ: "JWT", ...spec.header });
  const claims = defined({
    iss: ISSUER,
    aud: AUDIENCE,
    iat: NOW,
    exp: NOW + 60,
    jti: `vector-${spec.id}`,
    ...spec.claims,
  });
  let segments: Segments = { header: enc(header), payload: enc(claims) };
  if (spec.segments) segments = spec.segments(segments);
  const input = new TextEncoder().encode(`${segments.header}.${segments.payload}`);
  const raw = spec.rawSign
    ? await spec.rawSign(input)
    : await crypto.subtle.sign(signParams(alg), await privateKey(signer, alg), input);
  const signature = base64url.encode(new Uint8Array(raw));
  let token = `${segments.header}.${segments.payload}.${signature}`;
  if (spec.token) token = spec.token(token, { ...segments, signature });
  const vector: Record<string, unknown> = { id: spec.id, description: spec.description, now: NOW, token };
  if (spec.expect === "accept") {
    vector.verdict = "accept";
    vector.claims = {
      issuer: claims.iss,
      subject: claims.sub ?? claims.iss,
      jti: claims.jti,
      exp: claims.exp,
    };
  } else {
    vector.verdict = "refuse";
    vector.reason = spec.expect;
  }
  return vector;
}

const hmac = (secret: string, hash: string) => async (input: Uint8Array<ArrayBuffer>) => {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash },
    false,
    ["sign"],
  );
  return crypto.subtle.sign("HMAC", key, input);
};
const empty = async () => new ArrayBuffer(0);
/** Replaces the payload of a signed token (the signature no longer matches). */
const withPayload = (claims: Record<string, unknown>) => (_: string, s: Segments & { signature: string }) =>
  `${s.header}.${enc({ iss: ISSUER, aud: AUDIENCE, iat: NOW, exp: NOW + 60, jti: "vector-tampered", ...claims })}.${s.signature}`;

const SPECS: Spec[] = [
  // Accepted: each algorithm, the optional claims, and the edges that are still inside.
  ...(["ES256", "ES384", "ES512"] as const).map(
    (alg): Spec => ({
      id: `accept-${alg.toLowerCase()}`,
      description: `valid ${alg} token`,
      expect: "accept",
      signer: alg.toLowerCase() as KeyName,
      alg,
    }),
  ),
  ...(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] as const).map(
    (alg): Spec => ({
      id: `accept-${alg.toLowerCase()}`,
      description: `valid ${alg} token (one RSA 2048 key serves every RS* and PS* algorithm)`,
      expect: "accept",
      signer: "rsa",
      alg,
    }),
  ),
  {
    id: "accept-aud-array",
    description: "aud is an array that contains our audience",
    expect: "accept",
    claims: { aud: ["someone-else", AUDIENCE] },
  },
  {
    id: "accept-sub-differs-from-iss",
    description: "sub ≠ iss is allowed: the issuer calls on behalf of a subject",
    expect: "accept",
    claims: { sub: "user-42" },
  },
  {
    id: "accept-lifetime-exactly-1h",
    description: `exp - iat = ${MAX_LIFETIME_S} s exactly`,
    expect: "accept",
    claims: { exp: NOW + MAX_LIFETIME_S },
  },
  {
    id: "accept-exp-inside-leeway",
    description: `exp ${LEEWAY_S - 1} s ago: expired, but within the ${LEEWAY_S} s leeway`,
    expect: "accept",
    claims: { iat: NOW - 100, exp: NOW - (LEEWAY_S - 1) },
  },
  {
    id: "accept-nbf-at-leeway",
    description: `nbf ${LEEWAY_S} s ahead: not yet valid, but within the leeway`,
    expect: "accept",
    claims: { nbf: NOW + LEEWAY_S },
  },
  { id: "accept-nbf-past", description: "nbf in the past", expect: "accept", claims: { nbf: NOW - 10 } },
  {
    id: "accept-iat-at-leeway",
    description: `iat ${LEEWAY_S} s in the future: within the leeway`,
    expect: "accept",
    claims: { iat: NOW + LEEWAY_S, exp: NOW + LEEWAY_S + 60 },
  },
  {
    id: "accept-kid-with-path",
    description: "kid with several segments and the characters . _ + -",
    expect: "accept",
    header: { kid: `${ISSUER}/team.a/key_1+x-2` },
  },
  {
    id: "accept-no-typ",
    description: "header without typ (optional in a JWS)",
    expect: "accept",
    header: { typ: undefined },
  },
  {
    id: "accept-extra-claims",
    description: "unregistered claims are ignored",
    expect: "accept",
    claims: { scope: "predict", tenant: { id: 7 } },
  },

  // Size and shape
  {
    id: "token-too-large",
    description: `token longer than ${MAX_TOKEN_BYTES} bytes`,
    expect: "token_too_large",
    claims: { pad: "x".repeat(MAX_TOKEN_BYTES) },
  },
  { id: "not-a-jwt", description: "a token with no dots", expect: "malformed_token", token: () => "abc" },
  {
    id: "two-segments",
    description: "header and payload without a signature segment",
    expect: "malformed_token",
    token: (_, s) => `${s.header}.${s.payload}`,
  },
  {
    id: "four-segments",
    description: "a fourth segment",
    expect: "malformed_token",
    token: (t) => `${t}.AAAA`,
  },
  {
    id: "header-not-json",
    description: "header segment decodes to non-JSON",
    expect: "malformed_token",
    segments: (s) => ({ ...s, header: enc("{nope") }),
  },
  {
    id: "header-json-array",
    description: "header is a JSON array, not an object",
    expect: "malformed_token",
    segments: (s) => ({ ...s, header: enc(["ES256"]) }),
  },
  {
    id: "payload-not-json",
    description: "validly signed payload that is not JSON",
    expect: "malformed_token",
    segments: (s) => ({ ...s, payload: enc("not json") }),
  },
  {
    id: "payload-json-array",
    description: "validly signed payload that is a JSON array",
    expect: "malformed_token",
    segments: (s) => ({ ...s, payload: enc([1, 2]) }),
  },
  {
    id: "no-alg",
    description: "header without alg (a JWS requires one)",
    expect: "malformed_token",
    header: { alg: undefined },
  },

  // Encoding: every segment must be canonical unpadded base64url.
  {
    id: "signature-padded",
    description: "signature segment with '=' padding (same bytes, valid signature)",
    expect: "invalid_encoding",
    token: (_, s) => `${s.header}.${s.payload}.${padded(s.signature)}`,
  },
  {
    id: "header-padded",
    description: "header segment with '=' padding, signed as sent",
    expect: "invalid_encoding",
    segments: (s) => ({ ...s, header: padded(withRemainder(s.header, 2)) }),
  },
  {
    id: "payload-padded",
    description: "payload segment with '=' padding, signed as sent",
    expect: "invalid_encoding",
    segments: (s) => ({ ...s, payload: padded(withRemainder(s.payload, 3)) }),
  },
  {
    id: "signature-trailing-bits",
    description: "signature whose last character has a non-zero unused bit (decodes to the same bytes)",
    expect: "invalid_encoding",
    token: (_, s) => `${s.header}.${s.payload}.${trailingBitSet(s.signature)}`,
  },
  {
    id: "payload-trailing-bits",
    description: "payload whose last character has a non-zero unused bit, signed as sent",
    expect: "invalid_encoding",
    segments: (s) => ({ ...s, payload: trailingBitSet(withRemainder(s.payload, 2)) }),
  },
  {
    id: "signature-standard-alphabet",
    description: "signature in the standard base64 alphabet ('+' and '/')",
    expect: "invalid_encoding",
    token: (_, s) => `${s.header}.${s.payload}.${s.signature.replace(/^./, "+").replace(/.$/, "/")}`,
  },
  {
    id: "signature-with-space",
    description: "a space inside the signature segment (skipped by lenient decoders)",
    expect: "invalid_encoding",
    token: (_, s) => `${s.header}.${s.payload}.${s.signature.slice(0, 10)} ${s.signature.slice(10)}`,
  },
  {
    id: "payload-with-newline",
    description: "a line break inside the payload segment, signed as sent",
    expect: "invalid_encoding",
    segments: (s) => ({ ...s, payload: `${s.payload.slice(0, 8)}\n${s.payload.slice(8)}` }),
  },
  {
    id: "segment-length-1-mod-4",
    description: "signature of 4n + 1 characters (no byte string encodes to that)",
    expect: "invalid_encoding",
    token: (_, s) =>
      `${s.header}.${s.payload}.${s.signature}${"A".repeat((5 - (s.signature.length % 4)) % 4 || 4)}`,
  },

  // Header parameters: a plain JWS only.
  {
    id: "crit-b64-false",
    description: 'RFC 7797 unencoded payload: "crit":["b64"], "b64":false',
    expect: "forbidden_header",
    header: { crit: ["b64"], b64: false },
  },
  {
    id: "b64-true-without-crit",
    description: '"b64":true without crit',
    expect: "forbidden_header",
    header: { b64: true },
  },
  {
    id: "crit-unknown",
    description: "a critical header parameter the verifier does not know",
    expect: "forbidden_header",
    header: { crit: ["x-must"], "x-must": 1 },
  },
  {
    id: "crit-empty",
    description: "an empty crit list",
    expect: "forbidden_header",
    header: { crit: [] },
  },

  // Algorithms
  {
    id: "alg-none",
    description: "alg none with an empty signature",
    expect: "alg_not_allowed",
    header: { alg: "none" },
    rawSign: empty,
  },
  {
    id: "alg-hs256-public-key-as-secret",
    description: "HS256 keyed with the issuer's public key PEM (key confusion)",
    expect: "alg_not_allowed",
    header: { alg: "HS256" },
    rawSign: hmac(generated.es256.spki, "SHA-256"),
  },
  {
    id: "alg-hs512",
    description: "HS512",
    expect: "alg_not_allowed",
    header: { alg: "HS512" },
    rawSign: hmac("k".repeat(64), "SHA-512"),
  },
  {
    id: "alg-eddsa",
    description: "EdDSA (not among the accepted algorithms)",
    expect: "alg_not_allowed",
    header: { alg: "EdDSA" },
  },
  {
    id: "alg-rs256-on-ec-key",
    description: "RS256 header naming an EC key",
    expect: "key_alg_mismatch",
    header: { alg: "RS256" },
  },
  {
    id: "alg-es384-on-p256-key",
    description: "ES384 header naming a P-256 key",
    expect: "key_alg_mismatch",
    header: { alg: "ES384" },
  },
  {
    id: "alg-es256-on-rsa-key",
    description: "ES256 header naming an RSA key",
    expect: "key_alg_mismatch",
    header: { kid: `${ISSUER}/rsa` },
  },

  // kid
  { id: "kid-missing", description: "no kid", expect: "invalid_kid", header: { kid: undefined } },
  { id: "kid-number", description: "kid is a number", expect: "invalid_kid", header: { kid: 42 } },
  {
    id: "kid-traversal",
    description: "kid with a '..' segment",
    expect: "invalid_kid",
    header: { kid: `${ISSUER}/../${OTHER_ISSUER}/es256` },
  },
  {
    id: "kid-dot-segment",
    description: "kid with a '.' segment",
    expect: "invalid_kid",
    header: { kid: `${ISSUER}/./es256` },
  },
  {
    id: "kid-leading-slash",
    description: "kid starting with '/'",
    expect: "invalid_kid",
    header: { kid: `/${ISSUER}/es256` },
  },
  {
    id: "kid-empty-segment",
    description: "kid with an empty segment",
    expect: "invalid_kid",
    header: { kid: `${ISSUER}//es256` },
  },
  {
    id: "kid-percent-query",
    description: "kid with '%' and '?'",
    expect: "invalid_kid",
    header: { kid: `${ISSUER}/es256%2e?x=1` },
  },
  {
    id: "kid-space",
    description: "kid with a space",
    expect: "invalid_kid",
    header: { kid: `${ISSUER}/es 256` },
  },
  {
    id: "kid-backslash",
    description: "kid with a backslash",
    expect: "invalid_kid",
    header: { kid: `${ISSUER}\\es256` },
  },
  {
    id: "kid-too-long",
    description: "kid longer than 512 characters",
    expect: "invalid_kid",
    header: { kid: `${ISSUER}/${"k".repeat(512)}` },
  },
  {
    id: "kid-other-issuer",
    description: "kid of another issuer's published key",
    expect: "kid_issuer_mismatch",
    header: { kid: `${OTHER_ISSUER}/es256` },
  },
  {
    id: "kid-equals-iss",
    description: "kid equal to iss, without '/'",
    expect: "kid_issuer_mismatch",
    header: { kid: ISSUER },
  },
  {
    id: "iss-prefix-of-kid-issuer",
    description: "iss is a prefix of the kid's issuer (kid must start with iss + '/')",
    expect: "kid_issuer_mismatch",
    claims: { iss: ISSUER.slice(0, -1) },
  },
  {
    id: "kid-unknown",
    description: "kid with no key published",
    expect: "unknown_key",
    header: { kid: `${ISSUER}/nope` },
  },
  {
    id: "kid-key-not-pem",
    description: "the key published for the kid is not a public key",
    expect: "key_invalid",
    header: { kid: `${ISSUER}/not-a-key` },
  },

  // Signature
  {
    id: "tampered-payload",
    description: "payload replaced after signing (sub added)",
    expect: "bad_signature",
    token: withPayload({ sub: "admin" }),
  },
  {
    id: "tampered-signature",
    description: "one signature character changed (away from the unused bits)",
    expect: "bad_signature",
    token: (_, s) => {
      const i = 10;
      const c = s.signature[i] === "A" ? "B" : "A";
      return `${s.header}.${s.payload}.${s.signature.slice(0, i)}${c}${s.signature.slice(i + 1)}`;
    },
  },
  {
    id: "wrong-key",
    description: "signed by another P-256 key under the issuer's kid",
    expect: "bad_signature",
    signer: "stranger",
  },
  {
    id: "signature-empty",
    description: "ES256 with an empty signature",
    expect: "bad_signature",
    rawSign: empty,
  },

  // Claims: presence and type
  ...["iss", "aud", "iat", "exp", "jti"].map(
    (claim): Spec => ({
      id: `missing-${claim}`,
      description: `required claim ${claim} missing`,
      expect: "missing_claim",
      claims: { [claim]: undefined },
    }),
  ),
  { id: "iss-number", description: "iss is a number", expect: "invalid_claim", claims: { iss: 7 } },
  { id: "iss-empty", description: "iss is empty", expect: "invalid_claim", claims: { iss: "" } },
  { id: "jti-empty", description: "jti is empty", expect: "invalid_claim", claims: { jti: "" } },
  {
    id: "jti-too-long",
    description: "jti longer than 256 characters",
    expect: "invalid_claim",
    claims: { jti: "j".repeat(257) },
  },
  { id: "sub-object", description: "sub is an object", expect: "invalid_claim", claims: { sub: { id: 1 } } },
  { id: "sub-empty", description: "sub is empty", expect: "invalid_claim", claims: { sub: "" } },
  {
    id: "exp-string",
    description: "exp is a numeric string",
    expect: "invalid_claim",
    claims: { exp: String(NOW + 60) },
  },
  { id: "nbf-string", description: "nbf is a string", expect: "invalid_claim", claims: { nbf: "soon" } },
  { id: "iat-equals-exp", description: "iat = exp", expect: "invalid_claim", claims: { exp: NOW } },

  // Audience
  {
    id: "aud-other",
    description: "aud names another service",
    expect: "wrong_audience",
    claims: { aud: "someone-else" },
  },
  {
    id: "aud-array-without-ours",
    description: "aud array without our audience",
    expect: "wrong_audience",
    claims: { aud: ["a", "b"] },
  },
  { id: "aud-empty-array", description: "aud is []", expect: "wrong_audience", claims: { aud: [] } },
  {
    id: "aud-case",
    description: "aud differs from ours in case only",
    expect: "wrong_audience",
    claims: { aud: AUDIENCE.toUpperCase() },
  },

  // Time
  {
    id: "expired",
    description: "exp 4 minutes ago",
    expect: "token_expired",
    claims: { iat: NOW - 300, exp: NOW - 240 },
  },
  {
    id: "exp-at-leeway",
    description: `exp exactly ${LEEWAY_S} s ago: the leeway is used up`,
    expect: "token_expired",
    claims: { iat: NOW - 100, exp: NOW - LEEWAY_S },
  },
  {
    id: "nbf-future",
    description: "nbf 2 minutes ahead",
    expect: "token_not_yet_valid",
    claims: { nbf: NOW + 120 },
  },
  {
    id: "nbf-beyond-leeway",
    description: `nbf ${LEEWAY_S + 1} s ahead`,
    expect: "token_not_yet_valid",
    claims: { nbf: NOW + LEEWAY_S + 1 },
  },
  {
    id: "iat-future",
    description: "iat 2 minutes ahead",
    expect: "iat_in_future",
    claims: { iat: NOW + 120, exp: NOW + 180 },
  },
  {
    id: "iat-beyond-leeway",
    description: `iat ${LEEWAY_S + 1} s ahead`,
    expect: "iat_in_future",
    claims: { iat: NOW + LEEWAY_S + 1, exp: NOW + LEEWAY_S + 61 },
  },
  {
    id: "lifetime-1h-plus-1s",
    description: `exp - iat = ${MAX_LIFETIME_S + 1} s`,
    expect: "lifetime_too_long",
    claims: { exp: NOW + MAX_LIFETIME_S + 1 },
  },
  {
    id: "lifetime-a-day",
    description: "a token valid for a day",
    expect: "lifetime_too_long",
    claims: { exp: NOW + 86_400 },
  },
];

const keys: Record<string, Record<string, unknown>> = {};
for (const [kid, name] of Object.entries(KIDS)) {
  keys[kid] =
    name === "not-a-key"
      ? { pem: "not a key" }
      : { jwk: { ...generated[name].jwk, kid }, pem: generated[name].spki };
}

const ids = new Set<string>();
const vectors: Record<string, unknown>[] = [];
for (const spec of SPECS) {
  if (ids.has(spec.id)) throw new Error(`duplicate vector id ${spec.id}`);
  ids.add(spec.id);
  vectors.push(await build(spec));
}

const file = {
  description:
    "ASAP token verification vectors: feed each token to a verifier configured as `verifier`, whose clock reads `now` and which resolves kid through `keys`; it must accept (with `claims`) or refuse with `reason`. Test-only keys. Format: docs/auth.md.",
  generated_by: "scripts/gen-asap-vectors.ts (npm run gen:asap-vectors)",
  verifier: {
    audiences: [AUDIENCE],
    leeway_s: LEEWAY_S,
    max_lifetime_s: MAX_LIFETIME_S,
    max_token_bytes: MAX_TOKEN_BYTES,
    algorithms: ASAP_ALGORITHMS,
  },
  keys,
  vectors,
};
writeFileSync(OUT, `${JSON.stringify(file, null, 2)}\n`);
// In the repository's JSON style, so `npm run lint` accepts the file as generated.
execFileSync("npx", ["biome", "format", "--write", OUT], { stdio: "ignore" });
console.log(`${vectors.length} vectors → ${path.relative(process.cwd(), OUT)}`);
