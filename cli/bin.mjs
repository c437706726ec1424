#!/usr/bin/env node
// `bin` entry of the package: the CLI bundled into cli/dist/ by `npm install` (scripts/build-cli.mjs),
// rebuilt first when one of its source files is newer than the bundle (a checkout being edited).
import { readFileSync, statSync } from "node:fs";
import path from "node:path";

const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.dirname(here);

/** Whether the bundle is missing or older than a source file it was built from. */
function stale() {
  let built;
  let inputs;
  try {
    built = statSync(path.join(here, "dist", "index.mjs")).mtimeMs;
    inputs = JSON.parse(readFileSync(path.join(here, "dist", "inputs.json"), "utf8"));
  } catch {
    return true;
  }
  return inputs.some((file) => {
    try {
      return statSync(path.join(root, file)).mtimeMs > built;
    } catch {
      return false; // not in this install (sources absent)
    }
  });
}

if (stale()) {
  try {
    const { buildCli } = await import("../scripts/build-cli.mjs");
    await buildCli();
  } catch (error) {
    console.error(
      `edge-inference: the CLI bundle is missing or stale and could not be rebuilt (${error.message}); run \`npm run build:cli\``,
    );
    process.exit(1);
  }
}
await import("./dist/index.mjs");
