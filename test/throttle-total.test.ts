/**
 * The optional per-caller total across APIs (`RATE_LIMITS.total`, #26): spreading one workload over
 * several protocols (native predict, OIP infer, the registry service's /prediction, async
 * predictions) cannot exceed it, while each API's own limit stays as it is.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src/index";
import { issuerToken, problem, seedShippedModel } from "./helpers";

beforeAll(async () => {
  await seedShippedModel("toxicity");
});

async function call(testEnv: Env, path: string, issuer: string, body: unknown) {
  const ctx = createExecutionContext();
  const req = new Request(`http://edge.test${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${await issuerToken(issuer)}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }) as Request<unknown, IncomingRequestCfProperties>;
  const res = await worker.fetch(req, testEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const SPREAD: [string, unknown][] = [
  ["/api/v1/predict", { text: "hello there" }],
  [
    "/v2/models/toxicity/infer",
    { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["hello"] }] },
  ],
  ["/prediction", { model_id: "toxicity", text: "hello there" }],
  ["/api/v1/predictions", { text: "hello there" }],
];

describe("RATE_LIMITS total per caller", () => {
  it("a caller limited to 8 per API and 8 in total gets 8 over four protocols, then 429 naming the total", async () => {
    const limits = { default: { limit: 8, window: 60 }, total: { limit: 8, window: 60 } };
    const testEnv = { ...env, RATE_LIMITS: JSON.stringify(limits), RATE_LEASE_MS: "0" } as Env;
    const statuses: number[] = [];
    let refusal: Response | undefined;
    for (let i = 0; i < 16; i++) {
      const [path, body] = SPREAD[i % SPREAD.length] as [string, unknown];
      const res = await call(testEnv, path, "spreader", body);
      statuses.push(res.status);
      if (res.status === 429 && !refusal) refusal = res;
      else await res.arrayBuffer();
    }
    expect(statuses.filter((s) => s < 300)).toHaveLength(8);
    expect(statuses.slice(8).every((s) => s === 429)).toBe(true);
    expect(refusal?.headers.get("ratelimit-policy")).toBe('"total";q=8;w=60');
    expect((await problem(refusal as Response)).detail).toMatch(/over all APIs \(RATE_LIMITS total\)/);
  });

  it("a caller's own total overrides the top-level one; without a total, only the per-API limits apply", async () => {
    const limits = {
      default: { limit: 100, window: 60 },
      total: { limit: 2, window: 60 },
      callers: { roomy: { apis: {}, total: { limit: 6, window: 60 } } },
    };
    const testEnv = { ...env, RATE_LIMITS: JSON.stringify(limits), RATE_LEASE_MS: "0" } as Env;
    const ok = async (caller: string, n: number) => {
      let admitted = 0;
      for (let i = 0; i < n; i++) {
        const [path, body] = SPREAD[i % 2] as [string, unknown];
        const res = await call(testEnv, path, caller, body);
        if (res.status < 300) admitted++;
        await res.arrayBuffer();
      }
      return admitted;
    };
    expect(await ok("roomy", 8)).toBe(6);
    expect(await ok("tight", 4)).toBe(2);
    const none = {
      ...env,
      RATE_LIMITS: JSON.stringify({ default: { limit: 100, window: 60 } }),
      RATE_LEASE_MS: "0",
    } as Env;
    let admitted = 0;
    for (let i = 0; i < 6; i++) {
      const [path, body] = SPREAD[i % 2] as [string, unknown];
      const res = await call(none, path, "free", body);
      if (res.status < 300) admitted++;
      await res.arrayBuffer();
    }
    expect(admitted).toBe(6);
  });
});
