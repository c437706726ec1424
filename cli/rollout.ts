/**
 * CLI commands of safe rollout (docs/rollout.md): `models split <id> 4=90 5=10 | --clear`,
 * `models shadow <id> [5=0.1 …] | --clear` (without versions: the comparisons), `models traffic <id>`.
 */
import type { Command } from "commander";
import { CliError, Client, EXIT, withConnection } from "./client";
import type { ConnectionFlags } from "./config";
import { printJson, table, withJson } from "./output";

/** Parses `version=value` arguments (`what` names the value in errors). */
export function parsePairs(args: readonly string[], what: string): [string, number][] {
  return args.map((arg) => {
    const match = /^([^=\s]+)=([^=\s]+)$/.exec(arg);
    const value = match ? Number(match[2]) : Number.NaN;
    if (!match || !Number.isFinite(value)) {
      throw new CliError(
        `'${arg}' is not VERSION=${what} (e.g. 5=${what === "PERCENT" ? "10" : "0.1"})`,
        EXIT.usage,
      );
    }
    return [match[1] as string, value];
  });
}

interface Comparison {
  serving_version: string;
  requests: number;
  items: number;
  top1_agreement: number | null;
  mean_abs_diff: Record<string, number>;
  flagged_rate_diff: number | null;
  latency_ms: { mean: number; p50: number; p99: number } | null;
  errors: number;
}

const num = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined ? "-" : x.toFixed(digits);

/** Human table of `GET /api/v1/models/:id/shadow`. */
export function shadowTable(report: {
  id: string;
  shadows: { version: string; sample_rate: number; comparisons: Comparison[] }[];
}): string {
  if (report.shadows.length === 0) return `${report.id}: no shadow versions`;
  const rows = [
    ["shadow", "rate", "vs", "requests", "top-1 agree", "mean |diff|", "flagged Δ", "ms mean/p99", "errors"],
  ];
  for (const s of report.shadows) {
    if (s.comparisons.length === 0)
      rows.push([s.version, String(s.sample_rate), "-", "0", "-", "-", "-", "-", "0"]);
    for (const c of s.comparisons) {
      const diffs = Object.values(c.mean_abs_diff);
      rows.push([
        s.version,
        String(s.sample_rate),
        c.serving_version,
        String(c.requests),
        num(c.top1_agreement),
        diffs.length === 0 ? "-" : num(diffs.reduce((a, b) => a + b, 0) / diffs.length),
        num(c.flagged_rate_diff),
        c.latency_ms === null ? "-" : `${c.latency_ms.mean}/${c.latency_ms.p99}`,
        String(c.errors),
      ]);
    }
  }
  return table(rows);
}

/** Registers `models split`, `models shadow` and `models traffic` under `models`. */
export function registerRolloutCommands(models: Command): void {
  withJson(withConnection(models.command("split")))
    .description("send a share of callers to each version, sticky per caller (PUT /api/v1/models/:id/split)")
    .argument("<id>", "model id")
    .argument("[shares...]", "VERSION=PERCENT …, summing to 100 (one version at 100 promotes it)")
    .option("--clear", "clear the split: every caller gets the active version")
    .action(
      async (id: string, shares: string[], opts: ConnectionFlags & { json?: boolean; clear?: boolean }) => {
        if (opts.clear === shares.length > 0) {
          throw new CliError("give VERSION=PERCENT pairs (e.g. 4=90 5=10) or --clear", EXIT.usage);
        }
        const split = Object.fromEntries(parsePairs(shares, "PERCENT"));
        const client = await Client.create(opts);
        const params = { params: { path: { id } } };
        const { body } = await client.call(
          opts.clear
            ? client.api.DELETE("/api/v1/models/{id}/split", params)
            : client.api.PUT("/api/v1/models/{id}/split", { ...params, body: { split } }),
        );
        if (opts.json) printJson(body);
        else if (body.split === null)
          console.log(`${body.id}: every caller gets version ${body.active_version}`);
        else
          console.log(
            `${body.id}: ${Object.entries(body.split)
              .map(([v, p]) => `${v} ${p} %`)
              .join(", ")} of callers (active: ${body.active_version})`,
          );
      },
    );

  withJson(withConnection(models.command("shadow")))
    .description(
      "set shadow versions that also score a sample of requests (PUT /api/v1/models/:id/shadow); without versions, show their comparisons",
    )
    .argument("<id>", "model id")
    .argument("[shadows...]", "VERSION=SAMPLE_RATE …, each rate in (0, 1]")
    .option("--clear", "clear the shadow versions (their comparisons are kept)")
    .action(
      async (id: string, shadows: string[], opts: ConnectionFlags & { json?: boolean; clear?: boolean }) => {
        if (opts.clear && shadows.length > 0)
          throw new CliError("give VERSION=RATE pairs or --clear, not both", EXIT.usage);
        const pairs = parsePairs(shadows, "RATE");
        const client = await Client.create(opts);
        const params = { params: { path: { id } } };
        if (opts.clear || pairs.length > 0) {
          const { body } = await client.call(
            opts.clear
              ? client.api.DELETE("/api/v1/models/{id}/shadow", params)
              : client.api.PUT("/api/v1/models/{id}/shadow", {
                  ...params,
                  body: { shadows: pairs.map(([version, sample_rate]) => ({ version, sample_rate })) },
                }),
          );
          if (opts.json) printJson(body);
          else if (body.shadows.length === 0) console.log(`${body.id}: no shadow versions`);
          else
            console.log(
              `${body.id}: shadows ${body.shadows.map((s) => `${s.version} (${s.sample_rate * 100} % of requests)`).join(", ")}`,
            );
          return;
        }
        const { body } = await client.call(client.api.GET("/api/v1/models/{id}/shadow", params));
        if (opts.json) printJson(body);
        else console.log(shadowTable(body));
      },
    );

  withJson(withConnection(models.command("traffic")))
    .description("requests, errors and latency per version (GET /api/v1/models/:id/traffic)")
    .argument("<id>", "model id")
    .action(async (id: string, opts: ConnectionFlags & { json?: boolean }) => {
      const client = await Client.create(opts);
      const { body } = await client.call(
        client.api.GET("/api/v1/models/{id}/traffic", { params: { path: { id } } }),
      );
      if (opts.json) return printJson(body);
      const rows = [
        ["version", "share", "shadow", "req 1h", "4xx/5xx 1h", "p50/p99 1h", "req 24h", "4xx/5xx 24h"],
      ];
      for (const v of body.versions) {
        const h = v.last_hour;
        const d = v.last_24h;
        rows.push([
          v.version,
          `${v.share} %`,
          v.shadow_sample_rate === null ? "-" : String(v.shadow_sample_rate),
          String(h.requests),
          `${h.errors["4xx"]}/${h.errors["5xx"]}`,
          h.latency_ms === null ? "-" : `${h.latency_ms.p50}/${h.latency_ms.p99} ms`,
          String(d.requests),
          `${d.errors["4xx"]}/${d.errors["5xx"]}`,
        ]);
      }
      console.log(table(rows));
    });
}
