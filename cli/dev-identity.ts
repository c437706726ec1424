/**
 * The local development identity used by `npm start`: an issuer with a keypair under `.dev/keys/`
 * (created when missing) whose public key is in local R2, plus a ready-to-paste curl line.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { DEV_AUDIENCE, DEV_ISSUER } from "./config";
import { generateKeyFiles, KEYS_DIR, type PublicKeyEntry, publishLocal } from "./keys";

export { DEV_AUDIENCE, DEV_ISSUER };

/** A local issuer and its signing key. */
export interface DevIdentity {
  issuer: string;
  kid: string;
  privateKeyPath: string;
  /** True when this call generated the keypair. */
  created: boolean;
}

/**
 * Ensures `issuer` (default `DEV_ISSUER`) has a keypair under `.dev/keys/<issuer>/` (the newest is
 * used; one is generated when there is none) and (re)uploads its public key with `publish` (default:
 * to local R2), so it survives a wiped `.wrangler/state`.
 */
export async function ensureDevIdentity(
  issuer = DEV_ISSUER,
  publish: (keys: PublicKeyEntry[]) => Promise<void> = publishLocal,
): Promise<DevIdentity> {
  const dir = path.join(KEYS_DIR, issuer);
  const names = await readdir(dir).catch(() => [] as string[]);
  const newest = names
    .filter((n) => n.endsWith(".pem") && !n.endsWith(".pub.pem"))
    .sort()
    .at(-1);
  if (newest) {
    const kid = `${issuer}/${newest.replace(/\.pem$/, "")}`;
    const publicPem = await readFile(path.join(dir, newest.replace(/\.pem$/, ".pub.pem")), "utf8");
    await publish([{ kid, publicPem }]);
    return { issuer, kid, privateKeyPath: path.join(dir, newest), created: false };
  }
  const files = await generateKeyFiles({ issuer });
  await publish([files]);
  return { issuer, kid: files.kid, privateKeyPath: files.privateKeyPath, created: true };
}

/**
 * A curl line for `POST {baseUrl}/api/v1/predict` that mints a fresh token on every run (via
 * `npm run -s cli -- token`, from the repository root), so it can be re-run despite replay protection.
 */
export function devCurlLine(
  identity: DevIdentity,
  baseUrl: string,
  body: string,
  audience = DEV_AUDIENCE,
): string {
  const token = `$(npm run -s cli -- token --issuer ${identity.issuer} --key ${identity.kid} --aud ${audience})`;
  return `curl -s -X POST ${baseUrl}/api/v1/predict -H 'Content-Type: application/json' -H "Authorization: Bearer ${token}" -d '${body}'`;
}
