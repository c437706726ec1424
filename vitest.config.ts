import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { MODELS } from "./scripts/train";
import { keyServer } from "./test/key-server";

const root = path.dirname(new URL(import.meta.url).pathname);
const datasetsDir = path.resolve(root, "../shared/datasets");

/**
 * The public test split of a shipped model's dataset, `{ texts, targets }`, loaded with the
 * trainer's own loader and split rule; 404 when ../shared/datasets is absent (a fresh clone).
 */
async function testSplit(id: string): Promise<Response> {
  const config = MODELS[id];
  if (!config) return new Response("unknown dataset", { status: 400 });
  if (!existsSync(datasetsDir)) return new Response(`${datasetsDir} is absent`, { status: 404 });
  const { test } = config.load();
  return Response.json({ texts: test.map((r) => r.text), targets: test.map((r) => r.target) });
}

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
        // Test-only service: serves files from the repository's models/ folder, so tests can seed
        // the real local R2 binding with the real shipped models, and the test split of each
        // model's dataset from ../shared when present (`/datasets/<id>/test`).
        serviceBindings: {
          FIXTURES: async (request: Request) => {
            const rel = decodeURIComponent(new URL(request.url).pathname).replace(/^\/+/, "");
            const dataset = /^datasets\/([\w-]+)\/test$/.exec(rel);
            if (dataset?.[1]) return testSplit(dataset[1]);
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
