/**
 * The protocol surface over a real socket, against the deployable bundle in workerd: the OpenAPI
 * document validates against the OpenAPI 3.1 schema (a Node-only validator: it compiles JSON Schema
 * to code, which workerd forbids), and the registry service's `GET /prediction` with a JSON body —
 * a request that workerd's own `Request` constructor cannot build, so it is sent with node:http.
 */
import http from "node:http";
import path from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putShippedModels } from "../../scripts/local-r2";
import { build, root, startWorker } from "../../scripts/local-worker";

let worker: { mf: Miniflare; url: string };
let token: () => Promise<string>;

beforeAll(async () => {
  const bundle = await build(path.join(root, "dist", "test-node"));
  worker = await startWorker(bundle, { LOG_LEVEL: "error" });
  const bucket = await worker.mf.getR2Bucket("MODELS");
  await putShippedModels(bucket);
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = `node-tests/${crypto.randomUUID()}`;
  await bucket.put(`asap-keys/${kid}`, await exportSPKI(publicKey));
  token = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer("node-tests")
      .setSubject("node-tests")
      .setAudience("edge-inference")
      .setIssuedAt()
      .setExpirationTime("60s")
      .setJti(crypto.randomUUID())
      .sign(privateKey);
});

afterAll(async () => {
  await worker?.mf.dispose();
});

/** Sends `method path` with `body` over a plain socket (node:http allows a body on GET). */
async function send(
  method: string,
  urlPath: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  const url = new URL(urlPath, worker.url);
  const headers: Record<string, string> = { authorization: `Bearer ${await token()}` };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method, headers },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("protocols over a real socket", () => {
  it("GET /api/v1/openapi.json is a valid OpenAPI 3.1 document", async () => {
    const res = await send("GET", "/api/v1/openapi.json");
    expect(res.status).toBe(200);
    const document = JSON.parse(res.text) as { openapi: string };
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("the validator refuses a broken document (the check can fail)", async () => {
    const res = await send("GET", "/api/v1/openapi.json");
    const broken = JSON.parse(res.text) as { paths: Record<string, unknown> };
    broken.paths["/api/v1/predict"] = { post: { responses: "none" } };
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it("the registry service's GET /prediction with a JSON body, verbatim", async () => {
    const verbatim = await send(
      "GET",
      "/prediction",
      '{"model_id":"spam", "text":"I want to save for vacation!"}',
    );
    expect(verbatim.status).toBe(200);
    const body = JSON.parse(verbatim.text) as { model_id: string; predictions: { label: string }[] };
    expect(body.model_id).toBe("spam");
    expect(body.predictions.map((p) => p.label).sort()).toEqual(["ham", "spam"]);
    const top = await send(
      "GET",
      "/prediction",
      '{"n_top": "1", "model_id":"spam", "text":"I want to save for vacation!"}',
    );
    expect((JSON.parse(top.text) as { predictions: unknown[] }).predictions).toHaveLength(1);
  });
});
