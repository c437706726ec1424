// Bundles the CLI (cli/index.ts and what it imports) into cli/dist/ as plain ES modules, so
// `edge-inference` runs without a TypeScript loader. Run by `npm install` (prepare), by
// `npm run build:cli`, and by cli/bin.mjs when a source file is newer than the bundle.
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { build } from "esbuild";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const outdir = path.join(root, "cli", "dist");

/**
 * Binds `Headers` and `FormData` inside openapi-fetch (the SDK's client) to cli/web-globals.ts:
 * Node 20's globals load undici, which the CLI avoids (it sends on node:http; docs/cli.md).
 */
const webGlobals = {
  name: "cli-web-globals",
  setup(b) {
    b.onLoad({ filter: /[\\/]openapi-fetch[\\/]dist[\\/]index\.mjs$/ }, async (args) => ({
      contents: `import { Headers, FormData } from ${JSON.stringify(path.join(root, "cli", "web-globals.ts"))};\n${await readFile(args.path, "utf8")}`,
      loader: "js",
      resolveDir: path.dirname(args.path),
    }));
  },
};

/** Builds cli/dist/ and writes cli/dist/inputs.json (the repository's source files in the bundle). */
export async function buildCli() {
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: [path.join(root, "cli", "index.ts")],
    outdir,
    bundle: true,
    // Chunks: wrangler's local R2 access (keys generate) is imported on use only.
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    // Loaded from node_modules when used: large, with native parts.
    external: ["wrangler", "miniflare"],
    // Bundled CommonJS dependencies (commander) call require() for Node built-ins.
    banner: {
      js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);',
    },
    plugins: [webGlobals],
    metafile: true,
    logLevel: "warning",
  });
  const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.includes("node_modules/"));
  await writeFile(path.join(outdir, "inputs.json"), JSON.stringify(inputs));
}

if (import.meta.url === `file://${process.argv[1]}`) await buildCli();
