import { createReadStream, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { build } from "esbuild";
import { defineConfig } from "vitest/config";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { loadKerasSource } from "./scripts/keras-source";
import { digitsTestSplit } from "./scripts/train-digits";
import { TRAINING_CATALOGUE } from "./scripts/training/catalogue";
import { keyServer } from "./test/key-server";

const root = path.dirname(new URL(import.meta.url).pathname);
const datasetsDir = path.resolve(root, "../shared/datasets");

/**
 * The public test split of a shipped model's dataset, `{ texts, targets }` (digits: `{ images,
 * targets }`, each image a base64 PNG of the raw MNIST pixels), loaded with the trainer's own loader
 * and split rule; 404 when ../shared/datasets is absent (a fresh clone).
 */
async function testSplit(id: string): Promise<Response> {
  if (id === "digits") {
    const split = existsSync(datasetsDir) ? digitsTestSplit() : undefined;
    return split ? Response.json(split) : new Response(`${datasetsDir}/mnist is absent`, { status: 404 });
  }
  const config = TRAINING_CATALOGUE[id];
  if (!config) return new Response("unknown dataset", { status: 400 });
  if (!existsSync(datasetsDir)) return new Response(`${datasetsDir} is absent`, { status: 404 });
  const { test } = config.load();
  return Response.json({ texts: test.map((r) => r.text), targets: test.map((r) => r.target) });
}

/** The first `n` lines of a text file (gunzipped when it ends in .gz); undefined when absent. */
async function headLines(file: string, n: number): Promise<string[] | undefined> {
  if (!existsSync(file)) return undefined;
  const stream = createReadStream(file);
  const lines: string[] = [];
  const reader = createInterface({ input: file.endsWith(".gz") ? stream.pipe(createGunzip()) : stream });
  for await (const line of reader) {
    lines.push(line);
    if (lines.length >= n) break;
  }
  reader.close();
  stream.destroy();
  return lines;
}

/**
 * Bundles the isolated BYOM Worker (workers/byom/) for Miniflare, which runs auxiliary Workers from
 * built JavaScript: one ES module plus ORT's `.wasm` beside it (a CompiledWasm module, as wrangler
 * makes it). Returns the bundle's path. ~1 s.
 */
async function buildByomWorker() {
  const outdir = path.join(root, "node_modules/.cache/edge-inference-byom");
  await build({
    entryPoints: [path.join(root, "workers/byom/index.ts")],
    outdir,
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    external: ["cloudflare:*"],
    loader: { ".wasm": "copy" },
    assetNames: "[name]",
    logLevel: "error",
  });
  return {
    modulesRoot: outdir,
    modules: [
      { type: "ESModule" as const, path: path.join(outdir, "index.js") },
      { type: "CompiledWasm" as const, path: path.join(outdir, "ort-wasm-simd-threaded.wasm") },
    ],
  };
}

/** The isolated BYOM Worker's compatibility date, vars and bindings from workers/byom/wrangler.toml. */
function byomOptions() {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(root, "workers/byom/wrangler.toml"));
  const { compatibilityDate, bindings, r2Buckets } = workerOptions;
  return { compatibilityDate, bindings: { ...bindings, ACTIVE_POINTER_TTL_MS: "0" }, r2Buckets };
}

export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      main: "./src/index.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // The isolated BYOM Worker (workers/byom/), which the main Worker's BYOM service binding
        // (wrangler.toml) reaches: its own isolate, on the same local R2 bucket.
        workers: [
          {
            name: "edge-inference-byom",
            ...(await buildByomWorker()),
            // Its vars and R2 binding as workers/byom/wrangler.toml declares them.
            ...byomOptions(),
          },
        ],
        // Tests see pointer switches at once; everything else is wrangler.toml's top-level config.
        // TEST_MIGRATIONS: migrations/ for test/setup-d1.ts, which applies them to the D1 binding.
        bindings: {
          ENVIRONMENT: "test",
          LOG_LEVEL: "warn",
          // Request lines would flood the test output; test/request-log.test.ts sets its own.
          REQUEST_LOG: "off",
          ACTIVE_POINTER_TTL_MS: "0",
          TEST_MIGRATIONS: await readD1Migrations(path.join(root, "migrations")),
          // test/online.test.ts gives each case its own online model (one learner object each).
          ONLINE_MODELS:
            "bank,bank-rows,bank-csv,bank-concurrent,bank-persist,bank-snapshot,bank-labels,bank-window,bank-data",
        },
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
            // A raw dataset file from ../shared/datasets (training-job tests); 404 when absent.
            const raw = /^raw-datasets\/([\w-]+\/[\w.-]+)$/.exec(rel);
            if (raw?.[1]) {
              try {
                return new Response(await readFile(path.join(datasetsDir, raw[1])));
              } catch {
                return new Response("not found", { status: 404 });
              }
            }
            // The header and first `?rows=` data lines of a (gzipped) CSV in ../shared/datasets, as
            // a user would cut a sample file from it (test/online-client.test.ts); 404 when absent.
            const head = /^dataset-head\/([\w-]+\/[\w.-]+)$/.exec(rel);
            if (head?.[1]) {
              const rows = Number(new URL(request.url).searchParams.get("rows") ?? "10");
              const lines = await headLines(path.join(datasetsDir, head[1]), rows + 1);
              return lines
                ? new Response(`${lines.join("\n")}\n`)
                : new Response("not found", { status: 404 });
            }
            // nsfwjs's MobileNetV2 (the source of models/moderation-image), so the importer's
            // conversion can be checked in workerd: its model.json, and its weight shards concatenated.
            const keras = /^keras\/nsfwjs-mobilenet_v2\/(model\.json|weights\.bin)$/.exec(rel);
            if (keras) {
              const source = loadKerasSource(
                path.join(root, "node_modules/nsfwjs/dist/models/mobilenet_v2/model.min.js"),
              );
              return keras[1] === "model.json"
                ? Response.json(source.model)
                : new Response(new Uint8Array(source.weightData));
            }
            // Real photographs from Debian packages (.ci/run installs them; test/photo-parity.test.ts).
            const photo = /^photos\/((?:[\w.-]+\/)*[\w.-]+\.(?:jpe?g|png))$/i.exec(rel);
            if (photo?.[1] && !photo[1].split("/").includes("..")) {
              try {
                return new Response(await readFile(path.join("/usr/share/backgrounds", photo[1])));
              } catch {
                return new Response("not found", { status: 404 });
              }
            }
            if (rel === "fixtures/photo-parity.json")
              return new Response(await readFile(path.join(root, "test", rel)));
            if (!/^models\/[\w.-]+\/[\w.-]+$/.test(rel)) return new Response("bad path", { status: 400 });
            try {
              return new Response(await readFile(path.join(root, rel)));
            } catch {
              return new Response("not found", { status: 404 });
            }
          },
        },
      },
    })),
  ],
  test: {
    // test/node/, cli/test/ and scripts/ tests run in Node (vitest.node.config.ts): real sockets,
    // browsers, child processes, Node-only libraries.
    include: ["test/**/*.test.ts"],
    exclude: ["test/node/**"],
    setupFiles: ["./test/setup-d1.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
