/**
 * @edge-inference/sdk: a typed client of the edge-inference API. Its types are generated from the
 * service's OpenAPI document (`schema.ts`, by openapi-typescript); requests go through
 * openapi-fetch, so every path, body, query and answer is checked by TypeScript:
 *
 * ```ts
 * import { asapTokenProvider, createEdgeInferenceClient } from "@edge-inference/sdk";
 * const client = createEdgeInferenceClient({
 *   baseUrl: "http://localhost:8787",
 *   token: asapTokenProvider({ issuer: "my-service", kid: "my-service/key-1", privateKeyPem, audience: "edge-inference" }),
 * });
 * const { data, error } = await client.POST("/api/v1/predict", { body: { text: "hello" } });
 * if (data?.kind === "text") console.log(data.predictions[0]);
 * ```
 *
 * The token provider is called once per request (ASAP tokens are single-use: the service refuses
 * a replayed `jti`).
 */
import { importPKCS8, type JWTPayload, SignJWT } from "jose";
import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";
import type { components, operations, paths } from "./schema";

export type { components, operations, paths };

/** Named answer and request shapes of the API. */
export type Schemas = components["schemas"];
/** `POST /api/v1/predict`'s answer: narrow on `kind` (`text`, `batch`, `image`). */
export type PredictAnswer = Schemas["PredictAnswer"];
export type PredictTextAnswer = Schemas["PredictTextAnswer"];
export type PredictBatchAnswer = Schemas["PredictBatchAnswer"];
export type PredictImageAnswer = Schemas["PredictImageAnswer"];
/** What a signed webhook POSTs (docs/webhooks.md): a finished prediction or job, as `GET` shows it. */
export type PredictionWebhook = Schemas["Prediction"];
export type JobWebhook = Schemas["Job"];
/** An RFC 9457 problem (every error outside `/v2`). */
export type Problem = Schemas["Problem"];

/** A bearer token per request: a string (static, e.g. `ASAP_AUTH=off` in dev) or a function. */
export type TokenProvider = string | (() => string | Promise<string>);

/** ASAP signing algorithms the service accepts. */
export type AsapAlgorithm =
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512"
  | "ES256"
  | "ES384"
  | "ES512";

export interface AsapTokenOptions {
  /** `iss`: the issuer the service's policy names. */
  issuer: string;
  /** `kid`: `<issuer>/<key name>`, where the service finds the public key. */
  kid: string;
  /** The private key: a CryptoKey, or PKCS#8 PEM text. */
  privateKey: CryptoKey | string;
  /** `aud`: the service's audience (its `ASAP_AUDIENCE`; `edge-inference` by default). */
  audience?: string | string[];
  /** `sub` (default: the issuer). */
  subject?: string;
  /** Signing algorithm (default ES256). */
  alg?: AsapAlgorithm;
  /** Lifetime in seconds (default 60; the service accepts at most one hour). */
  expiresInSeconds?: number;
  /** Extra claims. */
  claims?: JWTPayload;
}

/**
 * A token provider that mints a fresh ASAP token (new `jti`, `iat` now) on every call, signed
 * with the issuer's private key (docs/auth.md).
 */
export function asapTokenProvider(options: AsapTokenOptions): () => Promise<string> {
  const alg = options.alg ?? "ES256";
  let key: Promise<CryptoKey> | undefined;
  const signingKey = () => {
    key ??=
      typeof options.privateKey === "string"
        ? (importPKCS8(options.privateKey, alg) as Promise<CryptoKey>)
        : Promise.resolve(options.privateKey);
    return key;
  };
  return async () => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ...options.claims })
      .setProtectedHeader({ alg, kid: options.kid })
      .setIssuer(options.issuer)
      .setSubject(options.subject ?? options.issuer)
      .setAudience(options.audience ?? "edge-inference")
      .setIssuedAt(now)
      .setExpirationTime(now + (options.expiresInSeconds ?? 60))
      .setJti(crypto.randomUUID())
      .sign(await signingKey());
  };
}

/** Middleware that sets `Authorization: Bearer <token>` on every request, asking `token` each time. */
export function bearerAuth(token: TokenProvider): Middleware {
  return {
    async onRequest({ request }) {
      const value = typeof token === "string" ? token : await token();
      request.headers.set("authorization", `Bearer ${value}`);
      return request;
    },
  };
}

export interface EdgeInferenceClientOptions extends ClientOptions {
  /** The service's origin, e.g. `https://inference.example.com` (paths start with `/api/v1`, `/v2`, …). */
  baseUrl: string;
  /** Bearer token per request (see `asapTokenProvider`); omit for open routes only. */
  token?: TokenProvider;
}

/** The typed client: `client.GET("/api/v1/models")`, `client.POST("/api/v1/predict", { body })`, … */
export type EdgeInferenceClient = Client<paths>;

/** Creates the typed client; with `token`, every request carries a fresh bearer token. */
export function createEdgeInferenceClient(options: EdgeInferenceClientOptions): EdgeInferenceClient {
  const { token, ...rest } = options;
  const client = createClient<paths>(rest);
  if (token !== undefined) client.use(bearerAuth(token));
  return client;
}
