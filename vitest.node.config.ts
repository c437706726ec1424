import { defineConfig } from "vitest/config";

/**
 * Node-side tests (test/node/): what needs a real socket or a Node-only library, against the
 * Worker's deployable bundle in workerd (scripts/local-worker.ts). The workerd suite is
 * vitest.config.ts.
 */
export default defineConfig({
  test: {
    include: ["test/node/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
