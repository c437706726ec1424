/**
 * A minimal HTTP client on node:http(s). Node's global `fetch` loads undici on first use, which
 * costs ~90 ms of CPU and several hundred ms of wall time per CLI run on a busy machine; a command
 * makes one or two requests, so the built-in modules are used instead.
 */
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";

/** The slice of a fetch `Response` the CLI uses. */
export class HttpResponse {
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };

  constructor(
    readonly status: number,
    readonly statusText: string,
    rawHeaders: IncomingHttpHeaders,
    private readonly bytes: Buffer,
  ) {
    this.ok = status >= 200 && status < 300;
    this.headers = {
      get: (name) => {
        const value = rawHeaders[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    };
  }

  async text(): Promise<string> {
    return this.bytes.toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.bytes.toString("utf8"));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return new Uint8Array(this.bytes).buffer;
  }
}

/** What `send` takes. */
export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** Milliseconds without any progress before the request fails (default 120 s). */
  timeoutMs?: number;
}

/** Sends one request and reads the whole answer; rejects with the socket error (`code` set). */
export function send(url: URL, init: HttpRequest): Promise<HttpResponse> {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  const body = typeof init.body === "string" ? Buffer.from(init.body) : init.body;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: init.method,
        headers: {
          ...init.headers,
          ...(body !== undefined && { "content-length": String(body.byteLength) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () =>
          resolve(
            new HttpResponse(
              res.statusCode ?? 0,
              res.statusMessage ?? "",
              res.headers,
              Buffer.concat(chunks),
            ),
          ),
        );
      },
    );
    req.setTimeout(init.timeoutMs ?? 120_000, () =>
      req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })),
    );
    req.on("error", reject);
    req.end(body);
  });
}
