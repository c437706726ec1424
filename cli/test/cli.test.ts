/**
 * Every CLI command against a real local service (cli/test/service.ts): the built bundle run as a
 * child process, the Worker in workerd with its real bindings, real models and real signed tokens.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { encode } from "fast-png";
import { decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EXIT } from "../client";
import { ISSUER, ROOT, startService, type TestService } from "./service";

let service: TestService;

beforeAll(async () => {
  service = await startService(0); // a free loopback port
});

afterAll(async () => {
  await service?.stop();
});

/** Runs the CLI and expects exit 0; returns stdout. */
async function ok(args: string[], env?: Record<string, string>): Promise<string> {
  const run = await service.cli(args, env);
  expect(run.code, `edge-inference ${args.join(" ")} exited ${run.code}: ${run.stderr}${run.stdout}`).toBe(0);
  return run.stdout;
}

describe("version and keys", () => {
  it("--version prints package.json's version", async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    expect((await ok(["--version"])).trim()).toBe(pkg.version);
  });

  it("--key reports a missing file as given, and explains keys of the wrong kind", async () => {
    const missing = await service.cli(["token", "--key", "/missing.pem"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("no private key file at /missing.pem;");
    expect(missing.stderr).not.toContain(".pem.pem");
    const pub = path.join(service.dir, "public.pem");
    const { publicKey } = await generateKeyPair("ES256", { extractable: true });
    await writeFile(pub, await exportSPKI(publicKey));
    const wrong = await service.cli(["token", "--key", pub, "--kid", `${ISSUER}/x`]);
    expect(wrong.stderr).toContain(`${pub} is a public key, not a private key`);
  });

  it("token --alg PS256 with the EC key explains the mismatch", async () => {
    const run = await service.cli(["token", "--alg", "PS256"]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/--alg PS256 needs an RSA key, but .* is an EC P-256 key, which signs ES256/);
    expect(run.stderr).toMatch(/keys generate --issuer edge-inference-cli-tests --alg PS256/);
  });
});

describe("token", () => {
  it("prints a token of the configured issuer and key, with no flags", async () => {
    const token = (await ok(["token"])).trim();
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "ES256", kid: service.kid });
    expect(decodeJwt(token)).toMatchObject({ iss: ISSUER, aud: "edge-inference" });
  });

  it("takes --aud and --ttl", async () => {
    const claims = decodeJwt((await ok(["token", "--aud", "a,b", "--ttl", "120"])).trim());
    expect(claims.aud).toEqual(["a", "b"]);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120);
  });
});

describe("predict", () => {
  it("classifies one text (human output: model and labels, best first, then the verdict)", async () => {
    const out = await ok(["predict", "you are a wonderful person"]);
    expect(out).toMatch(/^model toxicity@\S+/);
    expect(out).toMatch(/\d\.\d{4} \[/);
    expect(out).toMatch(/^flagged: /m);
    // ("you are a wonderful person" is flagged toxic by toxicity@4, 0.59; "hello there" is not.)
    expect(await ok(["predict", "hello there"])).toMatch(
      /^flagged: none \(no label at or over its threshold\)$/m,
    );
    const flagged = await ok(["predict", "you are a stupid idiot, shut up"]);
    expect(flagged).toMatch(/^flagged: (\w+, )*insult/m);
  });

  it("--verbose shows each label's threshold next to its score", async () => {
    const out = await ok(["predict", "you are a stupid idiot, shut up", "--verbose"]);
    expect(out).toMatch(/^ {2}insult\s+\d\.\d{4} \[[#-]{10}\]\s+threshold 0\.\d{4} ✔$/m);
    expect(out).toMatch(/^flagged: /m);
  });

  it("a model with versions but none active says so (not 'no model named')", async () => {
    const dir = path.join(ROOT, "models", "spam");
    const parked = await service.cli(["models", "upload", "cli-parked", "1", "--dir", dir]);
    expect(parked.stderr).toContain(
      "(not serving: activate it with `edge-inference models activate cli-parked 1`",
    );
    const run = await service.cli(["predict", "hi", "--model", "cli-parked"]);
    expect(run.code).toBe(EXIT.notFound);
    expect(run.stderr).toMatch(/model 'cli-parked' exists but has no active version \(versions: 1\)/);
    expect(run.stderr).toMatch(/edge-inference models activate cli-parked 1/);
    const typo = await service.cli(["predict", "hi", "--model", "toxicty"]);
    expect(typo.stderr).toMatch(/did you mean 'toxicity'\?/);
  });

  it("--json, --n-top and a batch of several texts", async () => {
    const one = JSON.parse(await ok(["predict", "hello there", "--n-top", "1", "--json"]));
    expect(one.sentiment).toHaveLength(1);
    const batch = JSON.parse(await ok(["predict", "first text", "second text", "--model", "spam", "--json"]));
    expect(batch.results).toHaveLength(2);
    expect(batch.model.id).toBe("spam");
  });

  it("--image classifies a PNG with the digits model", async () => {
    const file = path.join(service.dir, "digit.png");
    const data = new Uint8Array(28 * 28);
    for (let y = 4; y < 24; y++) data[y * 28 + 14] = 255; // a vertical stroke
    await writeFile(file, encode({ width: 28, height: 28, data, channels: 1, depth: 8 }));
    const answer = JSON.parse(await ok(["predict", "--image", file, "--model", "digits", "--json"]));
    expect(answer.model.id).toBe("digits");
    expect(answer.predictions.length).toBeGreaterThan(0);
  });

  it("an unknown model exits 5 with the problem's code and detail", async () => {
    const run = await service.cli(["predict", "hi", "--model", "no-such-model"]);
    expect(run.code).toBe(EXIT.notFound);
    expect(run.stderr).toMatch(/404 model_not_found: .*no-such-model/);
  });

  it("--json prints the problem document of a failure on stdout", async () => {
    const run = await service.cli(["predict", "hi", "--model", "no-such-model", "--json"]);
    expect(run.code).toBe(EXIT.notFound);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("a refused request exits 6 (validation)", async () => {
    const run = await service.cli(["predict", "hi", "--n-top", "5000"]);
    expect(run.code).toBe(EXIT.rejected);
    expect(run.stderr).toContain("400 invalid_request");
  });

  it("--explain highlights the text with plain markers when stdout is not a terminal", async () => {
    const out = await ok(["predict", "You are an idiot", "--explain", "--explain-top", "3"]);
    expect(out).toMatch(/^explanation \(exact-linear, exact\):$/m);
    expect(out).toMatch(/^toxic: logit \d+\.\d{3} = bias -?\d+\.\d{3} \+ shown /m);
    // The word n-gram "idiot" (+) covers its characters: marked, not coloured (no TTY).
    expect(out).toContain("[+idiot+]");
    expect(out).not.toContain("\x1b[");
    expect(out).toMatch(/^ {2}\+\d\.\d{3} {2}word idiot$/m);
    const mlp = await ok(["predict", "You are an idiot", "--explain", "--model", "toxicity-mlp"]);
    expect(mlp).toMatch(/^explanation \(linearized, approximate\):$/m);
  });

  it("bad usage exits 2", async () => {
    expect((await service.cli(["predict", "hi", "--no-such-flag"])).code).toBe(EXIT.usage);
    expect((await service.cli(["predict"])).code).toBe(EXIT.usage);
  });
});

describe("connection", () => {
  it("--url overrides the config file; an unreachable service exits 3 and says where the URL came from", async () => {
    const run = await service.cli(["predict", "hi", "--url", "http://127.0.0.1:8869"]);
    expect(run.code).toBe(EXIT.unreachable);
    expect(run.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:8869 .*--url/);
  });

  it("API calls go through the SDK's typed client (bundled from sdk/src); a 2xx that is not JSON exits 7", async () => {
    const inputs = JSON.parse(
      readFileSync(path.join(ROOT, "cli", "dist", "inputs.json"), "utf8"),
    ) as string[];
    expect(inputs).toContain("sdk/src/index.ts");
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("<html>a proxy page</html>");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const run = await service.cli(["stats", "--url", `http://127.0.0.1:${port}`]);
      expect(run.code).toBe(EXIT.server);
      expect(run.stderr).toContain(
        "GET /api/v1/statistics: the answer is not JSON (200): <html>a proxy page",
      );
    } finally {
      server.close();
    }
  });

  it("EDGE_INFERENCE_URL overrides the config file", async () => {
    const run = await service.cli(["stats"], { EDGE_INFERENCE_URL: "http://127.0.0.1:8869" });
    expect(run.code).toBe(EXIT.unreachable);
    expect(run.stderr).toContain("EDGE_INFERENCE_URL");
  });

  it("a server that does not know the key: exit 4 and a hint about the server", async () => {
    const dir = path.join(service.dir, "other-keys");
    await ok([
      "keys",
      "generate",
      "--issuer",
      ISSUER,
      "--kid",
      `${ISSUER}/unknown`,
      "--dir",
      dir,
      "--no-upload",
    ]);
    expect(existsSync(path.join(dir, ISSUER, "unknown.pem"))).toBe(true);
    const run = await service.cli([
      "predict",
      "hi",
      "--key",
      path.join(dir, ISSUER, "unknown.pem"),
      "--kid",
      `${ISSUER}/unknown`,
    ]);
    expect(run.code).toBe(EXIT.auth);
    expect(run.stderr).toContain("401 invalid_token");
    expect(run.stderr).toMatch(/hint: the service at .* does not know key/);
  });
});

describe("async predictions", () => {
  it("submit prints only the id on stdout (hint on stderr); result --wait prints the result", async () => {
    const submitted = await service.cli(["submit", "queued text", "--model", "sentiment"]);
    expect(submitted.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
    expect(submitted.stderr).toMatch(/edge-inference result [0-9a-f-]{36}/);
    const id = submitted.stdout.trim();
    const status = JSON.parse(await ok(["result", id, "--wait", "--json"]));
    expect(status).toMatchObject({ id, status: "done", model: { id: "sentiment" } });
    expect(status.result.sentiment.length).toBeGreaterThan(0);
  });

  it("submit --wait prints the labels", async () => {
    expect(await ok(["submit", "another queued text", "--wait"])).toMatch(/^model toxicity@/);
  });

  it("result of an unknown id exits 5", async () => {
    const run = await service.cli(["result", "00000000-0000-4000-8000-000000000000"]);
    expect(run.code).toBe(EXIT.notFound);
    expect(run.stderr).toContain("prediction_not_found");
  });
});

describe("feedback and quality", () => {
  it("feedback on an async prediction, then models quality shows the version's live quality", async () => {
    const id = (await ok(["submit", "buy cheap pills now", "--model", "spam"])).trim();
    await ok(["result", id, "--wait"]);
    // The log row is written just after the prediction finishes: poll while it is not there yet.
    let run = await service.cli(["feedback", id, "--label", "spam"]);
    for (let i = 0; i < 40 && run.code === EXIT.notFound; i++) {
      await new Promise((r) => setTimeout(r, 250));
      run = await service.cli(["feedback", id, "--label", "spam"]);
    }
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /^recorded spam@\S+ item 0: \["spam"\] \(predicted \["\w+"\], (correct|wrong), text kept for training\)$/m,
    );
    expect(await ok(["feedback", id, "--label", "spam"])).toMatch(/^already recorded: /);
    const conflict = await service.cli(["feedback", id, "--label", "ham"]);
    expect(conflict.code).toBe(EXIT.rejected);
    expect(conflict.stderr).toContain("feedback_conflict");
    const unknown = await service.cli(["feedback", id, "--label", "eggs"]);
    expect(unknown.stderr).toContain("unknown_label");
    const quality = JSON.parse(await ok(["models", "quality", "spam", "--json"]));
    const active = quality.versions.find((v: { version: string }) => v.version === quality.active_version);
    expect(active.feedback).toBeGreaterThanOrEqual(1);
    expect(await ok(["models", "quality", "spam"])).toMatch(/^version\s+feedback\s+accuracy/m);
  });
});

describe("stats", () => {
  it("a table of every API, and one API as JSON", async () => {
    await ok(["predict", "count me"]);
    const table = await ok(["stats"]);
    expect(table).toMatch(/^api\s+this minute/m);
    expect(table).toMatch(/^predict\s+\d+/m);
    const one = JSON.parse(await ok(["stats", "--api", "predict", "--json"]));
    expect(one.api).toBe("predict");
    expect(one.status["2xx"]).toBeGreaterThan(0);
    const unknown = await service.cli(["stats", "--api", "nope"]);
    expect(unknown.code).toBe(EXIT.notFound);
    expect(unknown.stderr).toContain("api_not_found");
  });
});

describe("models", () => {
  it("list and show", async () => {
    expect(await ok(["models", "list"])).toMatch(/^toxicity \(default\)\s+\S+/m);
    const listed = JSON.parse(await ok(["models", "list", "--json"]));
    expect(listed.models.map((m: { id: string }) => m.id)).toContain("spam");
    expect(await ok(["models", "show", "spam"])).toMatch(/^model spam\s+active version \S+/);
  });

  it("upload, activate, delete", async () => {
    const dir = path.join(ROOT, "models", "spam");
    expect(await ok(["models", "upload", "cli-copy", "1", "--dir", dir, "--activate"])).toMatch(
      /^uploaded cli-copy@1 .*active version 1$/m,
    );
    expect(await ok(["models", "upload", "cli-copy", "2", "--dir", dir])).toContain("cli-copy@2");
    // --dir sends the folder's profile.json too (docs/drift.md), stored next to the manifest.
    const profile = await (await service.mf.getR2Bucket("MODELS")).get("models/cli-copy/2/profile.json");
    expect(await profile?.json()).toMatchObject({ model: { id: "cli-copy", version: "2" }, kind: "text" });
    expect(await ok(["models", "activate", "cli-copy", "2"])).toMatch(/active version 2 \(was 1\)/);
    const shown = JSON.parse(await ok(["models", "show", "cli-copy", "--json"]));
    expect(shown.active_version).toBe("2");
    const unconfirmed = await service.cli(["models", "delete", "cli-copy"]);
    expect(unconfirmed.code).toBe(EXIT.usage);
    expect(await ok(["models", "delete", "cli-copy", "--yes"])).toMatch(/^deleted cli-copy: 2 versions/);
    expect((await service.cli(["models", "show", "cli-copy"])).code).toBe(EXIT.notFound);
  });

  it("split, shadow (set, comparisons, clear) and traffic", async () => {
    const dir = path.join(ROOT, "models", "spam");
    await ok(["models", "upload", "cli-roll", "1", "--dir", dir, "--activate"]);
    await ok(["models", "upload", "cli-roll", "2", "--dir", dir]);
    expect(await ok(["models", "split", "cli-roll", "1=90", "2=10"])).toMatch(
      /^cli-roll: 1 90 %, 2 10 % of callers \(active: 1\)$/m,
    );
    const bad = await service.cli(["models", "split", "cli-roll", "1=90", "2=5"]);
    expect(bad.code).toBe(EXIT.rejected);
    expect(bad.stderr).toContain("invalid_split");
    expect((await service.cli(["models", "split", "cli-roll", "1:90"])).code).toBe(EXIT.usage);
    expect(await ok(["models", "split", "cli-roll", "--clear"])).toMatch(/every caller gets version 1/);
    expect(await ok(["models", "shadow", "cli-roll", "2=1"])).toMatch(/shadows 2 \(100 % of requests\)/);
    await ok(["predict", "WINNER!! claim your free prize now", "--model", "cli-roll"]);
    await vi.waitUntil(
      async () => /^2\s+1\s+1\s+1\s+1\.000/m.test(await ok(["models", "shadow", "cli-roll"])),
      { timeout: 20_000, interval: 200 },
    );
    const report = JSON.parse(await ok(["models", "shadow", "cli-roll", "--json"]));
    expect(report.shadows[0].comparisons[0]).toMatchObject({ serving_version: "1", top1_agreement: 1 });
    expect(await ok(["models", "traffic", "cli-roll"])).toMatch(/^1\s+100 %\s+-\s+\d+/m);
    expect(await ok(["models", "shadow", "cli-roll", "--clear"])).toMatch(/no shadow versions/);
    await ok(["models", "delete", "cli-roll", "--yes"]);
  });

  it("a bad upload exits 6 with the service's reason", async () => {
    const run = await service.cli([
      "models",
      "upload",
      "cli-bad",
      "1",
      "--onnx",
      path.join(ROOT, "models", "spam", "manifest.json"),
      "--manifest",
      path.join(ROOT, "models", "spam", "manifest.json"),
    ]);
    expect(run.code).toBe(EXIT.rejected);
    expect(run.stderr).toContain("invalid_model");
  });
});

describe("train", () => {
  it("creates a job from a CSV and follows it to the trained version", async () => {
    const file = path.join(service.dir, "train.csv");
    const words = ["great", "fine", "good", "awful", "bad", "poor"];
    const rows = Array.from({ length: 60 }, (_, i) => {
      const positive = i % 2 === 0;
      return `"${words[(i % 3) + (positive ? 0 : 3)]} item number ${i}",${positive ? "pos" : "neg"}`;
    });
    await writeFile(file, `text,label\n${rows.join("\n")}\n`);
    const run = await service.cli([
      "train",
      "cli-trained",
      "--task",
      "binary",
      "--data",
      file,
      "--text-field",
      "text",
      "--label-field",
      "label",
      "--interval",
      "300",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/job [0-9a-f-]{36}: training cli-trained@1/);
    expect(run.stderr).toMatch(/\[#{24}\] 100%\s+succeeded/);
    expect(run.stdout).toMatch(/^trained cli-trained@1/);
    expect(JSON.parse(await ok(["models", "show", "cli-trained", "--json"])).active_version).toBe("1");
  });

  it("--no-follow prints the job id; job <id> --follow follows it", async () => {
    const file = path.join(service.dir, "train.csv");
    const args = ["train", "cli-trained", "--task", "binary", "--data", file, "--text-field", "text"];
    const out = await ok([...args, "--label-field", "label", "--force-update", "--no-follow"]);
    expect(out).toMatch(/^[0-9a-f-]{36}\n$/); // only the id on stdout
    const id = out.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await ok(["job", id, "--follow", "--interval", "300"])).toMatch(
      new RegExp(`^job ${id}: cli-trained@2 succeeded \\(done, 100%\\)`),
    );
    expect(JSON.parse(await ok(["job", id, "--json"])).status).toBe("succeeded");
  });

  it("a second job for the same model without --force-update is refused (exit 6, model_exists)", async () => {
    const file = path.join(service.dir, "train.csv");
    const args = ["train", "cli-trained", "--task", "binary", "--data", file, "--text-field", "text"];
    const run = await service.cli([...args, "--label-field", "label"]);
    expect(run.code).toBe(EXIT.rejected);
    expect(run.stderr).toContain("409 model_exists");
  });
});

describe("datasets", () => {
  it("upload (validated), list, train from it, delete", async () => {
    const file = path.join(service.dir, "reviews.csv");
    const rows = Array.from(
      { length: 40 },
      (_, i) => `"${i % 2 ? "great" : "awful"} thing ${i}",${i % 2 ? "pos" : "neg"}`,
    );
    await writeFile(file, `text,label\n${rows.join("\n")}\n`);
    expect(await ok(["datasets", "upload", file, "--columns", "text,label"])).toMatch(
      /^uploaded reviews\.csv: 40 rows, columns text, label; train with --r2-key datasets\/reviews\.csv$/m,
    );
    expect(await ok(["datasets", "list"])).toMatch(/^reviews\.csv\s+csv\s+\d+ KiB/m);
    const missing = await service.cli([
      "datasets",
      "upload",
      file,
      "--name",
      "other.csv",
      "--columns",
      "target",
    ]);
    expect(missing.code).toBe(EXIT.rejected);
    expect(missing.stderr).toContain("422 invalid_dataset: the CSV header has no column 'target'");
    const exists = await service.cli(["datasets", "upload", file]);
    expect(exists.code).toBe(EXIT.rejected);
    expect(exists.stderr).toContain("409 dataset_exists");
    const trained = await service.cli([
      "train",
      "cli-from-dataset",
      "--task",
      "binary",
      "--r2-key",
      "datasets/reviews.csv",
      "--text-field",
      "text",
      "--label-field",
      "label",
      "--interval",
      "300",
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout).toMatch(/^trained cli-from-dataset@1/);
    expect(await ok(["datasets", "delete", "reviews.csv", "--yes"])).toBe("deleted reviews.csv\n");
    expect((await service.cli(["datasets", "delete", "reviews.csv", "--yes"])).code).toBe(EXIT.notFound);
  });
});

describe("online", () => {
  it("stream, metrics, predict", async () => {
    const file = path.join(service.dir, "bank.csv");
    const header =
      ",CompanyId,BankEntryDate,BankEntryText,BankEntryAmount,AccountName,AccountNumber,AccountTypeName";
    const rows = Array.from({ length: 30 }, (_, i) => {
      const [text, account] = i % 3 === 0 ? ["rent", "Rent,4000"] : ["food", "Food,5000"];
      return `${i},c${i % 2},2024-01-${10 + (i % 20)},payment ${text} ${i},${10 + i},${account},Expense`;
    });
    await writeFile(file, `${header}\n${rows.join("\n")}\n`);
    const streamed = await ok(["online", "stream", "--file", file, "--batch", "10"]);
    expect(streamed).toContain("streamed 30 rows (data rows 0..29); next --from-row 30");
    const metrics = JSON.parse(await ok(["online", "metrics", "--json"]));
    expect(metrics.samples_total).toBe(30);
    const sample = JSON.stringify({
      CompanyId: "c0",
      BankEntryText: "payment rent 99",
      BankEntryAmount: "12",
    });
    const answer = JSON.parse(
      await ok(["online", "predict", "--sample", sample, "--source", "learner", "--json"]),
    );
    expect(JSON.stringify(answer)).toMatch(/4000|5000/);
  });
});

describe("online models of your own", () => {
  it("create, stream your CSV (no date column), predict keyed by your label, reset", async () => {
    expect(
      await ok([
        "online",
        "create",
        "cli-ledger",
        "--label-field",
        "Account",
        "--company",
        "Customer",
        "--text",
        "Memo",
        "--amount",
        "Sum",
      ]),
    ).toBe("created online model cli-ledger\n");
    const file = path.join(service.dir, "ledger.csv");
    const rows = Array.from({ length: 20 }, (_, i) =>
      i % 2 ? `c1,coffee beans ${i},${5 + i},6100` : `c1,office rent ${i},${900 + i},4000`,
    );
    await writeFile(file, `Customer,Memo,Sum,Account\n${rows.join("\n")}\n`);
    expect(await ok(["online", "stream", "--model", "cli-ledger", "--file", file])).toContain(
      "streamed 20 rows",
    );
    const answer = JSON.parse(
      await ok([
        "online",
        "predict",
        "--model",
        "cli-ledger",
        "--sample",
        JSON.stringify({ Customer: "c1", Memo: "office rent 99", Sum: "950" }),
        "--source",
        "learner",
        "--n-top",
        "1",
        "--json",
      ]),
    );
    expect(answer).toEqual([{ Account: "4000", score: expect.any(Number) }]);
    expect((await service.cli(["online", "reset", "--model", "cli-ledger"])).code).toBe(EXIT.usage);
    expect(await ok(["online", "reset", "--model", "cli-ledger", "--yes"])).toMatch(/^reset cli-ledger/);
    expect(JSON.parse(await ok(["online", "metrics", "--model", "cli-ledger", "--json"])).samples_total).toBe(
      0,
    );
  });
});

describe("dashboard", () => {
  // The route is another branch's work: until it is merged the command must report its absence.
  const hasRoute = readFileSync(path.join(ROOT, "src", "router.ts"), "utf8").includes(
    "/api/v1/dashboard/login",
  );

  it.skipIf(hasRoute)("reports clearly that this service has no dashboard route (404, exit 5)", async () => {
    const run = await service.cli(["dashboard"]);
    expect(run.code).toBe(EXIT.notFound);
    expect(run.stderr).toMatch(/has no dashboard .*404 route_not_found/);
  });

  it.runIf(hasRoute)("prints the one-time login URL and its expiry", async () => {
    const login = JSON.parse(await ok(["dashboard", "--json"]));
    expect(new URL(login.url).protocol).toMatch(/^https?:$/);
    expect(Number.isNaN(Date.parse(login.expires_at))).toBe(false);
    const run = await service.cli(["dashboard"]);
    expect(run.stdout).toMatch(/^https?:\/\/\S+\n$/);
    expect(run.stderr).toMatch(/^\(one-time link, valid until \S+\)\n$/);
  });

  it.runIf(hasRoute)(
    "--open without a browser still prints the URL and says it could not open one",
    async () => {
      const run = await service.cli(["dashboard", "--open"], { BROWSER: "false" });
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^https?:\/\/\S+\/dashboard\/login\S*\n$/);
      expect(run.stderr).toMatch(/could not open a browser \(false exited 1\); open the URL above yourself/);
    },
  );
});
