/**
 * `edge-inference` commands of the online-learning API (docs/online.md), each request
 * signed with a fresh ASAP token:
 *   stream  --file <csv[.gz]> --model bank [--batch 100] [--limit N] [--from-row N]
 *   predict --model bank --sample '{"CompanyId": …}' [--n-top k] [--source snapshot|learner]
 *   metrics --model bank [--json]
 * Common: --url (default $EDGE_INFERENCE_URL or http://localhost:8787), --issuer / --key (default:
 * the `npm start` dev identity in .dev/keys/), --aud (default edge-inference).
 */
import { createReadStream } from "node:fs";
import { access, readdir } from "node:fs/promises";
import path from "node:path";
import { createGunzip } from "node:zlib";
import { type Command, InvalidArgumentError } from "commander";
import { parse } from "csv-parse";
import { mintToken } from "../src/auth/asap";
import { DEV_AUDIENCE, DEV_ISSUER } from "./dev-identity";
import { checkKid, KEYS_DIR, loadSigningKey, type SigningKey } from "./keys";

interface ConnectionOptions {
  url: string;
  issuer: string;
  key?: string;
  aud: string;
  model: string;
}

/** Signs requests to the service with fresh tokens (replay protection forbids reusing one). */
class Client {
  private constructor(
    private readonly opts: ConnectionOptions,
    private readonly key: SigningKey,
  ) {}

  static async create(opts: ConnectionOptions): Promise<Client> {
    const ref = opts.key ?? (await newestDevKid(opts.issuer));
    const key = await loadSigningKey(ref);
    checkKid(opts.issuer, key.kid);
    return new Client(opts, key);
  }

  /** `fetch` of `path` under the model's routes with a fresh bearer token. */
  async call(route: string, init: RequestInit = {}): Promise<Response> {
    const token = await mintToken({
      issuer: this.opts.issuer,
      kid: this.key.kid,
      alg: this.key.alg,
      privateKey: this.key.privateKey,
      audience: this.opts.aud,
      ttlS: 60,
    });
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${token}`);
    const base = this.opts.url.replace(/\/+$/, "");
    return fetch(`${base}/api/v1/models/${encodeURIComponent(this.opts.model)}/${route}`, {
      ...init,
      headers,
    });
  }
}

/** The newest key of `issuer` under .dev/keys/ (what `npm start` creates). */
async function newestDevKid(issuer: string): Promise<string> {
  const names = await readdir(path.join(KEYS_DIR, issuer)).catch(() => [] as string[]);
  const newest = names
    .filter((n) => n.endsWith(".pem") && !n.endsWith(".pub.pem"))
    .sort()
    .at(-1);
  if (!newest) throw new Error(`no key for issuer '${issuer}' in ${KEYS_DIR}: run npm start, or pass --key`);
  return `${issuer}/${newest.replace(/\.pem$/, "")}`;
}

/** Problem+json detail (and the first row errors) of a failed response, for messages. */
async function describeFailure(res: Response, firstRow = 0): Promise<string> {
  const text = await res.text();
  try {
    const p = JSON.parse(text) as {
      code?: string;
      detail?: string;
      errors?: { row?: number; path: string; message: string }[];
    };
    const rows = (p.errors ?? [])
      .filter((e) => typeof e.row === "number" && e.row > 0)
      .slice(0, 5)
      .map(
        (e) =>
          `\n  data row ${firstRow + (e.row as number) - 1} (request row ${e.row}) ${e.path}: ${e.message}`,
      )
      .join("");
    return `${res.status} ${p.code ?? ""}: ${p.detail ?? text}${rows}`;
  } catch {
    return `${res.status}: ${text.slice(0, 500)}`;
  }
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
async function postBatch(client: Client, body: string, firstRow: number): Promise<IngestBody> {
  for (let attempt = 0; ; attempt++) {
    const res = await client.call("samples", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body,
    });
    if (res.ok) return (await res.json()) as IngestBody;
    const retryAfter = Number(res.headers.get("retry-after") ?? "1");
    const wait = (Number.isFinite(retryAfter) ? Math.max(retryAfter, 0.1) : 1) * 1000;
    if (res.status === 429 || (res.status === 503 && attempt < 5)) {
      await res.arrayBuffer();
      process.stderr.write(`\n${res.status}: waiting ${wait / 1000} s (Retry-After)\n`);
      await sleep(wait);
      continue;
    }
    throw new Error(await describeFailure(res, firstRow));
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
  opts: { file: string; batch: number; limit?: number; fromRow: number },
): Promise<void> {
  await access(opts.file).catch(() => {
    throw new Error(`cannot read ${opts.file}`);
  });
  const input = createReadStream(opts.file);
  const source = opts.file.endsWith(".gz") ? input.pipe(createGunzip()) : input;
  const parser = source.pipe(parse({ bom: true, skip_empty_lines: true }));
  let header: string[] | undefined;
  let dataRow = 0; // 0-based index of the next data row
  let sent = 0;
  let batch: string[] = [];
  let batchStart = opts.fromRow; // data row index of batch[0]
  let last: IngestBody | undefined;
  const startedAt = Date.now();
  const tty = process.stderr.isTTY;
  let batches = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const firstRow = batchStart;
    const body = `${(header as string[]).map(csvField).join(",")}\n${batch.join("\n")}\n`;
    try {
      last = await postBatch(client, body, firstRow);
    } catch (error) {
      process.stderr.write("\n");
      throw new Error(
        `${(error as Error).message}\nnothing of data rows ${firstRow}..${firstRow + batch.length - 1} was applied; resume with --from-row ${firstRow}`,
      );
    }
    sent += batch.length;
    batchStart += batch.length;
    batch = [];
    batches++;
    const line = progressLine(sent, opts.limit, startedAt, last);
    if (tty) process.stderr.write(`\r${line}`);
    else if (batches % 10 === 0) process.stderr.write(`${line}\n`);
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
  if (tty) process.stderr.write("\n");
  else if (batches % 10 !== 0) process.stderr.write(`${progressLine(sent, opts.limit, startedAt, last)}\n`);
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

/** Registers `stream`, `predict` and `metrics` on `program`. */
export function registerOnlineCommands(program: Command): void {
  const withConnection = (cmd: Command) =>
    cmd
      .option("--model <id>", "online model id", "bank")
      .option("--url <url>", "service base URL", process.env.EDGE_INFERENCE_URL ?? "http://localhost:8787")
      .option("--issuer <iss>", "ASAP issuer", DEV_ISSUER)
      .option("--key <kid|file>", "private key (default: the issuer's newest key in .dev/keys/)")
      .option("--aud <aud>", "ASAP audience", DEV_AUDIENCE);

  withConnection(program.command("stream"))
    .description("stream a CSV (or .csv.gz) of labelled samples to /samples in batches, in file order")
    .requiredOption("--file <path>", "CSV with the dataset's header (.gz is decompressed)")
    .option("--batch <n>", "rows per request (≤ the server's ONLINE_MAX_SAMPLES)", positiveInt, 100)
    .option("--limit <n>", "stop after this many rows", positiveInt)
    .option("--from-row <n>", "skip the first n data rows (resume)", positiveInt, 0)
    .action(
      async (opts: ConnectionOptions & { file: string; batch: number; limit?: number; fromRow: number }) => {
        if (opts.batch < 1) throw new Error("--batch must be at least 1");
        const client = await Client.create(opts);
        await stream(client, opts);
        console.log(metricsTable(await getMetrics(client)));
      },
    );

  withConnection(program.command("predict"))
    .description("predict the account of one sample (JSON with CompanyId, BankEntryText, BankEntryAmount)")
    .requiredOption("--sample <json>", "the sample as JSON")
    .option("--n-top <k>", "the k best accounts with scores", positiveInt)
    .option("--source <source>", "snapshot (edge, default) or learner", "snapshot")
    .action(async (opts: ConnectionOptions & { sample: string; nTop?: number; source: string }) => {
      const query = new URLSearchParams({ source: opts.source });
      if (opts.nTop !== undefined) query.set("n_top", String(opts.nTop));
      const res = await (await Client.create(opts)).call(`predict?${query}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: opts.sample,
      });
      if (!res.ok) throw new Error(await describeFailure(res));
      console.log(JSON.stringify(await res.json()));
      console.error(`model version ${res.headers.get("x-model-version")}`);
    });

  withConnection(program.command("metrics"))
    .description("precision/recall/accuracy of the last 1,000 predictions, counters and the series")
    .option("--json", "print the raw JSON")
    .action(async (opts: ConnectionOptions & { json?: boolean }) => {
      const m = await getMetrics(await Client.create(opts));
      console.log(opts.json ? JSON.stringify(m, null, 2) : metricsTable(m));
    });
}

async function getMetrics(client: Client): Promise<MetricsBody> {
  const res = await client.call("metrics");
  if (!res.ok) throw new Error(await describeFailure(res));
  return (await res.json()) as MetricsBody;
}
