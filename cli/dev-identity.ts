/**
 * The local development identity used by `npm start`: an issuer with a keypair under `.dev/keys/`
 * (created when missing) whose public key is in local R2.
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
