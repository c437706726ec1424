/**
 * CLI commands of the prediction and statistics APIs: `predict`, `submit`, `result`, `stats`, and
 * `dashboard` (a one-time login URL of the dashboard).
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { type Command, InvalidArgumentError } from "commander";
import { CliError, Client, EXIT, withConnection } from "./client";
import type { ConnectionFlags } from "./config";
import { type Explanation, formatExplanation, useColour } from "./explain";
import { Progress, printJson, scoreCell, sleep, table, withJson } from "./output";

/**
 * Opens `url` with the platform's opener (`BROWSER`, else xdg-open / open / start); true, or why
 * it could not (no opener, or it exited non-zero: e.g. xdg-open without a desktop).
 */
function openInBrowser(url: string): Promise<true | string> {
  const [command, args] = process.env.BROWSER
    ? [process.env.BROWSER, [url]]
    : process.platform === "darwin"
      ? ["open", [url]]
      : process.platform === "win32"
        ? ["cmd", ["/c", "start", "", url]]
        : ["xdg-open", [url]];
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "ignore" });
    const timer = setTimeout(() => {
      // Still running after 3 s: a browser that stays in the foreground; leave it be.
      child.unref();
      resolve(true);
    }, 3000);
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(`${command}: ${error.code === "ENOENT" ? "not installed" : error.message}`);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? true : `${command} exited ${code}`);
    });
  });
}

/** A whole number ≥ 1 (commander argument parser). */
export function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a whole number ≥ 1");
  return n;
}

interface InputFlags {
  model?: string;
  version?: string;
  nTop?: number;
  image?: string;
  /** `predict --explain [--explain-top k]` only. */
  explain?: boolean;
  explainTop?: number;
}

/** The body of a predict or submit: `text`, `texts` (several arguments) or `image` (a file, base64). */
async function predictBody(texts: string[], opts: InputFlags): Promise<Record<string, unknown>> {
  const common = {
    ...(opts.model !== undefined && { model: opts.model }),
    ...(opts.version !== undefined && { version: opts.version }),
    ...(opts.nTop !== undefined && { n_top: opts.nTop }),
    ...(opts.explain && { explain: true }),
    ...(opts.explainTop !== undefined && { explain_top: opts.explainTop }),
  };
  if (opts.image !== undefined) {
    if (texts.length > 0) throw new CliError("give either --image or text, not both", EXIT.usage);
    let bytes: Buffer;
    try {
      bytes = await readFile(opts.image);
    } catch {
      throw new CliError(`cannot read ${opts.image}`, EXIT.error);
    }
    return { ...common, image: bytes.toString("base64") };
  }
  if (texts.length === 0) throw new CliError("give a text to classify (or --image <file>)", EXIT.usage);
  return texts.length === 1 ? { ...common, text: texts[0] } : { ...common, texts };
}

type LabelScore = { sentiment_type: string; sentiment_score: number };
interface PredictAnswer {
  model?: { id: string; version: string };
  sentiment?: LabelScore[];
  flagged?: string[];
  explanation?: Explanation;
  results?: { sentiment: LabelScore[]; flagged?: string[]; explanation?: Explanation }[];
  predictions?: { label: string; score: number }[];
}

/** Explanation lines of one text: for its flagged labels, else its best-scoring label. */
function explanationLines(
  text: string,
  scores: { label: string; score: number }[],
  flagged: string[] | undefined,
  explanation: Explanation | undefined,
  indent: string,
): string[] {
  if (!explanation) return [];
  const best = [...scores].sort((a, b) => b.score - a.score)[0]?.label;
  const labels = flagged && flagged.length > 0 ? flagged : best !== undefined ? [best] : [];
  return formatExplanation(text, explanation, labels, useColour(), indent);
}

/**
 * The verdict line: the labels at or over their thresholds (`flagged`), "none" when nothing is,
 * and nothing for a model that declares no thresholds (its answer has no `flagged`).
 */
function flaggedLine(flagged: string[] | undefined, indent = ""): string[] {
  if (flagged === undefined) return [];
  return [
    `${indent}flagged: ${flagged.length > 0 ? flagged.join(", ") : "none (no label at or over its threshold)"}`,
  ];
}

/**
 * Human lines of a predict answer (text, batch or image); scores best first, then the verdict
 * (`flagged`). With `thresholds` (--verbose), each label's threshold is shown next to its score.
 */
export function formatPrediction(
  answer: PredictAnswer,
  texts: string[],
  thresholds?: Record<string, number>,
): string {
  const rows = (scores: { label: string; score: number }[]) =>
    table(
      [...scores]
        .sort((a, b) => b.score - a.score)
        .map((s) => {
          const t = thresholds?.[s.label];
          return [
            `  ${s.label}`,
            scoreCell(s.score),
            ...(thresholds
              ? [t === undefined ? "" : `threshold ${t.toFixed(4)}${s.score >= t ? " ✔" : ""}`]
              : []),
          ];
        }),
    );
  const fromSentiment = (s: LabelScore[]) =>
    s.map((x) => ({ label: x.sentiment_type, score: x.sentiment_score }));
  const lines = [`model ${answer.model?.id ?? "?"}@${answer.model?.version ?? "?"}`];
  if (answer.predictions)
    lines.push(
      rows(answer.predictions),
      ...flaggedLine(answer.flagged),
      ...explanationLines(texts[0] ?? "", answer.predictions, answer.flagged, answer.explanation, ""),
    );
  else if (answer.sentiment)
    lines.push(
      rows(fromSentiment(answer.sentiment)),
      ...flaggedLine(answer.flagged),
      ...explanationLines(
        texts[0] ?? "",
        fromSentiment(answer.sentiment),
        answer.flagged,
        answer.explanation,
        "",
      ),
    );
  else {
    (answer.results ?? []).forEach((r, i) => {
      const text = texts[i] ?? "";
      lines.push(`${JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text)}`);
      lines.push(
        rows(fromSentiment(r.sentiment)),
        ...flaggedLine(r.flagged, "  "),
        ...explanationLines(text, fromSentiment(r.sentiment), r.flagged, r.explanation, "  "),
      );
    });
  }
  if (thresholds && Object.keys(thresholds).length === 0)
    lines.push("(this model declares no thresholds: no verdict, only scores)");
  return lines.join("\n");
}

/** The thresholds of the model version that answered (GET /api/v1/models/:id); `{}` when none. */
async function thresholdsOf(
  client: Client,
  model: { id: string; version: string },
): Promise<Record<string, number>> {
  const { body } = await client.call(
    client.api.GET("/api/v1/models/{id}", { params: { path: { id: model.id } } }),
  );
  // The OpenAPI document does not list a version's `thresholds` (docs/models.md does).
  const versions = body.versions as { version: string; thresholds?: Record<string, number> }[];
  return versions.find((v) => v.version === model.version)?.thresholds ?? {};
}

interface PredictionStatus {
  id: string;
  status: "queued" | "running" | "done" | "failed";
  result?: PredictAnswer;
  error?: string;
  model: { id: string; version: string };
}

/** An async prediction's status (GET /api/v1/predictions/:id). */
async function predictionStatus(client: Client, id: string): Promise<PredictionStatus> {
  const { body } = await client.call(
    client.api.GET("/api/v1/predictions/{id}", { params: { path: { id } } }),
  );
  return body as PredictionStatus;
}

/** Polls an async prediction until it is done or failed (or `timeoutS` passes). */
async function waitForPrediction(client: Client, id: string, timeoutS: number): Promise<PredictionStatus> {
  const progress = new Progress();
  const deadline = Date.now() + timeoutS * 1000;
  for (let delay = 200; ; delay = Math.min(delay * 1.5, 2000)) {
    const body = await predictionStatus(client, id);
    if (body.status === "done" || body.status === "failed") {
      progress.done("");
      return body;
    }
    if (Date.now() > deadline) {
      progress.done("");
      throw new CliError(`prediction ${id} is still ${body.status} after ${timeoutS} s`, EXIT.error);
    }
    progress.update(`prediction ${id}: ${body.status}…`);
    await sleep(delay);
  }
}

/** Prints a finished prediction; a failed one exits `EXIT.failed`. */
function reportPrediction(status: PredictionStatus, json: boolean | undefined): void {
  if (json) printJson(status);
  else if (status.status === "done" && status.result) {
    console.log(formatPrediction({ model: status.model, ...status.result }, []));
  } else console.log(`prediction ${status.id}: ${status.status}${status.error ? ` (${status.error})` : ""}`);
  if (status.status === "failed") {
    throw new CliError(`prediction ${status.id} failed: ${status.error ?? "no reason given"}`, EXIT.failed);
  }
}

/** What `GET /api/v1/statistics?api=` answers (the parts printed). */
interface ApiStatistics {
  api: string;
  "number of calls in current minute": number;
  per_minute: number[];
  per_hour: number[];
  status: Record<string, number>;
  avg_latency_ms: number | null;
  callers_current_minute: { caller: string; calls: number }[];
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** One row per API: calls this minute, last hour, last 24 h, status classes, mean latency. */
export function statisticsTable(apis: ApiStatistics[]): string {
  return table([
    ["api", "this minute", "last 60 min", "last 24 h", "2xx", "4xx", "5xx", "avg ms"],
    ...apis.map((a) => [
      a.api,
      String(a["number of calls in current minute"]),
      String(sum(a.per_minute)),
      String(sum(a.per_hour)),
      String(a.status["2xx"] ?? 0),
      String(a.status["4xx"] ?? 0),
      String(a.status["5xx"] ?? 0),
      a.avg_latency_ms === null ? "-" : a.avg_latency_ms.toFixed(1),
    ]),
  ]);
}

/** Registers `predict`, `submit`, `result`, `stats` and `dashboard`. */
export function registerApiCommands(program: Command): void {
  const inputOptions = (cmd: Command) =>
    cmd
      .argument("[text...]", "text(s) to classify; several make one batch request")
      .option("--image <file>", "classify a PNG or JPEG with an image model (e.g. --model digits)")
      .option("--model <id>", "model id (default: the service's DEFAULT_MODEL)")
      .option("--version <version>", "a specific model version (default: the active one)")
      .option("--n-top <k>", "only the k best labels", positive);

  withJson(withConnection(inputOptions(program.command("predict"))))
    .description("classify text(s) or an image now (POST /api/v1/predict); shows the verdict (`flagged`)")
    .option("--verbose", "also each label's threshold (from GET /api/v1/models/:id)")
    .option(
      "--explain",
      "also why: the text highlighted by the n-grams that moved the score (docs/explanations.md)",
    )
    .option("--explain-top <k>", "n-grams shown per label with --explain (default 10)", positive)
    .action(
      async (texts: string[], opts: ConnectionFlags & InputFlags & { json?: boolean; verbose?: boolean }) => {
        const body = await predictBody(texts, opts);
        const client = await Client.create(opts);
        const { body: answer } = await client.call(client.api.POST("/api/v1/predict", { body }));
        if (opts.json) return printJson(answer);
        const thresholds =
          opts.verbose && answer.model ? await thresholdsOf(client, answer.model) : undefined;
        console.log(formatPrediction(answer, texts, thresholds));
      },
    );

  withJson(withConnection(inputOptions(program.command("submit"))))
    .description("queue an async prediction (POST /api/v1/predictions) and print its id")
    .option("--wait", "wait for the result and print it")
    .option("--timeout <s>", "with --wait: give up after this many seconds", positive, 120)
    .action(
      async (
        texts: string[],
        opts: ConnectionFlags & InputFlags & { json?: boolean; wait?: boolean; timeout: number },
      ) => {
        const body = await predictBody(texts, opts);
        const client = await Client.create(opts);
        const { body: queued } = await client.call(client.api.POST("/api/v1/predictions", { body }));
        if (!opts.wait) {
          if (opts.json) printJson(queued);
          else {
            // Only the id on stdout (ID=$(edge-inference submit …) captures it); the hint on stderr.
            console.log(queued.id);
            console.error(`(${queued.status}; \`edge-inference result ${queued.id}\` shows it)`);
          }
          return;
        }
        reportPrediction(await waitForPrediction(client, queued.id, opts.timeout), opts.json);
      },
    );

  withJson(withConnection(program.command("result")))
    .description("status or result of an async prediction (GET /api/v1/predictions/:id)")
    .argument("<id>", "the id `submit` printed")
    .option("--wait", "wait until it is done or failed")
    .option("--timeout <s>", "with --wait: give up after this many seconds", positive, 120)
    .action(
      async (id: string, opts: ConnectionFlags & { json?: boolean; wait?: boolean; timeout: number }) => {
        const client = await Client.create(opts);
        const status = opts.wait
          ? await waitForPrediction(client, id, opts.timeout)
          : await predictionStatus(client, id);
        if (status.status === "queued" || status.status === "running") {
          if (opts.json) printJson(status);
          else console.log(`prediction ${status.id}: ${status.status}`);
          return;
        }
        reportPrediction(status, opts.json);
      },
    );

  withJson(withConnection(program.command("stats")))
    .description("call statistics per API (GET /api/v1/statistics)")
    .option("--api <name>", "one API (e.g. predict), with its callers this minute")
    .action(async (opts: ConnectionFlags & { json?: boolean; api?: string }) => {
      const client = await Client.create(opts);
      if (opts.api !== undefined) {
        const { body } = await client.call(
          client.api.GET("/api/v1/statistics", { params: { query: { api: opts.api } } }),
        );
        if (opts.json) return printJson(body);
        if ("apis" in body) throw new CliError("GET /api/v1/statistics?api= answered every API", EXIT.server);
        console.log(statisticsTable([body]));
        if (body.callers_current_minute.length > 0) {
          console.log(
            `\ncallers this minute:\n${table(body.callers_current_minute.map((c) => [`  ${c.caller}`, String(c.calls)]))}`,
          );
        }
        return;
      }
      const { body } = await client.call(client.api.GET("/api/v1/statistics"));
      if (opts.json) return printJson(body);
      if (!("apis" in body)) throw new CliError("GET /api/v1/statistics answered one API", EXIT.server);
      console.log(`as of ${body.as_of}\n${statisticsTable(body.apis)}`);
    });

  withJson(withConnection(program.command("dashboard")))
    .description("print a one-time login URL of the dashboard (POST /api/v1/dashboard/login)")
    .option("--open", "open it in the browser (xdg-open)")
    .action(async (opts: ConnectionFlags & { json?: boolean; open?: boolean }) => {
      const client = await Client.create(opts);
      let login: { url: string; expires_at: string };
      try {
        login = (await client.call(client.api.POST("/api/v1/dashboard/login"))).body;
      } catch (error) {
        if (error instanceof CliError && error.problem?.code === "route_not_found") {
          throw new CliError(
            `${client.connection.url} has no dashboard (POST /api/v1/dashboard/login answered 404 route_not_found): this version of the service does not serve one`,
            EXIT.notFound,
            error.problem,
          );
        }
        throw error;
      }
      if (opts.json) printJson(login);
      else console.log(login.url);
      console.error(`(one-time link, valid until ${login.expires_at})`);
      if (opts.open) {
        const opened = await openInBrowser(login.url);
        if (opened !== true)
          console.error(`could not open a browser (${opened}); open the URL above yourself`);
      }
    });
}
