/**
 * `npm start`: applies the D1 migrations locally, seeds local R2 from models/ (the registry imports
 * those models on first use), makes sure a dev ASAP issuer + keypair exists (git-ignored,
 * public key in local R2), then runs `wrangler dev` on local bindings and prints a working curl line
 * (it mints a fresh token per run: replay protection refuses a reused `jti`). No Cloudflare account
 * or network is needed.
 */
import { spawn, spawnSync } from "node:child_process";
import { DEV_ISSUER, devCurlLine, ensureDevIdentity } from "../cli/dev-identity";
import { putPublicKeys } from "../cli/keys";
import { putShippedModels, withLocalR2 } from "./local-r2";

const PORT = process.env.PORT ?? "8787";

// The registry's D1 schema (migrations/) in the local database `wrangler dev` uses.
const migrated = spawnSync("npx", ["wrangler", "d1", "migrations", "apply", "edge-inference", "--local"], {
  stdio: "inherit",
  env: { ...process.env, CI: "1" },
});
if (migrated.status !== 0) {
  console.error("Applying the D1 migrations failed (see above).");
  process.exit(migrated.status ?? 1);
}

// One platform-proxy session for both uploads: models, then the dev issuer's public key.
const { seeded, identity } = await withLocalR2(async (bucket) => ({
  seeded: await putShippedModels(bucket),
  identity: await ensureDevIdentity(DEV_ISSUER, (keys) => putPublicKeys(bucket, keys)),
}));
console.log(`Seeded local R2 with ${seeded.map((m) => `${m.id}@${m.version}`).join(", ") || "no models"}.`);
console.log(
  `${identity.created ? "Created" : "Using"} dev ASAP issuer '${identity.issuer}' (key ${identity.kid}, ${identity.privateKeyPath}).`,
);

const url = `http://localhost:${PORT}`;
const body = JSON.stringify({
  request_id: 1234,
  text: "hello",
  network: "mlp",
  language: "en-US",
  encoding_type: "UTF-8",
});
console.log(`
edge-inference is starting on ${url}
Try:
  curl -s ${url}/api/v1/health
  ${devCurlLine(identity, url, body)}
`);

const child = spawn("npx", ["wrangler", "dev", "--port", PORT, ...process.argv.slice(2)], {
  stdio: "inherit",
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));
