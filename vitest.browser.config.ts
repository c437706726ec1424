/**
 * The browser suite (`npm test` runs it after the workerd suite): Node tests that start the built
 * Worker in workerd (Miniflare, loopback only) and drive headless Chromium against it. Skipped with
 * a message when no Chromium binary is installed (`.ci/run` installs Debian's `chromium`).
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test-browser/**/*.browser.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
