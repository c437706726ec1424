/**
 * `edge-inference`: the command-line client of every API, plus local ASAP keys and tokens
 * (docs/cli.md). Built into cli/dist/ by `npm install` (scripts/build-cli.mjs) and run as plain
 * JavaScript, so a command starts in tens of milliseconds.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ASAP_ALGORITHMS, MAX_LIFETIME_S } from "../src/auth/asap";
import { registerApiCommands } from "./api";
import { CliError, Client, EXIT, withConnection } from "./client";
import type { ConnectionFlags } from "./config";
import { registerDatasetCommands } from "./datasets";
import { registerFeedbackCommands } from "./feedback";
import { generateKeyFiles, publishLocal, ROOT } from "./keys";
import { registerOnlineCommands } from "./online";
import { printJson } from "./output";
import { registerModelCommands } from "./registry";

function ttl(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIFETIME_S) {
    throw new InvalidArgumentError(`must be a whole number of seconds in 1..${MAX_LIFETIME_S}`);
  }
  return n;
}

const program = new Command("edge-inference")
  .description(
    "client of the edge-inference service. After `npm start` every command works without flags " +
      "(it writes .dev/cli.json); see docs/cli.md for the options, the config file and exit codes.",
  )
  .version(
    (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version,
    "-V, --version",
    "the CLI's version (package.json)",
  )
  // Program options only before a subcommand: `predict --version 2` is the model version.
  .enablePositionalOptions()
  .showHelpAfterError("(add --help for usage)")
  // Usage errors exit 2 (see the catch below), not commander's 1.
  .exitOverride();

const keys = program.command("keys").description("manage ASAP keypairs");
keys
  .command("generate")
  .description("write a keypair under .dev/keys/ and upload the public key to local R2 (asap-keys/<kid>)")
  .requiredOption("--issuer <iss>", "issuer (iss) that owns the key")
  .addOption(new Option("--alg <alg>", "signature algorithm").choices(ASAP_ALGORITHMS).default("ES256"))
  .option("--kid <kid>", "key id (default <iss>/key-<time>)")
  .option("--dir <dir>", "where to write the keypair (default .dev/keys/)")
  .option("--no-upload", "do not upload the public key to local R2")
  .action(
    async (opts: {
      issuer: string;
      alg: (typeof ASAP_ALGORITHMS)[number];
      kid?: string;
      dir?: string;
      upload: boolean;
    }) => {
      const files = await generateKeyFiles({
        issuer: opts.issuer,
        alg: opts.alg,
        kid: opts.kid,
        dir: opts.dir,
      });
      if (opts.upload) await publishLocal([files]);
      console.log(`kid:         ${files.kid}`);
      console.log(`private key: ${files.privateKeyPath}`);
      console.log(`public key:  ${files.publicKeyPath}${opts.upload ? " (uploaded to local R2)" : ""}`);
    },
  );

withConnection(program.command("token"))
  .description(
    'print a signed ASAP token (fresh jti) for curl: -H "Authorization: Bearer $(edge-inference token)"',
  )
  .option("--ttl <seconds>", `lifetime, at most ${MAX_LIFETIME_S}`, ttl, 60)
  .option("--sub <sub>", "subject (defaults to the issuer on the server)")
  .option("--alg <alg>", "algorithm (default: the key's; RSA keys sign RS256)")
  .action(async (opts: ConnectionFlags & { ttl: number; sub?: string; alg?: string }) => {
    const client = await Client.create(opts, { alg: opts.alg });
    const audience = client.connection.aud
      .split(",")
      .map((a) => a.trim())
      .filter(Boolean);
    console.log(
      await client.token(opts.ttl, {
        audience: audience.length === 1 ? (audience[0] as string) : audience,
        subject: opts.sub,
      }),
    );
  });

registerApiCommands(program);
registerModelCommands(program);
registerDatasetCommands(program);
registerOnlineCommands(program);
registerFeedbackCommands(program);

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CommanderError) {
    // commander has printed the message (or the help / version, which exit 0).
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (error instanceof CliError) {
    console.error(`error: ${error.message}`);
    // Scripts asking for JSON get the service's problem document on stdout too.
    if (error.problem && process.argv.includes("--json")) printJson(error.problem);
    process.exitCode = error.exitCode;
  } else {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = EXIT.error;
  }
}
