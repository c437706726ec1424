import { readFile } from "node:fs/promises";
import path from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { keyServer } from "./test/key-server";

const root = path.dirname(new URL(import.meta.url).pathname);

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: "./src/index.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // Tests see pointer switches at once; everything else is wrangler.toml's top-level config.
        bindings: { ENVIRONMENT: "test", LOG_LEVEL: "warn", ACTIVE_POINTER_TTL_MS: "0" },
        // Outbound fetches to the fake external ASAP key repositories (keys.test, keys-mirror.test)
        // are answered by test/key-server.ts; every other host is fetched for real.
        outboundService: keyServer,
        // Test-only service: serves files from the repository's models/ folder (and ../shared when
        // present) so tests can seed the real local R2 binding with the real shipped models.
        serviceBindings: {
          FIXTURES: async (request: Request) => {
            const rel = decodeURIComponent(new URL(request.url).pathname).replace(/^\/+/, "");
            if (!/^models\/[\w.-]+\/[\w.-]+$/.test(rel)) return new Response("bad path", { status: 400 });
            try {
              return new Response(await readFile(path.join(root, rel)));
            } catch {
              return new Response("not found", { status: 404 });
            }
          },
        },
      },
    }),
  ],
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
