// Bundles the CLI (cli/index.ts and what it imports) into cli/dist/ as plain ES modules, so
// `edge-inference` runs without a TypeScript loader. Run by `npm install` (prepare) and `npm run build:cli`.
import { rm } from "node:fs/promises";
import path from "node:path";
import { build } from "esbuild";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const outdir = path.join(root, "cli", "dist");
await rm(outdir, { recursive: true, force: true });
await build({
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
  logLevel: "warning",
});
