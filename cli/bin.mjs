#!/usr/bin/env node
// `bin` entry of the package: the CLI bundled into cli/dist/ by `npm install` (scripts/build-cli.mjs).
try {
  await import("./dist/index.mjs");
} catch (error) {
  if (error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes("cli/dist/index.mjs"))
    throw error;
  console.error("edge-inference: the CLI is not built; run `npm run build:cli` (npm install does it)");
  process.exit(1);
}
