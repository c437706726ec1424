/**
 * ONNX conformance through the service: a fixed sample (every 8th, sorted by name) of the ONNX
 * backend node tests in Debian's `libonnx-testdata`, run directly by onnxruntime-web and — each one
 * it passes — uploaded as a `tensor` model and run through `POST /v2/models/{m}/infer` with binary
 * tensor data (scripts/onnx-conformance.ts; the full set: `npx tsx scripts/onnx-conformance.ts`).
 * Skipped when the package is absent (`apt-get install libonnx-testdata`; .ci/run installs it).
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  caseDirs,
  NODE_TESTS_DIR,
  runConformance,
  type Service,
  startService,
  summary,
} from "../../scripts/onnx-conformance";

const present = existsSync(NODE_TESTS_DIR);
if (!present) console.warn(`${NODE_TESTS_DIR} is absent (apt-get install libonnx-testdata): skipping`);

describe.skipIf(!present)("ONNX backend node tests served as tensor models", () => {
  let service: Service;
  beforeAll(async () => {
    service = await startService("test-conformance");
  });
  afterAll(async () => {
    await service?.mf.dispose();
  });

  it("every sampled test onnxruntime-web passes directly also passes through the service", {
    timeout: 240_000,
  }, async () => {
    const results = await runConformance(caseDirs(NODE_TESTS_DIR, 8), service);
    const s = summary(results);
    console.log(`node tests: ${JSON.stringify({ ...s, service_fail: s.service_fail.length })}`);
    expect(s.direct_pass).toBeGreaterThan(90);
    expect(s.service_fail).toEqual([]);
    // Every test ORT passes passes through the service, except graphs whose allocation or
    // iteration is sized by an input's values: the upload refuses those by design (#26).
    expect(s.service_pass + s.refused_unbounded.length).toBe(s.direct_pass);
    expect(s.refused_unbounded.length).toBeLessThan(s.direct_pass / 5);
  });
});
