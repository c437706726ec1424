/**
 * The SDK package (sdk/): it builds (`tsc -p sdk/tsconfig.build.json`), and its example calls
 * (sdk/examples/calls.ts, typechecked by `npm run typecheck`) run against the deployable bundle in
 * workerd through the built package, with an ASAP token minted per request from a PEM key.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { encode } from "fast-png";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putShippedModels } from "../../scripts/local-r2";
import { build, root, startWorker } from "../../scripts/local-worker";
import { runExamples } from "../../sdk/examples/calls";
import type * as Sdk from "../../sdk/src/index";

let worker: { mf: Miniflare; url: string };
let sdk: typeof Sdk;
let pem: string;
const kid = `sdk-tests/${crypto.randomUUID()}`;

beforeAll(async () => {
  execFileSync("npx", ["tsc", "-p", path.join(root, "sdk/tsconfig.build.json")], {
    cwd: root,
    stdio: "pipe",
  });
  sdk = (await import(path.join(root, "sdk/dist/index.js"))) as typeof Sdk;
  const bundle = await build(path.join(root, "dist", "test-node-sdk"));
  worker = await startWorker(bundle, { LOG_LEVEL: "error", REQUEST_LOG: "off" });
  const bucket = await worker.mf.getR2Bucket("MODELS");
  await putShippedModels(bucket);
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  await bucket.put(`asap-keys/${kid}`, await exportSPKI(publicKey));
  pem = await exportPKCS8(privateKey);
}, 300_000);

afterAll(async () => {
  await worker?.mf.dispose();
});

function imageBase64(): string {
  const data = new Uint8Array(28 * 28).map((_, i) => (i % 28 < 14 ? 0 : 255));
  return Buffer.from(encode({ width: 28, height: 28, data, channels: 1, depth: 8 })).toString("base64");
}

describe("@edge-inference/sdk against the Worker", () => {
  it("runs the example calls with a fresh ASAP token per request; predict answers narrow on kind", async () => {
    const minted: string[] = [];
    const provider = sdk.asapTokenProvider({ issuer: "sdk-tests", kid, privateKey: pem });
    const client = sdk.createEdgeInferenceClient({
      baseUrl: worker.url,
      token: async () => {
        const token = await provider();
        minted.push(token);
        return token;
      },
    });
    const got = await runExamples(client, imageBase64());
    expect(got.health).toBe("ok");
    expect([got.textKind, got.batchKind, got.imageKind]).toEqual(["text", "batch", "image"]);
    expect(got.text).toMatch(/\S/);
    expect(["ham", "spam"]).toContain(got.batch);
    expect(got.image).toMatch(/\S/);
    expect(got.models).toContain("spam");
    expect(got.spamVersions.length).toBeGreaterThan(0);
    expect(got.submittedStatus).toBe(202);
    expect(got.prediction).toBe("done");
    expect(got.predictionResult).toHaveProperty("predictions");
    expect(got.inferOutputs).toEqual(["scores", "labels"]);
    expect(got.missing).toEqual({ status: 404, code: "model_not_found" });
    // One token per request, never reused (the service refuses a replayed jti).
    expect(new Set(minted).size).toBe(minted.length);
    expect(minted.length).toBeGreaterThanOrEqual(10);
  });

  it("the built package carries its types (dist/index.d.ts and the generated dist/schema.d.ts)", () => {
    const dist = path.join(root, "sdk/dist");
    expect(readFileSync(path.join(dist, "index.d.ts"), "utf8")).toContain('from "./schema"');
    expect(readFileSync(path.join(dist, "schema.d.ts"), "utf8")).toContain("PredictAnswer");
  });

  it("without a token the typed error is the service's 401 problem", async () => {
    const client = sdk.createEdgeInferenceClient({ baseUrl: worker.url });
    const { error, response } = await client.GET("/api/v1/models");
    expect(response.status).toBe(401);
    expect(error?.code).toBe("invalid_token");
  });
});
