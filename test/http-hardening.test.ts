/**
 * HTTP behaviour as the Worker sees it (issue #14 parts 2, 4b, 6): body limits and Content-Length,
 * the headers every response carries, CORS, and whose `CF-Connecting-IP` is believed. What only
 * shows over a real socket (workerd's own parser, `wrangler dev`'s proxy) is in
 * test/socket/http-socket.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { readApiStatistics } from "../src/metering/stats";
import { api, problem } from "./helpers";

const CHUNK = 64 * 1024;
const MIB = 1024 * 1024;

/** A request body that counts what the Worker pulled from it and whether it was cancelled. */
function countedBody(chunks: number | "endless") {
  const state = { pulledBytes: 0, cancelled: false, ended: false };
  const chunk = new Uint8Array(CHUNK).fill(0x61);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (chunks !== "endless" && state.pulledBytes >= chunks * CHUNK) {
          state.ended = true;
          controller.close();
          return;
        }
        state.pulledBytes += CHUNK;
        controller.enqueue(chunk);
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

/** Calls the real Worker entry with wrangler.toml's test config plus `vars`; authenticated unless told. */
async function call(
  path: string,
  init: RequestInit = {},
  vars: Record<string, string> = {},
  { auth = true } = {},
): Promise<Response> {
  // With `vars`, `api` waits for the request's background work: the metering batch this call
  // joined is delivered before the next call (statistics tests).
  return api(path, init, { auth, vars });
}

describe("request bodies", () => {
  const readers: [string, string, string, string][] = [
    ["predict (JSON)", "POST", "/api/v1/predict", "application/json"],
    ["online samples (CSV)", "POST", "/api/v1/models/bank/samples", "text/csv"],
    ["online samples (JSON)", "POST", "/api/v1/models/bank/samples", "application/json"],
    ["training job (JSON)", "POST", "/api/v1/models", "application/json"],
    [
      "model upload (multipart)",
      "PUT",
      "/api/v1/models/hardening/versions/1",
      "multipart/form-data; boundary=x",
    ],
  ];

  for (const [name, method, path, type] of readers) {
    it(`${name}: a declared Content-Length over the limit → 413 without reading, body cancelled`, async () => {
      const { stream, state } = countedBody("endless");
      const res = await call(path, {
        method,
        headers: { "content-type": type, "content-length": String(2 ** 31) },
        body: stream,
      });
      expect(res.status).toBe(413);
      expect((await problem(res)).code).toBe("payload_too_large");
      expect(state.pulledBytes).toBe(0);
      expect(state.cancelled).toBe(true);
    });

    for (const bad of ["-1", "abc", "0x10", "1e3", "12, 12", ""]) {
      it(`${name}: Content-Length '${bad}' → 400 invalid_content_length`, async () => {
        const res = await call(path, {
          method,
          headers: { "content-type": type, "content-length": bad },
          body: "{}",
        });
        expect(res.status).toBe(400);
        const p = await problem(res);
        expect(p.code).toBe("invalid_content_length");
        expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      });
    }
  }

  it("a chunked body over the limit → 413; a small remainder is drained, not cut off", async () => {
    const { stream, state } = countedBody(40); // 2.5 MiB: over predict's 1.46 MiB limit
    const res = await call("/api/v1/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
    });
    expect(res.status).toBe(413);
    expect((await problem(res)).code).toBe("payload_too_large");
    expect(state.ended).toBe(true);
    expect(state.cancelled).toBe(false);
  });

  it("a chunked online-samples body over the limit → 413 with the rest drained", async () => {
    const { stream, state } = countedBody(24); // 1.5 MiB over MAX_BODY_BYTES (1 MiB)
    const res = await call("/api/v1/models/bank/samples", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: stream,
    });
    expect(res.status).toBe(413);
    expect(state.ended).toBe(true);
  });

  it("an endless chunked body → 413 after draining at most 16 MiB, then cancelled", async () => {
    const { stream, state } = countedBody("endless");
    const res = await call("/api/v1/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
    });
    expect(res.status).toBe(413);
    const limit = (await problem(res)).limit_bytes as number;
    expect(state.cancelled).toBe(true);
    expect(state.pulledBytes).toBeGreaterThan(limit);
    expect(state.pulledBytes).toBeLessThanOrEqual(limit + 16 * MIB + 2 * CHUNK);
  });

  it("a declared length within the limit is still read natively (happy path unchanged)", async () => {
    const body = JSON.stringify({ text: "hello", model: "no-such-model" });
    const res = await call("/api/v1/predict", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(body.length) },
      body,
    });
    expect((await problem(res)).code).toBe("model_not_found");
  });
});

describe("headers on every response", () => {
  const expectSecurityHeaders = (res: Response) => {
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  };

  it("success, problem+json (404, 401, 405, 413) and config_invalid all carry nosniff and no-store", async () => {
    const cases: [string, RequestInit, boolean, number][] = [
      ["/api/v1/health", {}, false, 200],
      ["/api/v1/nope", {}, false, 404],
      ["/api/v1/statistics", {}, false, 401],
      ["/api/v1/predict", {}, true, 405],
      [
        "/api/v1/predict",
        { method: "POST", headers: { "content-length": String(2 ** 31) }, body: "x" },
        true,
        413,
      ],
    ];
    for (const [path, init, auth, status] of cases) {
      const res = await call(path, init, {}, { auth });
      expect(res.status, path).toBe(status);
      expectSecurityHeaders(res);
    }
    const res = await call("/api/v1/health", {}, { MAX_BATCH: "lots" }, { auth: false });
    expect((await problem(res)).code).toBe("config_invalid");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("Strict-Transport-Security only with HSTS=on (off in dev/test, on in staging and production)", async () => {
    const off = await call("/api/v1/health", {}, {}, { auth: false });
    expect(off.headers.get("strict-transport-security")).toBeNull();
    const on = await call("/api/v1/nope", {}, { HSTS: "on" }, { auth: false });
    expect(on.headers.get("strict-transport-security")).toBe("max-age=31536000");
  });
});

describe("CORS", () => {
  const preflight = (origin: string, vars: Record<string, string> = {}, path = "/api/v1/predict") =>
    call(
      path,
      {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      },
      vars,
      { auth: false },
    );
  const APP = { CORS_ORIGINS: "https://app.example, http://localhost:5173" };

  it("off by default: a preflight → 403 origin_not_allowed, and no CORS headers on responses", async () => {
    const res = await preflight("https://app.example");
    expect(res.status).toBe(403);
    expect((await problem(res)).code).toBe("origin_not_allowed");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const get = await call(
      "/api/v1/health",
      { headers: { origin: "https://app.example" } },
      {},
      { auth: false },
    );
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
    expect(get.headers.get("vary")).toBeNull();
  });

  it("an allowed origin's preflight → 204 with methods, Authorization allowed, max-age; no credentials", async () => {
    const res = await preflight("https://app.example", APP);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-allow-methods")).toBe("POST, OPTIONS");
    expect(res.headers.get("access-control-allow-headers")).toMatch(/\bauthorization\b/);
    expect(res.headers.get("access-control-allow-headers")).toMatch(/\bcontent-type\b/);
    expect(res.headers.get("access-control-max-age")).toBe("7200");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toMatch(/\bOrigin\b/);
    const models = await preflight("http://localhost:5173", APP, "/api/v1/models/x");
    expect(models.headers.get("access-control-allow-methods")).toBe("GET, HEAD, DELETE, OPTIONS");
  });

  it("a disallowed origin's preflight → 403 problem+json without Access-Control-Allow-Origin", async () => {
    for (const origin of ["https://evil.example", "https://app.example.evil.example", "null"]) {
      const res = await preflight(origin, APP);
      expect(res.status, origin).toBe(403);
      expect((await problem(res)).code).toBe("origin_not_allowed");
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
  });

  it("responses to an allowed origin carry Access-Control-Allow-Origin and Vary: Origin (errors too)", async () => {
    const ok = await call("/api/v1/health", { headers: { origin: "https://app.example" } }, APP, {
      auth: false,
    });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(ok.headers.get("access-control-expose-headers")).toMatch(/\bx-request-id\b/);
    expect(ok.headers.get("vary")).toBe("Origin");
    const denied = await call("/api/v1/statistics", { headers: { origin: "https://app.example" } }, APP, {
      auth: false,
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const other = await call("/api/v1/health", { headers: { origin: "https://evil.example" } }, APP, {
      auth: false,
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    expect(other.headers.get("vary")).toBe("Origin");
  });

  it("CORS_ORIGINS='*' allows any origin with '*' and never credentials", async () => {
    const res = await preflight("https://anywhere.example", { CORS_ORIGINS: "*" });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("a plain OPTIONS (no preflight headers) → 204 with Allow; an unknown path → 404", async () => {
    const res = await call("/api/v1/predict", { method: "OPTIONS" }, {}, { auth: false });
    expect(res.status).toBe(204);
    expect(res.headers.get("allow")).toBe("POST, OPTIONS");
    const unknown = await preflight("https://app.example", APP, "/api/v1/nope");
    expect(unknown.status).toBe(404);
  });

  it("CORS_ORIGINS must list exact origins, or '*' alone", async () => {
    for (const bad of [
      "https://app.example/",
      "app.example",
      "https://app.example/path",
      "*, https://a.example",
    ]) {
      const res = await call("/api/v1/health", {}, { CORS_ORIGINS: bad }, { auth: false });
      const p = await problem(res);
      expect(p.code, bad).toBe("config_invalid");
      expect(p.detail).toMatch(/CORS_ORIGINS/);
    }
  });
});

describe("TRUST_CF_CONNECTING_IP", () => {
  /** The callers metered for unmatched requests this minute, after one from `ip` under `vars`. */
  async function callersAfter(ip: string, vars: Record<string, string>) {
    for (;;) {
      const start = Date.now();
      const res = await call("/api/v1/nope", { headers: { "cf-connecting-ip": ip } }, vars, { auth: false });
      expect(res.status).toBe(404);
      const end = Date.now();
      if (Math.floor(start / 60_000) !== Math.floor(end / 60_000)) continue; // straddled a minute
      const stats = await readApiStatistics(env, "unknown", Number(env.STATS_SHARDS), end);
      return stats.callers_current_minute.map((c) => c.caller);
    }
  }

  it("off (dev/test default): a client-sent CF-Connecting-IP is ignored; the caller is `anonymous`", async () => {
    const callers = await callersAfter("198.51.100.7", {});
    expect(callers).not.toContain("198.51.100.7");
    expect(callers).toContain("anonymous");
  });

  it("on (staging/production, behind Cloudflare): the edge-set CF-Connecting-IP is the caller", async () => {
    const callers = await callersAfter("198.51.100.8", { TRUST_CF_CONNECTING_IP: "on" });
    expect(callers).toContain("198.51.100.8");
  });

  it("rejects values other than on/off", async () => {
    const res = await call("/api/v1/health", {}, { TRUST_CF_CONNECTING_IP: "yes" }, { auth: false });
    expect((await problem(res)).detail).toMatch(/TRUST_CF_CONNECTING_IP/);
  });
});
