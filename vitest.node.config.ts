import { defineConfig } from "vitest/config";

/**
 * Node-side tests: test/node/ (real sockets, headless Chromium, Node-only libraries), cli/test/
 * (the built CLI run as a child process; `npm start` itself) and scripts/ — each against the
 * Worker's deployable bundle in workerd (scripts/local-worker.ts) or `wrangler dev`. The workerd
 * suite is vitest.config.ts.
 */
export default defineConfig({
  test: {
    include: ["test/node/**/*.test.ts", "cli/test/**/*.test.ts", "scripts/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
