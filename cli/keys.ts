/**
 * Local ASAP key management for development: keypairs on disk under `.dev/keys/` (git-ignored)
 * and public keys in the LOCAL R2 bucket (`wrangler dev`'s `.wrangler/state`) at `asap-keys/<kid>`.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from "jose";
import type { NodeBucket } from "../scripts/local-r2";
import { repoRoot } from "../scripts/repo-root";
import {
  ASAP_ALGORITHMS,
  type AsapAlgorithm,
  isSafeKid,
  PEM_CONTENT_TYPE,
  R2_KEY_PREFIX,
} from "../src/auth/asap";

/**
 * Repository root: the nearest folder above this module with a package.json (this file runs from
 * cli/ under tsx and from the bundle in cli/dist/).
 */
export const ROOT = repoRoot(import.meta.url);
/** Where keypairs are written: `<kid>.pem` (private, PKCS#8) and `<kid>.pub.pem` (SPKI). */
export const KEYS_DIR = path.join(ROOT, ".dev", "keys");

/** A generated keypair on disk. */
export interface KeyFiles {
  issuer: string;
  kid: string;
  alg: AsapAlgorithm;
  privateKeyPath: string;
  publicKeyPath: string;
  publicPem: string;
}

/** A private key ready for `mintToken`. */
export interface SigningKey {
  kid: string;
  alg: AsapAlgorithm;
  privateKey: CryptoKey;
}

/** Checks an issuer and kid against the rules the Worker enforces; throws with a clear message. */
export function checkKid(issuer: string, kid: string): void {
  if (!isSafeKid(`${issuer}/x`)) throw new Error(`issuer '${issuer}' may only use [A-Za-z0-9_.+-/]`);
  if (!isSafeKid(kid) || !kid.startsWith(`${issuer}/`)) {
    throw new Error(`kid '${kid}' must be '${issuer}/<name>' with a path-safe name`);
  }
}

/** Generates a keypair for `issuer` and writes it under `dir` (default `.dev/keys/`). */
export async function generateKeyFiles(options: {
  issuer: string;
  alg?: AsapAlgorithm;
  kid?: string;
  dir?: string;
}): Promise<KeyFiles> {
  const { issuer, alg = "ES256", dir = KEYS_DIR } = options;
  const kid = options.kid ?? `${issuer}/key-${Date.now().toString(36)}`;
  checkKid(issuer, kid);
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const privateKeyPath = path.join(dir, `${kid}.pem`);
  const publicKeyPath = path.join(dir, `${kid}.pub.pem`);
  const publicPem = await exportSPKI(publicKey);
  await mkdir(path.dirname(privateKeyPath), { recursive: true });
  await writeFile(privateKeyPath, await exportPKCS8(privateKey), { mode: 0o600, flag: "wx" });
  await writeFile(publicKeyPath, publicPem, { flag: "wx" });
  return { issuer, kid, alg, privateKeyPath, publicKeyPath, publicPem };
}

/** A public key to publish under its kid. */
export interface PublicKeyEntry {
  kid: string;
  publicPem: string;
}

/** Stores public keys in `bucket` at `asap-keys/<kid>`, where the Worker's `r2` key source looks. */
export async function putPublicKeys(bucket: NodeBucket, keys: PublicKeyEntry[]): Promise<void> {
  for (const { kid, publicPem } of keys) {
    await bucket.put(`${R2_KEY_PREFIX}${kid}`, publicPem, {
      httpMetadata: { contentType: PEM_CONTENT_TYPE },
    });
  }
}

/**
 * Stores public keys in the local R2 bucket (wrangler's `.wrangler/state`). wrangler is imported
 * here, on use, so that commands which do not touch local R2 start fast.
 */
export async function publishLocal(keys: PublicKeyEntry[]): Promise<void> {
  const { withLocalR2 } = await import("../scripts/local-r2");
  return withLocalR2((bucket) => putPublicKeys(bucket, keys));
}

const EC_CURVES: Record<string, AsapAlgorithm> = {
  prime256v1: "ES256",
  secp384r1: "ES384",
  secp521r1: "ES512",
};

/**
 * Parses a private key PEM (PKCS#8, or the SEC1 / PKCS#1 forms openssl writes by default) and
 * returns it as PKCS#8 with its key type; `shown` names the key in errors (as the user gave it).
 */
function parsePrivateKey(pem: string, shown: string): { pkcs8: string; key: KeyObject } {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    const what = /-----BEGIN (PUBLIC KEY|CERTIFICATE)-----/.exec(pem)?.[1];
    throw new Error(
      `${shown} is ${what ? `a ${what.toLowerCase()}, not a private key` : "not a PEM private key"}: ` +
        "give the private key (-----BEGIN PRIVATE KEY-----, PKCS#8), e.g. the .pem that `keys generate` writes (not the .pub.pem)",
    );
  }
  if (/ENCRYPTED/.test(pem)) {
    throw new Error(
      `${shown} is an encrypted private key: decrypt it first, e.g. \`openssl pkcs8 -topk8 -nocrypt -in ${shown} -out key.pem\``,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new Error(
      `${shown} could not be read as a private key (${(error as Error).message}); ` +
        "convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in <key> -out key.pem`",
    );
  }
  return { pkcs8: key.export({ type: "pkcs8", format: "pem" }).toString(), key };
}

/** A key's type for messages: "an EC P-256 key", "an RSA key". */
function keyKind(key: KeyObject): string {
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? "?";
    const name = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" }[curve] ?? curve;
    return `an EC ${name} key`;
  }
  if (key.asymmetricKeyType === "rsa" || key.asymmetricKeyType === "rsa-pss") return "an RSA key";
  return `a ${key.asymmetricKeyType} key`;
}

/** The algorithm a private key signs with: from an EC key's curve, else RS256 (override with `alg`). */
function inferAlg(key: KeyObject, shown: string): AsapAlgorithm {
  if (key.asymmetricKeyType === "ec") {
    const alg = EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
    if (!alg) throw new Error(`${shown}: unsupported EC curve ${key.asymmetricKeyDetails?.namedCurve}`);
    return alg;
  }
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "rsa-pss") return "PS256";
  throw new Error(`${shown}: unsupported key type ${key.asymmetricKeyType}; use an RSA or EC key`);
}

/** Why `alg` cannot sign with `key` (undefined when it can). */
function algMismatch(key: KeyObject, alg: AsapAlgorithm, shown: string, issuer?: string): string | undefined {
  const own = inferAlg(key, shown);
  const ok = alg.startsWith("ES") ? own === alg : !own.startsWith("ES");
  if (ok) return undefined;
  const family = alg.startsWith("ES")
    ? `an EC ${{ ES256: "P-256", ES384: "P-384", ES512: "P-521" }[alg as "ES256"]} key`
    : "an RSA key";
  return (
    `--alg ${alg} needs ${family}, but ${shown} is ${keyKind(key)}, which signs ${own}. ` +
    `Leave out --alg, or make ${family} with \`edge-inference keys generate --issuer ${issuer ?? "<iss>"} --alg ${alg}\``
  );
}

/** Whether `ref` names a file rather than a kid: a path separator at its start, or a key-file suffix. */
function looksLikePath(ref: string): boolean {
  return /^(\.{0,2}\/|~|[A-Za-z]:\\)/.test(ref) || /\.(pem|key|p8)$/i.test(ref);
}

/**
 * Loads a private key by kid (`.dev/keys/<kid>.pem`) or by file path. A file outside `.dev/keys/`
 * needs `kid`; `alg` overrides the algorithm inferred from the key. Errors name the key as given.
 */
export async function loadSigningKey(
  ref: string,
  options: { kid?: string; alg?: string; issuer?: string } = {},
): Promise<SigningKey> {
  const isFile = await stat(ref).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isFile && looksLikePath(ref)) {
    throw new Error(`no private key file at ${ref}; give an existing PEM file, or a kid under .dev/keys/`);
  }
  const file = isFile ? path.resolve(ref) : path.join(KEYS_DIR, `${ref}.pem`);
  const relative = path.relative(KEYS_DIR, file);
  const kid =
    options.kid ?? (isFile ? (relative.startsWith("..") ? undefined : relative.replace(/\.pem$/, "")) : ref);
  if (!kid) throw new Error(`give --kid for a key outside ${KEYS_DIR} (${ref})`);
  let pem: string;
  try {
    pem = await readFile(file, "utf8");
  } catch {
    throw new Error(
      `no key '${ref}' under .dev/keys/ (and no file ${ref}); create one with 'edge-inference keys generate --issuer <iss>', or pass a PEM file`,
    );
  }
  if (options.alg !== undefined && !(ASAP_ALGORITHMS as readonly string[]).includes(options.alg)) {
    throw new Error(`--alg must be one of ${ASAP_ALGORITHMS.join(", ")}`);
  }
  const shown = isFile ? ref : `key '${ref}'`;
  const { pkcs8, key } = parsePrivateKey(pem, shown);
  const alg = (options.alg as AsapAlgorithm | undefined) ?? inferAlg(key, shown);
  const mismatch = algMismatch(key, alg, shown, options.issuer);
  if (mismatch) throw new Error(mismatch);
  return { kid, alg, privateKey: await importPKCS8(pkcs8, alg) };
}
