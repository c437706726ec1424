/**
 * `edge-inference online …`: the online-learning API (docs/online.md), each request signed with a
 * fresh ASAP token:
 *   online stream  --file <csv[.gz]> [--model bank] [--batch 100] [--limit N] [--from-row N]
 *   online predict --sample '{"CompanyId": …}' [--n-top k] [--source snapshot|learner]
 *   online metrics [--json]
 *   online create <id> --label-field <f> [--company <f>] [--text <f>] [--amount <f>] [--date <f>]
 *   online reset  [--model bank] --yes
 * Connection options as for every command (docs/cli.md).
 */
import { createReadStream } from "node:fs";
import { access } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { type Command, InvalidArgumentError } from "commander";
import { CliError, Client, EXIT, withConnection } from "./client";
import type { ConnectionFlags } from "./config";
import type { HttpResponse } from "./http";
import { Progress, printJson, sleep } from "./output";

interface OnlineOptions extends ConnectionFlags {
  model: string;
}

/** A request to one of the online model's routes (`/api/v1/models/<model>/<route>`). */
function call(
  client: Client,
  model: string,
  route: string,
  init: { method?: string; body?: string; type?: string } = {},
): Promise<HttpResponse> {
  return client.fetch(init.method ?? "GET", `/api/v1/models/${encodeURIComponent(model)}/${route}`, {
    ...(init.body !== undefined && { body: init.body }),
    ...(init.type !== undefined && { headers: { "content-type": init.type } }),
  });
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number ≥ 0");
  return n;
}

/** One CSV field, quoted when needed (RFC 4180). */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** What `POST /samples` answers. */
interface IngestBody {
  samples_total: number;
  version: number;
  classes_seen: number;
  accuracy_last_1000: number | null;
  snapshot: { version: string } | null;
}

/**
 * Posts one batch, waiting out 429 (`Retry-After`) and retrying 503s a few times. Returns the
 * response body, or throws with the server's explanation.
 */
async function postBatch(client: Client, model: string, body: string, firstRow: number): Promise<IngestBody> {
  for (let attempt = 0; ; attempt++) {
    const res = await call(client, model, "samples", { method: "POST", type: "text/csv", body });
    if (res.ok) return (await res.json()) as IngestBody;
    const retryAfter = Number(res.headers.get("retry-after") ?? "1");
    const wait = (Number.isFinite(retryAfter) ? Math.max(retryAfter, 0.1) : 1) * 1000;
    if (res.status === 429 || (res.status === 503 && attempt < 5)) {
      await res.arrayBuffer();
      process.stderr.write(`\n${res.status}: waiting ${wait / 1000} s (Retry-After)\n`);
      await sleep(wait);
      continue;
    }
    throw await client.failure(res, firstRow);
  }
}

/** A progress line: bar (when the total is known), rows, rate and the server's current metrics. */
function progressLine(
  done: number,
  total: number | undefined,
  startedAt: number,
  last: IngestBody | undefined,
): string {
  const rate = done / Math.max((Date.now() - startedAt) / 1000, 1e-3);
  const width = 24;
  const bar =
    total === undefined
      ? ""
      : `[${"#".repeat(Math.round((width * done) / Math.max(total, 1))).padEnd(width, "-")}] `;
  const acc = last?.accuracy_last_1000;
  return (
    `${bar}${done.toLocaleString("en")}${total === undefined ? "" : `/${total.toLocaleString("en")}`} rows  ` +
    `${Math.round(rate).toLocaleString("en")} rows/s  acc(last 1000) ${acc == null ? "-" : acc.toFixed(4)}  ` +
    `classes ${last?.classes_seen ?? "-"}  v${last?.version ?? "-"}  snapshot ${last?.snapshot?.version ?? "-"}`
  );
}

async function stream(
  client: Client,
  opts: { model: string; file: string; batch: number; limit?: number; fromRow: number },
): Promise<void> {
  await access(opts.file).catch(() => {
    throw new CliError(`cannot read ${opts.file}`, EXIT.error);
  });
  const input = createReadStream(opts.file);
  const source = opts.file.endsWith(".gz") ? input.pipe(createGunzip()) : input;
  // Loaded here: the other commands start faster without it.
  const { parse } = await import("csv-parse");
  const parser = source.pipe(parse({ bom: true, skip_empty_lines: true }));
  let header: string[] | undefined;
  let dataRow = 0; // 0-based index of the next data row
  let sent = 0;
  let batch: string[] = [];
  let batchStart = opts.fromRow; // data row index of batch[0]
  let last: IngestBody | undefined;
  const startedAt = Date.now();
  const progress = new Progress();
  const flush = async () => {
    if (batch.length === 0) return;
    const firstRow = batchStart;
    const body = `${(header as string[]).map(csvField).join(",")}\n${batch.join("\n")}\n`;
    try {
      last = await postBatch(client, opts.model, body, firstRow);
    } catch (error) {
      progress.done();
      const resume = `nothing of data rows ${firstRow}..${firstRow + batch.length - 1} was applied; resume with --from-row ${firstRow}`;
      if (error instanceof CliError)
        throw new CliError(`${error.message}\n${resume}`, error.exitCode, error.problem);
      throw error;
    }
    sent += batch.length;
    batchStart += batch.length;
    batch = [];
    progress.update(progressLine(sent, opts.limit, startedAt, last));
  };
  for await (const record of parser as AsyncIterable<string[]>) {
    if (!header) {
      header = record;
      continue;
    }
    if (dataRow++ < opts.fromRow) continue;
    if (opts.limit !== undefined && sent + batch.length >= opts.limit) break;
    batch.push(record.map(csvField).join(","));
    if (batch.length >= opts.batch) await flush();
  }
  await flush();
  input.destroy();
  progress.done(progressLine(sent, opts.limit, startedAt, last));
  console.log(
    `streamed ${sent} rows (data rows ${opts.fromRow}..${opts.fromRow + sent - 1}); next --from-row ${opts.fromRow + sent}`,
  );
}

/** What `GET /metrics` answers (the parts printed). */
interface MetricsBody {
  model: string;
  version: number;
  samples_total: number;
  classes_seen: number;
  window: Record<string, number | null>;
  snapshot: { version: string; samples: number; created_at: string } | null;
  snapshot_pending_samples: number;
  snapshot_error: string | null;
  series: (Record<string, number | null> & { samples: number })[];
}

const fmt = (v: number | null | undefined) => (v == null ? "-" : v.toFixed(4));

function metricsTable(m: MetricsBody): string {
  const w = m.window;
  const lines = [
    `model ${m.model}  learner version ${m.version}  samples ${m.samples_total.toLocaleString("en")}  classes ${m.classes_seen}`,
    `snapshot ${m.snapshot ? `${m.snapshot.version} (${m.snapshot.samples.toLocaleString("en")} samples, ${m.snapshot.created_at})` : "none yet"}; ${m.snapshot_pending_samples} samples pending${m.snapshot_error ? `; last error: ${m.snapshot_error}` : ""}`,
    "",
    `last ${w.rows ?? 0} predictions (made before learning):`,
    `  accuracy ${fmt(w.accuracy)}`,
    `  precision weighted ${fmt(w.precision_weighted)}  macro ${fmt(w.precision_macro)}`,
    `  recall    weighted ${fmt(w.recall_weighted)}  macro ${fmt(w.recall_macro)}`,
  ];
  if (m.series.length > 0) {
    lines.push("", "samples   accuracy  P_weighted  R_weighted  P_macro  R_macro  classes");
    for (const p of m.series) {
      lines.push(
        `${String(p.samples).padEnd(9)} ${fmt(p.accuracy)}    ${fmt(p.precision_weighted)}      ${fmt(p.recall_weighted)}      ${fmt(p.precision_macro)}   ${fmt(p.recall_macro)}   ${p.classes}`,
      );
    }
  }
  return lines.join("\n");
}

/** Registers `online stream | predict | metrics`. */
export function registerOnlineCommands(program: Command): void {
  const online = program
    .command("online")
    .description("online learning: the bank model or your own (online create); docs/online.md");
  const withModel = (cmd: Command) => withConnection(cmd).option("--model <id>", "online model id", "bank");

  withModel(online.command("stream"))
    .description("stream a CSV (or .csv.gz) of labelled samples to /samples in batches, in file order")
    .requiredOption("--file <path>", "CSV with a header of the model's field names (.gz is decompressed)")
    .option("--batch <n>", "rows per request (≤ the server's ONLINE_MAX_SAMPLES)", positiveInt, 100)
    .option("--limit <n>", "stop after this many rows", positiveInt)
    .option("--from-row <n>", "skip the first n data rows (resume)", positiveInt, 0)
    .action(
      async (opts: OnlineOptions & { file: string; batch: number; limit?: number; fromRow: number }) => {
        if (opts.batch < 1) throw new CliError("--batch must be at least 1", EXIT.usage);
        const client = await Client.create(opts);
        await stream(client, opts);
        console.log(metricsTable(await getMetrics(client, opts.model)));
      },
    );

  withModel(online.command("predict"))
    .description("predict the label of one sample (JSON with the model's company, text and amount fields)")
    .requiredOption("--sample <json>", "the sample as JSON")
    .option("--n-top <k>", "the k best accounts with scores", positiveInt)
    .option("--source <source>", "snapshot (edge, default) or learner", "snapshot")
    .option("--json", "print the service's JSON answer")
    .action(
      async (opts: OnlineOptions & { sample: string; nTop?: number; source: string; json?: boolean }) => {
        const query = new URLSearchParams({ source: opts.source });
        if (opts.nTop !== undefined) query.set("n_top", String(opts.nTop));
        const client = await Client.create(opts);
        const res = await call(client, opts.model, `predict?${query}`, {
          method: "POST",
          type: "application/json",
          body: opts.sample,
        });
        if (!res.ok) throw await client.failure(res);
        const answer = (await res.json()) as unknown;
        if (opts.json) printJson(answer);
        else console.log(JSON.stringify(answer));
        console.error(`model version ${res.headers.get("x-model-version")}`);
      },
    );

  withConnection(online.command("create"))
    .description("create an online model that reads your own field names (POST /api/v1/models, task online)")
    .argument("<id>", "model id (lowercase letters, digits, '-', '_')")
    .option("--label-field <field>", "the label your samples carry (what is predicted)", "AccountNumber")
    .option("--company <field>", "field of the company (or customer) id", "CompanyId")
    .option("--text <field>", "field of the entry's text", "BankEntryText")
    .option("--amount <field>", "field of the amount", "BankEntryAmount")
    .option("--date <field>", "field of the date (optional in samples; not a feature)")
    .option("--label-name <field>", "field of the label's name (optional in samples)")
    .option("--label-type <field>", "field of the label's type (optional in samples)")
    .option("--json", "print the service's JSON answer")
    .action(
      async (
        id: string,
        opts: ConnectionFlags & {
          labelField: string;
          company: string;
          text: string;
          amount: string;
          date?: string;
          labelName?: string;
          labelType?: string;
          json?: boolean;
        },
      ) => {
        const client = await Client.create(opts);
        const { body: answer } = await client.call(
          client.api.POST("/api/v1/models", {
            body: {
              id,
              task: "online",
              label_field: opts.labelField,
              feature_fields: {
                company: opts.company,
                text: opts.text,
                amount: opts.amount,
                ...(opts.date !== undefined && { date: opts.date }),
                ...(opts.labelName !== undefined && { label_name: opts.labelName }),
                ...(opts.labelType !== undefined && { label_type: opts.labelType }),
              },
            },
          }),
        );
        if ("job_id" in answer) {
          throw new CliError("POST /api/v1/models answered a training job, not an online model", EXIT.server);
        }
        const body = answer;
        if (opts.json) return printJson(body);
        console.log(`created online model ${body.id}`);
        console.error(
          `(samples need ${[opts.company, opts.text, opts.amount, opts.labelField].join(", ")}; ` +
            `stream a CSV with \`edge-inference online stream --model ${body.id} --file <csv>\`)`,
        );
      },
    );

  withModel(online.command("reset"))
    .description("the learner forgets everything it learned (POST /api/v1/models/:id/reset; admin)")
    .option("--yes", "confirm")
    .action(async (opts: OnlineOptions & { yes?: boolean }) => {
      if (!opts.yes)
        throw new CliError(`this forgets everything '${opts.model}' learned; add --yes`, EXIT.usage);
      const client = await Client.create(opts);
      await client.call(
        client.api.POST("/api/v1/models/{id}/reset", { params: { path: { id: opts.model } } }),
      );
      console.log(`reset ${opts.model}: weights, samples and metrics start again from nothing`);
    });

  withModel(online.command("metrics"))
    .description("precision/recall/accuracy of the last 1,000 predictions, counters and the series")
    .option("--json", "print the raw JSON")
    .action(async (opts: OnlineOptions & { json?: boolean }) => {
      const m = await getMetrics(await Client.create(opts), opts.model);
      if (opts.json) printJson(m);
      else console.log(metricsTable(m));
    });
}

async function getMetrics(client: Client, model: string): Promise<MetricsBody> {
  const { body } = await client.call(
    client.api.GET("/api/v1/models/{id}/metrics", { params: { path: { id: model } } }),
  );
  // MetricsBody is the slice the table reads (its `series` rows are read by name, `at` aside).
  return body as unknown as MetricsBody;
}
