import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { exportSPKI, generateKeyPair } from "jose";
import { type AsapAlgorithm, type MintOptions, mintToken, R2_KEY_PREFIX } from "../src/auth/asap";
import { r2Keys } from "../src/contracts/r2-keys";
import worker from "../src/index";

/** Issuer of the tokens `api()` signs by default; wrangler.toml's dev policy allows it everything. */
export const TEST_ISSUER = "edge-inference-tests";
/** The audience the Worker accepts under wrangler.toml's dev config. */
export const TEST_AUDIENCE = "edge-inference";

/** A signing key of a test issuer; its public key is published unless asked not to. */
export interface TestKey {
  issuer: string;
  kid: string;
  alg: AsapAlgorithm;
  privateKey: CryptoKey;
  publicPem: string;
}

/**
 * Generates a real keypair for `issuer` (kid `<issuer>/<random>`) and, when `publish`, stores the
 * public key in local R2 at `asap-keys/<kid>`, where the `r2` key source finds it.
 */
export async function createTestKey(
  issuer = TEST_ISSUER,
  alg: AsapAlgorithm = "ES256",
  publish = true,
): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const key = {
    issuer,
    kid: `${issuer}/${crypto.randomUUID()}`,
    alg,
    privateKey,
    publicPem: await exportSPKI(publicKey),
  };
  if (publish) await env.MODELS.put(`${R2_KEY_PREFIX}${key.kid}`, key.publicPem);
  return key;
}

let defaultKey: Promise<TestKey> | undefined;

/** A fresh signed token (new jti) of `key`, for the audience the Worker accepts. */
export function tokenOf(key: TestKey, overrides: Partial<MintOptions> = {}): Promise<string> {
  return mintToken({
    issuer: key.issuer,
    kid: key.kid,
    alg: key.alg,
    privateKey: key.privateKey,
    audience: TEST_AUDIENCE,
    ...overrides,
  });
}

/** A fresh signed token (new jti) from this test file's default key, created on first use. */
export async function testToken(overrides: Partial<MintOptions> = {}): Promise<string> {
  defaultKey ??= createTestKey();
  return tokenOf(await defaultKey, overrides);
}

const issuerKeys = new Map<string, Promise<TestKey>>();

/** A fresh signed token of `issuer` (its key is created and published on first use in this file). */
export async function issuerToken(issuer: string): Promise<string> {
  const key = issuerKeys.get(issuer) ?? createTestKey(issuer);
  issuerKeys.set(issuer, key);
  return tokenOf(await key);
}

/** Per-call options of `api()` and `postJson()`. */
export interface CallOptions {
  /** Send a fresh token from `testToken()` unless the request has an Authorization header (default true). */
  auth?: boolean;
  /** Vars or bindings over the test env: the Worker sees a new env object, so its config is parsed afresh. */
  vars?: Record<string, unknown>;
  /** A whole env instead of the test env (e.g. one with a failing binding); `vars` still apply over it. */
  env?: Env;
  /** With `vars` or `env`: wait for the request's `waitUntil` work (statistics, log) before returning (default true). */
  wait?: boolean;
}

/**
 * Calls the Worker's own fetch handler (real router, real bindings), authenticated by default.
 * `path` is a path on `http://edge.test` or an absolute URL. With `vars` or `env` the Worker runs
 * with that env (a fresh config) and, unless `wait: false`, its background work is awaited.
 */
export async function api(
  path: string,
  init: RequestInit = {},
  { auth = true, vars, env: baseEnv, wait = true }: CallOptions = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (auth && !headers.has("authorization")) headers.set("authorization", `Bearer ${await testToken()}`);
  const request = new Request(path.startsWith("http") ? path : `http://edge.test${path}`, {
    ...init,
    headers,
  });
  if (vars === undefined && baseEnv === undefined) return exports.default.fetch(request);
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    request as Request<unknown, IncomingRequestCfProperties>,
    { ...(baseEnv ?? env), ...vars } as Env,
    ctx,
  );
  if (wait) await waitOnExecutionContext(ctx);
  return res;
}

/** POSTs `body` as JSON (a string is sent as-is). */
export function postJson(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  options: CallOptions = {},
): Promise<Response> {
  return api(
    path,
    {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    },
    options,
  );
}

/** Reads a repository file through the test-only FIXTURES service (see vitest.config.ts). */
export async function fixtureBytes(rel: string): Promise<Uint8Array> {
  const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(`http://fixtures/${rel}`);
  if (!res.ok) throw new Error(`fixture ${rel}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Seeds local R2 with a shipped model from models/<id>/ as version `version` and activates it. */
export async function seedShippedModel(id: string): Promise<{ version: string }> {
  const manifestBytes = await fixtureBytes(`models/${id}/manifest.json`);
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as { version: string };
  await env.MODELS.put(r2Keys.model(id, manifest.version), await fixtureBytes(`models/${id}/model.onnx`));
  await env.MODELS.put(r2Keys.manifest(id, manifest.version), manifestBytes);
  // The reference profile (docs/drift.md), when the model has one.
  const profile = await fixtureBytes(`models/${id}/profile.json`).catch(() => undefined);
  if (profile) await env.MODELS.put(r2Keys.profile(id, manifest.version), profile);
  await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: manifest.version }));
  return { version: manifest.version };
}

/** Parses a problem+json response, asserting its content type. */
export async function problem(
  res: Response,
): Promise<{ code: string; status: number; detail: string } & Record<string, unknown>> {
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("application/problem+json"))
    throw new Error(`expected problem+json, got ${type}: ${await res.text()}`);
  return (await res.json()) as { code: string; status: number; detail: string };
}
