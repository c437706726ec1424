import type { IRequest } from "itty-router";
import type { Config } from "./config";
import type { ModelRef } from "./contracts/manifest";
import type { RateLimitState } from "./contracts/rate";
import type { Logger } from "./log";

/** Per-request state set by the router's first stage and read by handlers and the log line. */
export interface RequestState {
  requestId: string;
  startedAt: number;
  /** Name of the API (route) that matched, e.g. `predict`; `unknown` before matching. */
  api: string;
  config: Config;
  logger: Logger;
  /** Model and version that served the request, when one did. */
  model?: ModelRef;
  /**
   * The model version that scored this request's inputs (prediction paths only, unlike `model`,
   * which registry routes set too): the meter counts the request per version as well.
   */
  served?: ModelRef;
  /** Client-supplied `request_id` from the body, when given. */
  clientRequestId?: string | number;
  /** The authenticated caller (ASAP issuer and subject), set by the auth stage. */
  caller?: { issuer: string; subject: string };
  /** The authenticated token's id and how long it stays spent, for replay protection. */
  token?: { jti: string; expiresAt: number };
  /** Errors are rendered as an HTML page (routes a person opens in a browser). */
  html?: boolean;
  /** The admission stage's policy and decision, rendered as `RateLimit` headers at the end. */
  rateLimit?: RateLimitState;
}

/** An itty-router request carrying `RequestState`. */
export type AppRequest = IRequest & { state: RequestState };

/** Handler signature of every route. */
export type Handler = (request: AppRequest, env: Env, ctx: ExecutionContext) => Promise<Response> | Response;
