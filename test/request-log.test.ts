import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, loadConfig } from "../src/config";
import { parseRequestLog, pathOf } from "../src/log";
import { buildRouter } from "../src/router";

const router = buildRouter();

/** The `request` lines written while `count` health requests run under `vars`. */
async function requestLines(vars: Record<string, string>, count: number): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
    lines.push(String(line));
  });
  try {
    for (let i = 0; i < count; i++) {
      const ctx = createExecutionContext();
      const res = await router.fetch(new Request("http://x/api/v1/health"), { ...env, ...vars } as Env, ctx);
      await res.arrayBuffer();
      await waitOnExecutionContext(ctx);
    }
  } finally {
    spy.mockRestore();
  }
  return lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.event === "request" && l.route === "/api/v1/health");
}

describe("REQUEST_LOG", () => {
  afterEach(() => vi.restoreAllMocks());

  it("all: every request is logged even when LOG_LEVEL is warn", async () => {
    const lines = await requestLines({ LOG_LEVEL: "warn", REQUEST_LOG: "all" }, 5);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatchObject({ level: "info", api: "health", status: 200, method: "GET" });
  });

  it("the line carries its fields in a fixed order, without the ones a request has not got", async () => {
    const [line] = await requestLines({ REQUEST_LOG: "all" }, 1);
    expect(Object.keys(line ?? {})).toEqual([
      "ts",
      "level",
      "event",
      "request_id",
      "api",
      "method",
      "route",
      "status",
      "latency_ms",
    ]);
    expect(line).toMatchObject({ event: "request", route: "/api/v1/health", method: "GET" });
    expect(new Date(String(line?.ts)).toISOString()).toBe(line?.ts);
  });

  it("route is the URL's path, cut from the URL string", () => {
    for (const url of [
      "http://x/api/v1/health",
      "https://edge.test/api/v1/predict?model=a&b=c",
      "http://x/",
      "http://x",
      "http://user:pw@host:8080/v2/models/m/infer?x=/y#frag",
      "http://x/a%20b/c?q#h",
      "http://x/p#h?x",
    ]) {
      expect(pathOf(new Request(url).url), url).toBe(new URL(url).pathname);
    }
  });

  it("off: no request line even when LOG_LEVEL is debug", async () => {
    expect(await requestLines({ LOG_LEVEL: "debug", REQUEST_LOG: "off" }, 5)).toHaveLength(0);
  });

  it("sample:<rate> logs that share of requests", async () => {
    // The draws 0.00, 0.05, …, 0.95 in turn: 5 of every 20 fall below 0.25.
    let draw = 0;
    vi.spyOn(Math, "random").mockImplementation(() => (draw++ % 20) / 20);
    const lines = await requestLines({ LOG_LEVEL: "error", REQUEST_LOG: "sample:0.25", METERING: "off" }, 40);
    expect(lines).toHaveLength(10);
  });

  it("parses the accepted forms and rejects others", () => {
    expect(parseRequestLog("all")).toBe(1);
    expect(parseRequestLog("off")).toBe(0);
    expect(parseRequestLog("sample:0.01")).toBe(0.01);
    expect(parseRequestLog("sample:1")).toBe(1);
    for (const bad of ["sample:0", "sample:1.5", "sample:", "sample:-0.1", "some", "ALL", "sample:1e-3"]) {
      expect(parseRequestLog(bad)).toBeUndefined();
    }
  });

  it("an invalid value fails the configuration, naming the var", () => {
    const vars = { ...(env as unknown as Record<string, unknown>), REQUEST_LOG: "sometimes" };
    expect(() => loadConfig(vars)).toThrow(ConfigError);
    expect(() => loadConfig(vars)).toThrow(/REQUEST_LOG/);
  });
});
