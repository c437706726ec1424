import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config";
import { api, postJson, problem } from "./helpers";

describe("health", () => {
  it("GET /api/v1/health answers without loading a model", async () => {
    const res = await api("/api/v1/health");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.message).toBe("Application is up and running");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("GET /api/v1/health/ready is 503 when the default model is not in R2", async () => {
    const res = await api("/api/v1/health/ready");
    expect(res.status).toBe(503);
    const p = await problem(res);
    expect(p.code).toBe("not_ready");
    expect(p.reason).toBe("model_not_found");
  });
});

describe("routing errors", () => {
  it("unknown route → 404 problem+json", async () => {
    const res = await api("/api/v1/nope");
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe("route_not_found");
  });

  it("wrong method → 405 with Allow", async () => {
    const res = await api("/api/v1/predict");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect((await problem(res)).code).toBe("method_not_allowed");
  });
});

describe("predict input validation (before any model is touched)", () => {
  const cases: [string, unknown, number, string][] = [
    ["invalid JSON", "{not json", 400, "invalid_json"],
    ["empty body", "", 400, "invalid_json"],
    ["text of wrong type", { text: 42 }, 400, "invalid_request"],
    ["missing text", { request_id: 1 }, 400, "invalid_request"],
    ["empty text", { text: "   " }, 400, "invalid_request"],
    ["both text and texts", { text: "a", texts: ["b"] }, 400, "invalid_request"],
    ["empty texts", { texts: [] }, 400, "invalid_request"],
    ["non-string in texts", { texts: ["a", 1] }, 400, "invalid_request"],
    ["empty string in texts", { texts: ["a", ""] }, 400, "invalid_request"],
    ["batch over the limit", { texts: Array.from({ length: 65 }, () => "x") }, 400, "batch_too_large"],
    ["unsupported encoding", { text: "hi", encoding_type: "latin-1" }, 400, "unsupported_encoding"],
    ["n_top of 0", { text: "hi", n_top: 0 }, 400, "invalid_request"],
    ["request_id of wrong type", { text: "hi", request_id: { a: 1 } }, 400, "invalid_request"],
    ["bad model id", { text: "hi", model: "../etc" }, 400, "invalid_request"],
    ["text over 64 KiB", { text: "é".repeat(32 * 1024 + 1) }, 413, "text_too_large"],
    ["a JSON array body", [1, 2], 400, "invalid_request"],
  ];
  for (const [name, body, status, code] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      const res = await postJson("/api/v1/predict", body);
      expect(res.status).toBe(status);
      const p = await problem(res);
      expect(p.code).toBe(code);
      expect(p.status).toBe(status);
    });
  }

  it("body over 1 MiB → 413 payload_too_large", async () => {
    const res = await postJson("/api/v1/predict", { text: "a".repeat(1024 * 1024 + 10) });
    expect(res.status).toBe(413);
    expect((await problem(res)).code).toBe("payload_too_large");
  });

  it("chunked body over 1 MiB without Content-Length → 413", async () => {
    const chunk = new TextEncoder().encode("a".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 20) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await api("/api/v1/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
    });
    expect(res.status).toBe(413);
  });

  it("non-JSON content type → 415", async () => {
    const res = await api("/api/v1/predict", {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: "x",
    });
    expect(res.status).toBe(415);
    expect((await problem(res)).code).toBe("unsupported_media_type");
  });

  it("unknown model → 404 model_not_found", async () => {
    const res = await postJson("/api/v1/predict", { text: "hello", model: "no-such-model" });
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe("model_not_found");
  });
});

describe("configuration", () => {
  const good = {
    ENVIRONMENT: "dev",
    LOG_LEVEL: "info",
    DEFAULT_MODEL: "toxicity",
    MAX_BODY_BYTES: "1048576",
    MAX_TEXT_BYTES: "65536",
    MAX_BATCH: "64",
    MODEL_CACHE_BYTES: "67108864",
    MAX_MODEL_BYTES: "16777216",
    ACTIVE_POINTER_TTL_MS: "5000",
  };
  it("accepts the shipped shape", () => {
    expect(loadConfig({ ...good }).MAX_BATCH).toBe(64);
  });
  it("rejects bad values with a message naming each var", () => {
    expect(() => loadConfig({ ...good, MAX_BATCH: "lots", LOG_LEVEL: "loud" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...good, MAX_BATCH: "lots", LOG_LEVEL: "loud" })).toThrow(
      /MAX_BATCH.*whole number|LOG_LEVEL/,
    );
    expect(() => loadConfig({ ...good, DEFAULT_MODEL: undefined })).toThrow(/DEFAULT_MODEL/);
  });
});
