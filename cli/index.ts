/**
 * `edge-inference` CLI: local ASAP keys and tokens, and the online-learning client.
 *   keys generate --issuer <iss> [--alg ES256] [--kid <kid>] [--no-upload]
 *   token --issuer <iss> --key <kid|file> --aud <aud[,aud]> [--ttl 60] [--sub <sub>] [--kid <kid>] [--alg <alg>]
 *   stream --file <csv[.gz]> --model bank [--batch 100] [--limit N] [--from-row N]   (see cli/online.ts)
 *   predict --model bank --sample '{…}' [--n-top k]  ·  metrics --model bank [--json]
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { ASAP_ALGORITHMS, MAX_LIFETIME_S, mintToken } from "../src/auth/asap";
import { checkKid, generateKeyFiles, loadSigningKey, publishLocal } from "./keys";
import { registerOnlineCommands } from "./online";

function ttl(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIFETIME_S) {
    throw new InvalidArgumentError(`must be a whole number of seconds in 1..${MAX_LIFETIME_S}`);
  }
  return n;
}

const program = new Command("edge-inference")
  .description("edge-inference developer tools")
  .showHelpAfterError();

const keys = program.command("keys").description("manage ASAP keypairs");
keys
  .command("generate")
  .description("write a keypair under .dev/keys/ and upload the public key to local R2 (asap-keys/<kid>)")
  .requiredOption("--issuer <iss>", "issuer (iss) that owns the key")
  .addOption(new Option("--alg <alg>", "signature algorithm").choices(ASAP_ALGORITHMS).default("ES256"))
  .option("--kid <kid>", "key id (default <iss>/key-<time>)")
  .option("--no-upload", "do not upload the public key to local R2")
  .action(
    async (opts: {
      issuer: string;
      alg: (typeof ASAP_ALGORITHMS)[number];
      kid?: string;
      upload: boolean;
    }) => {
      const files = await generateKeyFiles({ issuer: opts.issuer, alg: opts.alg, kid: opts.kid });
      if (opts.upload) await publishLocal([files]);
      console.log(`kid:         ${files.kid}`);
      console.log(`private key: ${files.privateKeyPath}`);
      console.log(`public key:  ${files.publicKeyPath}${opts.upload ? " (uploaded to local R2)" : ""}`);
    },
  );

program
  .command("token")
  .description("print a signed ASAP token (fresh jti)")
  .requiredOption("--issuer <iss>", "issuer (iss)")
  .requiredOption("--key <kid|file>", "private key: a kid under .dev/keys/ or a PEM file")
  .requiredOption("--aud <aud>", "audience(s), comma-separated")
  .option("--ttl <seconds>", `lifetime, at most ${MAX_LIFETIME_S}`, ttl, 60)
  .option("--sub <sub>", "subject (defaults to the issuer on the server)")
  .option("--kid <kid>", "key id, when --key is a file outside .dev/keys/")
  .option("--alg <alg>", "algorithm (default: inferred from the key; RSA keys sign RS256)")
  .action(
    async (opts: {
      issuer: string;
      key: string;
      aud: string;
      ttl: number;
      sub?: string;
      kid?: string;
      alg?: string;
    }) => {
      const key = await loadSigningKey(opts.key, { kid: opts.kid, alg: opts.alg });
      checkKid(opts.issuer, key.kid);
      const audience = opts.aud
        .split(",")
        .map((a) => a.trim())
        .filter(Boolean);
      const token = await mintToken({
        issuer: opts.issuer,
        kid: key.kid,
        alg: key.alg,
        privateKey: key.privateKey,
        audience: audience.length === 1 ? (audience[0] as string) : audience,
        ttlS: opts.ttl,
        subject: opts.sub,
      });
      console.log(token);
    },
  );

registerOnlineCommands(program);

await program.parseAsync().catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
