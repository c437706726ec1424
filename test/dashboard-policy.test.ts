/**
 * A dashboard session shows its issuer only what its ASAP_POLICY lets it read through the API
 * (#26): each data route needs the GET of the API it mirrors; other callers' names only to admins.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { problem, TEST_ISSUER, testToken } from "./helpers";

async function call(url: string, init: RequestInit, vars: Record<string, string>): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(url, { redirect: "manual", ...init }) as Request<unknown, IncomingRequestCfProperties>,
    { ...env, ...vars },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

async function session(vars: Record<string, string>): Promise<string> {
  const login = await call(
    "http://edge.test/api/v1/dashboard/login",
    { method: "POST", headers: { authorization: `Bearer ${await testToken()}` } },
    vars,
  );
  expect(login.status).toBe(200);
  const { url } = (await login.json()) as { url: string };
  const res = await call(url, {}, vars);
  expect(res.status).toBe(303);
  return (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
}

type Stats = { apis: { api: string; callers_current_minute: { caller: string }[] }[] };

describe("dashboard data under the issuer's policy", () => {
  it("a reader refused GET /api/v1/statistics gets 403 for statistics and online learners", async () => {
    const vars = { ASAP_POLICY: JSON.stringify({ issuers: { [TEST_ISSUER]: ["dashboard", "models:GET"] } }) };
    const cookie = await session(vars);
    const direct = await call(
      "http://edge.test/api/v1/statistics",
      { headers: { authorization: `Bearer ${await testToken()}` } },
      vars,
    );
    expect(direct.status).toBe(403);
    for (const route of ["statistics", "online"]) {
      const res = await call(`http://edge.test/dashboard/api/${route}`, { headers: { cookie } }, vars);
      expect(res.status, route).toBe(403);
      expect((await problem(res)).code).toBe("forbidden");
    }
    expect((await call("http://edge.test/dashboard/api/models", { headers: { cookie } }, vars)).status).toBe(
      200,
    );
  });

  it("other callers' names in the statistics only to admins", async () => {
    // Another caller's call, counted by the statistics objects.
    const other = { ASAP_AUTH: "off" };
    const reader = { ASAP_POLICY: JSON.stringify({ issuers: { [TEST_ISSUER]: ["dashboard", "*:GET"] } }) };
    const admin = { ASAP_POLICY: JSON.stringify({ issuers: { [TEST_ISSUER]: ["*"] } }) };
    const callers = async (vars: Record<string, string>) => {
      const cookie = await session(vars);
      const res = await call("http://edge.test/dashboard/api/statistics", { headers: { cookie } }, vars);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Stats;
      return new Set(body.apis.flatMap((a) => a.callers_current_minute.map((c) => c.caller)));
    };
    // Counting is batched off the response path: wait until the admin sees the other caller. The
    // other caller calls again on each attempt: "current minute" empties when the minute turns.
    let seen = new Set<string>();
    for (let attempt = 0; attempt < 50 && !seen.has("anonymous"); attempt++) {
      await call("http://edge.test/api/v1/health", {}, other);
      seen = await callers(admin);
      if (!seen.has("anonymous")) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.has("anonymous")).toBe(true);
    const readerSees = await callers(reader);
    expect([...readerSees].every((c) => c === TEST_ISSUER)).toBe(true);
  });

  it("GET /api/v1/statistics, all APIs or one, lists other callers only to admins", async () => {
    const other = { ASAP_AUTH: "off" };
    const reader = { ASAP_POLICY: JSON.stringify({ issuers: { [TEST_ISSUER]: ["statistics:GET"] } }) };
    const admin = { ASAP_POLICY: JSON.stringify({ issuers: { [TEST_ISSUER]: ["*"] } }) };
    const callers = async (vars: Record<string, string>, query = "") => {
      const res = await call(
        `http://edge.test/api/v1/statistics${query}`,
        { headers: { authorization: `Bearer ${await testToken()}` } },
        vars,
      );
      expect(res.status).toBe(200);
      const body = (await res.json()) as Stats | Stats["apis"][number];
      const apis = "apis" in body ? body.apis : [body];
      return new Set(apis.flatMap((a) => a.callers_current_minute.map((c) => c.caller)));
    };
    let seen = new Set<string>();
    for (let attempt = 0; attempt < 50 && !seen.has("anonymous"); attempt++) {
      await call("http://edge.test/api/v1/health", {}, other);
      seen = await callers(admin);
      if (!seen.has("anonymous")) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.has("anonymous")).toBe(true);
    for (const query of ["", "?api=health"]) {
      const readerSees = await callers(reader, query);
      expect(
        [...readerSees].every((c) => c === TEST_ISSUER),
        query,
      ).toBe(true);
    }
  });
});
