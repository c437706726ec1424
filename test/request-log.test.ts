import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, loadConfig } from "../src/config";
import { parseRequestLog, pathOf, REQUEST_LOG_FLUSH_MS, RequestLog } from "../src/log";
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
    .flatMap((l) => l.split("\n"))
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

  it("lines are batched per isolate: one console.log per REQUEST_LOG_BATCH lines, the rest within the flush delay", async () => {
    const calls: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      calls.push(String(line));
    });
    const ctxs: ExecutionContext[] = [];
    try {
      // Ten requests without waiting for their contexts: batches of 4 are written as they fill.
      for (let i = 0; i < 10; i++) {
        const ctx = createExecutionContext();
        ctxs.push(ctx);
        const res = await router.fetch(
          new Request(`http://x/api/v1/health?n=${i}`),
          { ...env, REQUEST_LOG: "all", REQUEST_LOG_BATCH: "4" } as Env,
          ctx,
        );
        await res.arrayBuffer();
      }
      const mine = () =>
        calls
          .map((c) => c.split("\n").filter((l) => JSON.parse(l).route === "/api/v1/health"))
          .filter((c) => c.length > 0);
      expect(mine().map((c) => c.length)).toEqual([4, 4]);
      // The last two wait for the timer that the request starting their batch keeps alive.
      for (const ctx of ctxs) await waitOnExecutionContext(ctx);
      expect(mine().map((c) => c.length)).toEqual([4, 4, 2]);
      const ids = mine()
        .flat()
        .map((l) => JSON.parse(l).request_id);
      expect(new Set(ids).size).toBe(10);
    } finally {
      spy.mockRestore();
    }
  });

  it("REQUEST_LOG_BATCH=1 writes each line at once, in its own console.log", async () => {
    const calls: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      calls.push(String(line));
    });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await router.fetch(
          new Request("http://x/api/v1/health"),
          { ...env, REQUEST_LOG: "all", REQUEST_LOG_BATCH: "1" } as Env,
          createExecutionContext(),
        );
        await res.arrayBuffer();
        expect(calls.filter((c) => c.includes('"route":"/api/v1/health"'))).toHaveLength(i + 1);
      }
      expect(calls.every((c) => !c.includes("\n"))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it("a batch is written when full or when its timer fires, never twice, nothing lost", async () => {
    const written: string[] = [];
    const log = new RequestLog((text) => written.push(text));
    const kept: Promise<void>[] = [];
    const keep = (p: Promise<void>) => kept.push(p);
    log.add("a", 3, keep);
    log.add("b", 3, keep);
    expect(kept).toHaveLength(1); // one timer per batch
    log.add("c", 3, keep);
    expect(written).toEqual(["a\nb\nc"]);
    log.add("d", 3, keep); // starts a new batch while the first timer is pending: no second timer
    expect(kept).toHaveLength(1);
    await Promise.all(kept);
    expect(written).toEqual(["a\nb\nc", "d"]);
    expect(log.size).toBe(0);
    log.add("e", 3, keep); // the timer has fired: the next batch gets its own
    expect(kept).toHaveLength(2);
    const t0 = Date.now();
    await kept[1];
    expect(written).toEqual(["a\nb\nc", "d", "e"]);
    expect(Date.now() - t0).toBeLessThan(REQUEST_LOG_FLUSH_MS * 20);
  });

  it("REQUEST_LOG_BATCH must be a whole number from 1 to 256", () => {
    for (const bad of ["0", "257", "x", "1.5"]) {
      const vars = { ...(env as unknown as Record<string, unknown>), REQUEST_LOG_BATCH: bad };
      expect(() => loadConfig(vars)).toThrow(/REQUEST_LOG_BATCH/);
    }
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
