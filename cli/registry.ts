/**
 * CLI commands of the registry (`models list | show | upload | activate | delete`) and of training
 * jobs (`train`: creates a job and follows it with a progress bar).
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import type { paths } from "../sdk/src/index";
import { positive } from "./api";
import { CliError, Client, EXIT, withConnection } from "./client";
import type { ConnectionFlags } from "./config";
import { bar, Progress, printJson, sleep, table, withJson } from "./output";
import { registerRolloutCommands } from "./rollout";

interface VersionView {
  version: string;
  state: string;
  source: string;
  kind: string;
  task: string;
  labels: string[];
  metrics: Record<string, number>;
  size_bytes: number;
  created_at: string;
}

interface ModelSummary {
  id: string;
  default: boolean;
  active_version: string | null;
  versions: number;
  kind?: string;
  task?: string;
  labels?: string[];
  metrics?: Record<string, number>;
  size_bytes?: number;
}

interface ModelDetail {
  id: string;
  default: boolean;
  active_version: string | null;
  versions: VersionView[];
  jobs: { id: string; version: string; status: string; created_at: string }[];
}

interface JobView {
  id: string;
  status: "queued" | "running" | "succeeded" | "failed";
  stage: string;
  progress: number;
  model: { id: string; version: string };
  metrics: Record<string, number> | null;
  error: string | null;
  attempts: number;
}

const kib = (n: number | undefined) => (n === undefined ? "-" : `${(n / 1024).toFixed(0)} KiB`);

/** The headline metrics of a version (at most three, 4 decimals). */
function metricsCell(metrics: Record<string, number> | undefined): string {
  const entries = Object.entries(metrics ?? {}).filter(
    ([k, v]) => typeof v === "number" && !/_rows$|_ms$/.test(k),
  );
  // The held-out headline figures of the shipped manifests and of training jobs.
  const preferred = ["test_accuracy", "test_f1_macro", "test_roc_auc", "test_roc_auc_mean", "test_micro_f1"];
  entries.sort(
    ([a], [b]) => (preferred.indexOf(a) + 1 || 99) - (preferred.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  return (
    entries
      .slice(0, 3)
      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
      .join(", ") || "-"
  );
}

/** Human table of `GET /api/v1/models`. */
export function modelsTable(models: ModelSummary[]): string {
  return table([
    ["id", "active", "versions", "kind", "task", "labels", "size", "metrics"],
    ...models.map((m) => [
      `${m.id}${m.default ? " (default)" : ""}`,
      m.active_version ?? "-",
      String(m.versions),
      m.kind ?? "-",
      m.task ?? "-",
      String(m.labels?.length ?? "-"),
      kib(m.size_bytes),
      metricsCell(m.metrics),
    ]),
  ]);
}

function modelDetail(m: ModelDetail): string {
  const lines = [
    `model ${m.id}${m.default ? " (default)" : ""}  active version ${m.active_version ?? "none"}`,
    "",
    table([
      ["", "version", "state", "source", "kind", "task", "labels", "size", "created", "metrics"],
      ...m.versions.map((v) => [
        v.version === m.active_version ? "*" : "",
        v.version,
        v.state,
        v.source,
        v.kind,
        v.task,
        String(v.labels.length),
        kib(v.size_bytes),
        v.created_at,
        metricsCell(v.metrics),
      ]),
    ]),
  ];
  if (m.jobs.length > 0) {
    lines.push("", "jobs:", table(m.jobs.map((j) => [`  ${j.id}`, j.version, j.status, j.created_at])));
  }
  return lines.join("\n");
}

/** Rows of a CSV (header line) or JSON Lines file, for an inline training dataset. */
export async function readRows(file: string): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new CliError(`cannot read ${file}`, EXIT.error);
  }
  if (/\.jsonl?$/i.test(file)) {
    return text
      .split(/\r?\n/)
      .filter((line) => line.trim() !== "")
      .map((line, i) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new CliError(`${file} line ${i + 1} is not JSON`, EXIT.error);
        }
      });
  }
  const { parse } = await import("csv-parse/sync");
  try {
    return parse(text, { columns: true, bom: true, skip_empty_lines: true }) as Record<string, unknown>[];
  } catch (error) {
    throw new CliError(`${file} is not a CSV with a header line: ${(error as Error).message}`, EXIT.error);
  }
}

/** The body of `POST /api/v1/models` (training or an online model). */
type TrainRequest = paths["/api/v1/models"]["post"]["requestBody"]["content"]["application/json"];

/** A training job's status (GET /api/v1/jobs/:id). */
async function jobView(client: Client, id: string): Promise<JobView> {
  const { body } = await client.call(client.api.GET("/api/v1/jobs/{id}", { params: { path: { id } } }));
  return body as JobView;
}

/** Follows a training job with a progress bar until it succeeds or fails. */
async function followJob(client: Client, jobId: string, intervalMs: number): Promise<JobView> {
  const progress = new Progress();
  for (;;) {
    const job = await jobView(client, jobId);
    const line = `${bar(job.progress)} ${Math.round(job.progress * 100)
      .toString()
      .padStart(3)}%  ${job.status} (${job.stage})${job.attempts > 1 ? `, attempt ${job.attempts}` : ""}`;
    if (job.status === "succeeded" || job.status === "failed") {
      progress.done(line);
      return job;
    }
    progress.update(line);
    await sleep(intervalMs);
  }
}

/** Asks "yes" on a terminal; elsewhere `--yes` is required. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** JSON option value (commander parser). */
function jsonObject(value: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(value) as unknown;
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // reported below
  }
  throw new CliError(`'${value.slice(0, 60)}' is not a JSON object`, EXIT.usage);
}

const list = (value: string) =>
  value
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);

/** Registers `models …` and `train`. */
export function registerModelCommands(program: Command): void {
  const models = program.command("models").description("the model registry");
  registerRolloutCommands(models);

  withJson(withConnection(models.command("list")))
    .description("every model with its active version (GET /api/v1/models)")
    .action(async (opts: ConnectionFlags & { json?: boolean }) => {
      const client = await Client.create(opts);
      const { body } = await client.call(client.api.GET("/api/v1/models"));
      if (opts.json) printJson(body);
      else console.log(modelsTable(body.models));
    });

  withJson(withConnection(models.command("show")))
    .description("a model's versions and latest jobs (GET /api/v1/models/:id)")
    .argument("<id>", "model id")
    .action(async (id: string, opts: ConnectionFlags & { json?: boolean }) => {
      const client = await Client.create(opts);
      const { body } = await client.call(client.api.GET("/api/v1/models/{id}", { params: { path: { id } } }));
      if (opts.json) printJson(body);
      else console.log(modelDetail(body));
    });

  withJson(withConnection(models.command("upload")))
    .description("upload a version: an ONNX file and its manifest (PUT /api/v1/models/:id/versions/:version)")
    .argument("<id>", "model id")
    .argument("<version>", "version to create")
    .option("--dir <dir>", "a folder with model.onnx and manifest.json (like models/<id>/)")
    .option("--onnx <file>", "the ONNX model (default <dir>/model.onnx)")
    .option("--manifest <file>", "the manifest JSON (default <dir>/manifest.json)")
    .option("--profile <file>", "the reference profile for drift (default <dir>/profile.json when present)")
    .option("--activate", "serve this version at once")
    .action(
      async (
        id: string,
        version: string,
        opts: ConnectionFlags & {
          json?: boolean;
          dir?: string;
          onnx?: string;
          manifest?: string;
          profile?: string;
          activate?: boolean;
        },
      ) => {
        const onnxFile = opts.onnx ?? (opts.dir && path.join(opts.dir, "model.onnx"));
        const manifestFile = opts.manifest ?? (opts.dir && path.join(opts.dir, "manifest.json"));
        if (!onnxFile || !manifestFile) {
          throw new CliError("give --dir, or both --onnx and --manifest", EXIT.usage);
        }
        const read = (file: string) =>
          readFile(file).catch(() => {
            throw new CliError(`cannot read ${file}`, EXIT.error);
          });
        const manifest = jsonObject((await read(manifestFile)).toString("utf8"));
        // The service fills in what describes the bytes (sha256, size) and insists id/version match
        // the URL, so the manifest of another version (e.g. models/<id>/) is reusable as it is.
        for (const key of ["id", "version", "sha256", "size_bytes", "created_at"]) delete manifest[key];
        const form = new FormData();
        form.set("manifest", JSON.stringify(manifest));
        form.set("model", new Blob([new Uint8Array(await read(onnxFile))]), "model.onnx");
        // The reference profile (docs/drift.md): --profile, else <dir>/profile.json if there is one.
        const dirProfile = opts.dir && path.join(opts.dir, "profile.json");
        const profileText = opts.profile
          ? (await read(opts.profile)).toString("utf8")
          : dirProfile && (await readFile(dirProfile, "utf8").catch(() => undefined));
        if (profileText) form.set("profile", profileText);
        const size = (await stat(onnxFile)).size;
        const client = await Client.create(opts);
        process.stderr.write(`uploading ${onnxFile} (${kib(size)})…\n`);
        const { status, body } = await client.request<{
          id: string;
          version: string;
          sha256: string;
          active_version: string | null;
        }>("PUT", `/api/v1/models/${encodeURIComponent(id)}/versions/${encodeURIComponent(version)}`, {
          body: form,
          query: { activate: opts.activate ? "true" : undefined },
        });
        if (opts.json) return printJson(body);
        console.log(
          `${status === 201 ? "uploaded" : "already there:"} ${body.id}@${body.version} (sha256 ${body.sha256.slice(0, 12)}…); active version ${body.active_version ?? "none"}`,
        );
        if (body.active_version !== body.version) {
          console.error(
            `(not serving: activate it with \`edge-inference models activate ${body.id} ${body.version}\`, or upload with --activate)`,
          );
        }
      },
    );

  withJson(withConnection(models.command("activate")))
    .description("serve another version, or roll back (POST /api/v1/models/:id/activate)")
    .argument("<id>", "model id")
    .argument("<version>", "version to serve")
    .action(async (id: string, version: string, opts: ConnectionFlags & { json?: boolean }) => {
      const client = await Client.create(opts);
      const { body } = await client.call(
        client.api.POST("/api/v1/models/{id}/activate", { params: { path: { id } }, body: { version } }),
      );
      if (opts.json) return printJson(body);
      console.log(
        `${id}: active version ${body.active_version} (was ${body.previous_version ?? "none"}); every isolate serves it within ${body.effective_within_ms} ms`,
      );
    });

  withJson(withConnection(models.command("delete")))
    .description("delete a model, its versions, jobs, predictions and log (DELETE /api/v1/models/:id)")
    .argument("<id>", "model id")
    .option("--yes", "do not ask (required when not on a terminal)")
    .action(async (id: string, opts: ConnectionFlags & { json?: boolean; yes?: boolean }) => {
      if (!opts.yes && !(await confirm(`delete model '${id}' and everything related?`))) {
        throw new CliError(`not deleted: confirm with --yes`, EXIT.usage);
      }
      const client = await Client.create(opts);
      const { body } = await client.call(
        client.api.DELETE("/api/v1/models/{id}", { params: { path: { id } } }),
      );
      if (opts.json) return printJson(body);
      const d = body.deleted;
      console.log(
        `deleted ${id}: ${d.versions} versions, ${d.jobs} jobs, ${d.predictions} predictions, ${d.log_rows} log rows, ${d.r2_objects} R2 objects`,
      );
    });

  withJson(withConnection(program.command("job")))
    .description("a training job's status, progress and metrics (GET /api/v1/jobs/:id)")
    .argument("<id>", "the job id `train` printed")
    .option("--follow", "follow it with a progress bar until it succeeds or fails")
    .option("--interval <ms>", "with --follow: how often to poll", positive, 1000)
    .action(
      async (id: string, opts: ConnectionFlags & { json?: boolean; follow?: boolean; interval: number }) => {
        const client = await Client.create(opts);
        const job = opts.follow ? await followJob(client, id, opts.interval) : await jobView(client, id);
        if (opts.json) printJson(job);
        else {
          console.log(
            `job ${job.id}: ${job.model.id}@${job.model.version} ${job.status} (${job.stage}, ${Math.round(job.progress * 100)}%)${job.metrics ? `; ${metricsCell(job.metrics)}` : ""}${job.error ? `; error: ${job.error}` : ""}`,
          );
        }
        if (job.status === "failed")
          throw new CliError(`job ${job.id} failed: ${job.error ?? "no reason given"}`, EXIT.failed);
      },
    );

  withJson(withConnection(program.command("train")))
    .description("train a model version in the service (POST /api/v1/models) and follow the job")
    .argument("<id>", "model id to create (or a new version of, with --force-update)")
    .requiredOption("--task <task>", "binary, multiclass or multilabel")
    .option("--data <file>", "inline dataset: CSV with a header line, or JSON Lines (≤ 5,000 rows)")
    .option("--r2-key <key>", "a dataset already in R2 under datasets/ (instead of --data)")
    .option("--format <format>", "with --r2-key: csv or jsonl (default: from the key's extension)")
    .requiredOption("--text-field <name>", "column with the text")
    .option("--label-field <name>", "column with the label (binary, multiclass)")
    .option("--label-fields <a,b,…>", "0/1 columns, one per label (multilabel)", list)
    .option("--labels <a,b,…>", "label set and order (default: as found)", list)
    .option("--version <version>", "version to create (default: the next number)")
    .option("--activate", "serve the new version when done (default: only for a new model)")
    .option("--no-activate", "keep serving the current version")
    .option("--force-update", "train a new version of an existing model")
    .option("--feedback", "add the model's labelled feedback to the dataset (docs/rollout.md)")
    .option("--hyperparameters <json>", 'trainer settings, e.g. \'{"c":4,"optimizer":"lbfgs"}\'', jsonObject)
    .option("--featurizer <json>", "featurizer settings, e.g. '{\"buckets\":65536}'", jsonObject)
    .option("--no-follow", "print the job id and return at once")
    .option("--interval <ms>", "how often to poll the job", positive, 1000)
    .action(
      async (
        id: string,
        opts: ConnectionFlags & {
          json?: boolean;
          task: string;
          data?: string;
          r2Key?: string;
          format?: string;
          textField: string;
          labelField?: string;
          labelFields?: string[];
          labels?: string[];
          version?: string;
          activate?: boolean;
          forceUpdate?: boolean;
          feedback?: boolean;
          hyperparameters?: Record<string, unknown>;
          featurizer?: Record<string, unknown>;
          follow: boolean;
          interval: number;
        },
        cmd: Command,
      ) => {
        if ((opts.data === undefined) === (opts.r2Key === undefined)) {
          throw new CliError("give exactly one of --data <file> or --r2-key <key>", EXIT.usage);
        }
        const dataset =
          opts.data !== undefined
            ? { rows: await readRows(opts.data) }
            : { r2_key: opts.r2Key, ...(opts.format !== undefined && { format: opts.format }) };
        const activateSource = cmd.getOptionValueSource("activate");
        const body = {
          id,
          task: opts.task,
          dataset,
          text_field: opts.textField,
          ...(opts.labelField !== undefined && { label_field: opts.labelField }),
          ...(opts.labelFields !== undefined && { label_fields: opts.labelFields }),
          ...(opts.labels !== undefined && { labels: opts.labels }),
          ...(opts.version !== undefined && { version: opts.version }),
          ...(activateSource === "cli" && { activate: opts.activate === true }),
          ...(opts.forceUpdate && { force_update: true }),
          ...(opts.feedback && { feedback: true }),
          ...(opts.hyperparameters && { hyperparameters: opts.hyperparameters }),
          ...(opts.featurizer && { featurizer: opts.featurizer }),
        };
        const client = await Client.create(opts);
        // The service validates the options (e.g. an unknown --task is its 400 with a hint).
        const { body: answer } = await client.call(
          client.api.POST("/api/v1/models", { body: body as TrainRequest }),
        );
        if (!("job_id" in answer)) {
          throw new CliError("POST /api/v1/models answered an online model, not a training job", EXIT.server);
        }
        const created = answer;
        if (!opts.follow) {
          if (opts.json) printJson(created);
          else {
            // Only the id on stdout (JOB=$(edge-inference train … --no-follow)); the hint on stderr.
            console.log(created.job_id);
            console.error(
              `(training ${created.model.id}@${created.model.version}; \`edge-inference job ${created.job_id} --follow\` follows it)`,
            );
          }
          return;
        }
        process.stderr.write(
          `job ${created.job_id}: training ${created.model.id}@${created.model.version}${created.activate ? " (activated when done)" : ""}\n`,
        );
        const job = await followJob(client, created.job_id, opts.interval);
        if (opts.json) printJson(job);
        else if (job.status === "succeeded") {
          console.log(
            `trained ${job.model.id}@${job.model.version}: ${metricsCell(job.metrics ?? undefined)}`,
          );
        }
        if (job.status === "failed") {
          throw new CliError(`job ${job.id} failed: ${job.error ?? "no reason given"}`, EXIT.failed);
        }
      },
    );
}
