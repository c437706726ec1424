import { defineConfig } from "vitest/config";

/**
 * Node-side tests of the CLI (cli/test/): each file starts a real local service in workerd through
 * Miniflare (cli/test/service.ts) and runs the built CLI against it as a child process.
 */
export default defineConfig({
  test: {
    include: ["cli/test/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
