/**
 * The CLI's HTTP client: API calls go through the typed client of the SDK (`sdk/`,
 * `@edge-inference/sdk`: openapi-fetch over the service's OpenAPI document), whose token provider
 * mints a fresh ASAP token per request (replay protection refuses a reused `jti`); a failed request
 * becomes a `CliError` built from the problem+json body, with the exit code of its kind (see `EXIT`).
 * The SDK's requests are sent by `send` (node:http), not by Node's global `fetch` (see ./http.ts).
 */
import type { Command } from "commander";
import { createEdgeInferenceClient, type EdgeInferenceClient } from "../sdk/src/index";
import { mintToken } from "../src/auth/asap";
import { type Connection, type ConnectionFlags, resolveConnection } from "./config";
import { type HttpResponse, send } from "./http";
import { checkKid, loadSigningKey, type SigningKey } from "./keys";

/** Exit codes (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** Anything else: a local problem (missing key file, unreadable input, …). */
  error: 1,
  /** Bad command line (unknown command or option, missing argument). */
  usage: 2,
  /** The service could not be reached (connection refused, DNS, timeout). */
  unreachable: 3,
  /** 401 or 403: the token was refused or the caller is not allowed. */
  auth: 4,
  /** 404: no such route, model, job or prediction. */
  notFound: 5,
  /** Any other 4xx: the request was refused (validation, conflict, too large, rate limited). */
  rejected: 6,
  /** 5xx: the service failed or is unavailable. */
  server: 7,
  /** The work ran and failed (a training job or an async prediction ended `failed`). */
  failed: 8,
} as const;

/** An error the CLI prints as one message and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly problem?: Problem,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The members of a problem+json body the CLI prints. */
export interface Problem {
  status?: number;
  code?: string;
  title?: string;
  detail?: string;
  request_id?: string;
  errors?: { row?: number; path?: string; message?: string }[];
  [key: string]: unknown;
}

/** The exit code for an HTTP error status. */
export function exitCodeOf(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status >= 500) return EXIT.server;
  return EXIT.rejected;
}

/** Options of one request. */
export interface RequestOptions {
  /** Sent as a JSON body. */
  json?: unknown;
  /** A string or bytes; a `FormData` is sent as multipart/form-data. */
  body?: string | Uint8Array | FormData;
  headers?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  /** Sign the request (default true). */
  auth?: boolean;
}

/** A successful response. */
export interface ApiResponse<T> {
  status: number;
  headers: HttpResponse["headers"];
  body: T;
}

/**
 * The slice of a fetch `Request` that openapi-fetch builds and the CLI's `fetch` reads. Passed to
 * openapi-fetch as its `Request` class so that no request constructs Node's global `Request`
 * (undici); its headers are openapi-fetch's (cli/web-globals.ts in the bundle).
 */
class SdkRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Pick<Headers, "forEach" | "set" | "get">;
  readonly body: string | Uint8Array | undefined;

  constructor(url: string, init: { method?: string; headers: SdkRequest["headers"]; body?: unknown }) {
    this.url = url;
    this.method = init.method ?? "GET";
    this.headers = init.headers;
    if (init.body !== undefined && typeof init.body !== "string" && !(init.body instanceof Uint8Array)) {
      throw new Error("the CLI's SDK transport sends JSON or bytes only");
    }
    this.body = init.body;
  }
}

/** A successful SDK call's data, status and headers (`data` is typed by the SDK's schema). */
type SdkResult<D> = Promise<{ data?: D; error?: unknown; response: Response }>;

/** The service at a resolved connection, signing each request with the connection's key. */
export class Client {
  /**
   * The SDK's typed client of this connection: every request carries a fresh token, is sent by
   * `send` (node:http) and, when the service cannot be reached, fails with `EXIT.unreachable`.
   * `call` turns its answers into the CLI's results and errors.
   */
  readonly api: EdgeInferenceClient;
  /** The SDK's last request and its answer (for the message when that answer is not JSON). */
  private last?: { method: string; url: URL; response: HttpResponse };

  private constructor(
    readonly connection: Connection,
    private readonly key: SigningKey,
  ) {
    this.api = createEdgeInferenceClient({
      baseUrl: connection.url,
      token: () => this.token(),
      Request: SdkRequest as unknown as typeof Request,
      fetch: async (input) => {
        const request = input as unknown as SdkRequest;
        const headers: Record<string, string> = {};
        request.headers.forEach((value, name) => {
          headers[name] = value;
        });
        const url = new URL(request.url);
        const response = await this.send(url, {
          method: request.method,
          headers,
          ...(request.body !== undefined && { body: request.body }),
        });
        this.last = { method: request.method, url, response };
        return response as unknown as Response;
      },
    });
  }

  /**
   * Resolves the connection (flags → env → .dev/cli.json → defaults) and loads its key; `alg`
   * overrides the algorithm inferred from the key (e.g. PS256 or RS384 with an RSA key).
   */
  static async create(flags: ConnectionFlags, options: { alg?: string } = {}): Promise<Client> {
    const connection = await resolveConnection(flags);
    const key = await loadSigningKey(connection.key, {
      kid: connection.kid,
      alg: options.alg,
      issuer: connection.issuer,
    });
    checkKid(connection.issuer, key.kid);
    return new Client(connection, key);
  }

  /** The signing key's id. */
  get kid(): string {
    return this.key.kid;
  }

  /** A fresh token for the connection's audience (`audience` overrides it). */
  token(ttlS = 60, extra: { audience?: string | string[]; subject?: string } = {}): Promise<string> {
    return mintToken({
      issuer: this.connection.issuer,
      kid: this.key.kid,
      alg: this.key.alg,
      privateKey: this.key.privateKey,
      audience: extra.audience ?? this.connection.aud,
      ttlS,
      subject: extra.subject,
    });
  }

  /** One request with a fresh token; throws `CliError` when the service cannot be reached. */
  async fetch(method: string, route: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const url = new URL(`${this.connection.url}${route}`);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
    if (options.auth !== false) headers.authorization = `Bearer ${await this.token()}`;
    let body: string | Uint8Array | undefined;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (
      options.body !== undefined &&
      typeof options.body !== "string" &&
      !(options.body instanceof Uint8Array)
    ) {
      // A FormData (not named here: the global loads undici). Only uploads pay for its encoder.
      const encoded = new Response(options.body);
      headers["content-type"] = encoded.headers.get("content-type") ?? "multipart/form-data";
      body = new Uint8Array(await encoded.arrayBuffer());
    } else body = options.body;
    return this.send(url, { method, headers, ...(body !== undefined && { body }) });
  }

  /** Sends one request; throws `CliError` (`EXIT.unreachable`) when the service cannot be reached. */
  private async send(url: URL, init: Parameters<typeof send>[1]): Promise<HttpResponse> {
    try {
      return await send(url, init);
    } catch (error) {
      const code = (error as { code?: string }).code ?? (error as Error).message;
      throw new CliError(
        `cannot reach ${this.connection.url} (${code}; URL from ${this.connection.urlFrom}). ` +
          "Is the service running? `npm start` serves it locally and writes the CLI config.",
        EXIT.unreachable,
      );
    }
  }

  /**
   * The result of an SDK call (`client.call(client.api.GET("/api/v1/models"))`); a non-2xx answer
   * throws `CliError` with the problem's code and detail, an answer that is not JSON `EXIT.server`.
   */
  async call<D>(pending: SdkResult<D>, firstRow?: number): Promise<ApiResponse<D>> {
    let result: Awaited<SdkResult<D>>;
    try {
      result = await pending;
    } catch (error) {
      if (!(error instanceof SyntaxError) || !this.last) throw error;
      const { method, url, response } = this.last;
      throw new CliError(
        `${method} ${url.pathname}: the answer is not JSON (${response.status}): ${(await response.text()).slice(0, 200)}`,
        EXIT.server,
      );
    }
    const res = result.response as unknown as HttpResponse;
    if (!res.ok) throw await this.failure(res, firstRow);
    return { status: res.status, headers: res.headers, body: result.data as D };
  }

  /** A JSON request outside the SDK; a non-2xx answer throws `CliError` with the problem's code and detail. */
  async request<T>(method: string, route: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const res = await this.fetch(method, route, options);
    if (!res.ok) throw await this.failure(res);
    const text = await res.text();
    let body: T;
    try {
      body = (text === "" ? null : JSON.parse(text)) as T;
    } catch {
      throw new CliError(
        `${method} ${route}: the answer is not JSON (${res.status}): ${text.slice(0, 200)}`,
        EXIT.server,
      );
    }
    return { status: res.status, headers: res.headers, body };
  }

  /** A `CliError` describing a failed response. */
  async failure(res: HttpResponse, firstRow?: number): Promise<CliError> {
    const text = await res.text();
    let problem: Problem | undefined;
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value === "object" && value !== null) problem = value as Problem;
    } catch {
      // not problem+json: printed as text below
    }
    const exitCode = exitCodeOf(res.status);
    if (!problem) {
      return new CliError(`${res.status} ${res.statusText}: ${text.slice(0, 500)}`, exitCode);
    }
    const lines = [`${res.status} ${problem.code ?? problem.title ?? "error"}: ${problem.detail ?? text}`];
    for (const e of (problem.errors ?? []).slice(0, 5)) {
      const row =
        typeof e.row === "number" && e.row > 0
          ? firstRow === undefined
            ? `row ${e.row} `
            : `data row ${firstRow + e.row - 1} (request row ${e.row}) `
          : "";
      lines.push(`  ${row}${e.path ?? ""}: ${e.message ?? ""}`);
    }
    const hint = this.hint(res.status, problem);
    if (hint) lines.push(hint);
    if (problem.request_id) lines.push(`  (request id ${problem.request_id})`);
    return new CliError(lines.join("\n"), exitCode, problem);
  }

  /** Advice for the failures a new user meets first. */
  private hint(status: number, problem: Problem): string | undefined {
    const { url, urlFrom } = this.connection;
    if (problem.code === "invalid_token" && /public key/i.test(problem.detail ?? "")) {
      return (
        `  hint: the service at ${url} (from ${urlFrom}) does not know key '${this.key.kid}'. ` +
        "Is it the server `npm start` runs from this checkout? Its URL is in the CLI config it writes."
      );
    }
    if (problem.code === "invalid_token" && /aud/i.test(problem.detail ?? "")) {
      return `  hint: the audience '${this.connection.aud}' is not accepted here; pass --aud or set EDGE_INFERENCE_AUD`;
    }
    if (status === 429) return "  hint: rate limited; wait for Retry-After and try again";
    return undefined;
  }
}

/** Adds the connection options (defaults: environment, then the CLI config file; docs/cli.md). */
export function withConnection(cmd: Command): Command {
  return cmd
    .option("--url <url>", "service base URL (env EDGE_INFERENCE_URL)")
    .option("--issuer <iss>", "ASAP issuer (env EDGE_INFERENCE_ISSUER)")
    .option("--key <kid|file>", "private key: a kid under .dev/keys/ or a PEM file (env EDGE_INFERENCE_KEY)")
    .option("--kid <kid>", "key id, when --key is a file outside .dev/keys/ (env EDGE_INFERENCE_KID)")
    .option("--aud <aud>", "ASAP audience (env EDGE_INFERENCE_AUD)");
}
