import { defineConfig } from "vitest/config";

/**
 * Node-side tests: the CLI (cli/test/: each file starts a real local service in workerd through
 * Miniflare or `npm start` and runs the built CLI against it as a child process) and scripts/.
 */
export default defineConfig({
  test: {
    include: ["cli/test/**/*.test.ts", "scripts/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
