/**
 * Where the CLI finds the service and its ASAP identity: flags, then environment variables, then
 * the config file `npm start` writes (`.dev/cli.json`, git-ignored), then the defaults of a local
 * `npm start` (http://localhost:8787, the dev issuer's newest key in .dev/keys/).
 */
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { KEYS_DIR, ROOT } from "./keys";

/** The dev issuer `npm start` creates; wrangler.toml's dev policy allows any issuer with a local key. */
export const DEV_ISSUER = "edge-inference-dev";
/** wrangler.toml's dev `ASAP_AUDIENCE`. */
export const DEV_AUDIENCE = "edge-inference";
/** `wrangler dev`'s default port, used when nothing else names a URL. */
export const DEFAULT_URL = "http://localhost:8787";

/** The config file: `$EDGE_INFERENCE_CONFIG`, else `.dev/cli.json` in the repository. */
export function configPath(): string {
  return process.env.EDGE_INFERENCE_CONFIG || path.join(ROOT, ".dev", "cli.json");
}

/** What the config file holds (every field optional). */
export interface CliConfigFile {
  url?: string;
  issuer?: string;
  /** Key id of `key_file` (or a kid under .dev/keys/ when `key_file` is absent). */
  kid?: string;
  /** Private key (PKCS#8 PEM). */
  key_file?: string;
  aud?: string;
}

/** Connection flags every API command takes. */
export interface ConnectionFlags {
  url?: string;
  issuer?: string;
  /** A kid under .dev/keys/ or a PEM file. */
  key?: string;
  kid?: string;
  aud?: string;
}

/** A resolved connection: base URL, issuer, key reference (+ kid for files outside .dev/keys/), audience. */
export interface Connection {
  url: string;
  issuer: string;
  key: string;
  kid?: string;
  aud: string;
  /** Where the URL came from, for error messages. */
  urlFrom: string;
}

/** Reads the config file; `{}` when it does not exist, an error when it is not valid JSON. */
export async function readConfigFile(file = configPath()): Promise<CliConfigFile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return {};
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as CliConfigFile;
  } catch (error) {
    throw new Error(`${file} is not a JSON object (${(error as Error).message}); delete it or fix it`);
  }
}

/** Writes the config file atomically (private: it names a key file). */
export async function writeConfigFile(config: CliConfigFile, file = configPath()): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** The newest key of `issuer` under .dev/keys/ (what `npm start` creates), as a kid. */
export async function newestDevKid(issuer: string): Promise<string | undefined> {
  const names = await readdir(path.join(KEYS_DIR, issuer)).catch(() => [] as string[]);
  const newest = names
    .filter((n) => n.endsWith(".pem") && !n.endsWith(".pub.pem"))
    .sort()
    .at(-1);
  return newest && `${issuer}/${newest.replace(/\.pem$/, "")}`;
}

/** Resolves flags → environment → config file → defaults. */
export async function resolveConnection(flags: ConnectionFlags): Promise<Connection> {
  const env = process.env;
  const file = await readConfigFile();
  const issuer = flags.issuer ?? env.EDGE_INFERENCE_ISSUER ?? file.issuer ?? DEV_ISSUER;
  // The file's key belongs to the file's issuer; another issuer falls back to its newest dev key.
  const fileKey = file.issuer === undefined || file.issuer === issuer ? file : {};
  const key = flags.key ?? env.EDGE_INFERENCE_KEY ?? fileKey.key_file ?? fileKey.kid;
  const kid = flags.kid ?? env.EDGE_INFERENCE_KID ?? (key === fileKey.key_file ? fileKey.kid : undefined);
  const resolvedKey = key ?? (await newestDevKid(issuer));
  if (!resolvedKey) {
    throw new Error(
      `no key for issuer '${issuer}': run npm start (it creates one and writes ${configPath()}), or pass --key`,
    );
  }
  const [url, urlFrom] =
    flags.url !== undefined
      ? [flags.url, "--url"]
      : env.EDGE_INFERENCE_URL
        ? [env.EDGE_INFERENCE_URL, "EDGE_INFERENCE_URL"]
        : file.url
          ? [file.url, configPath()]
          : [DEFAULT_URL, "the default"];
  return {
    url: url.replace(/\/+$/, ""),
    issuer,
    key: resolvedKey,
    ...(kid !== undefined && { kid }),
    aud: flags.aud ?? env.EDGE_INFERENCE_AUD ?? file.aud ?? DEV_AUDIENCE,
    urlFrom,
  };
}
