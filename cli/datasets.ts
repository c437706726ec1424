/** CLI commands of the datasets API: `datasets upload | list | delete` (training data in R2). */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { CliError, Client, EXIT, withConnection } from "./client";
import type { ConnectionFlags } from "./config";
import { printJson, table, withJson } from "./output";
import { confirm } from "./registry";

interface DatasetView {
  name: string;
  r2_key: string;
  format: string;
  size_bytes: number;
  uploaded_at: string;
  rows?: number;
  columns?: string[];
}

const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

/** Registers `datasets …`. */
export function registerDatasetCommands(program: Command): void {
  const datasets = program.command("datasets").description("training datasets in R2 (datasets/<name>)");

  withJson(withConnection(datasets.command("upload")))
    .description(
      "upload a CSV or JSON Lines file (.gz too), validated by the service (PUT /api/v1/datasets/:name)",
    )
    .argument("<file>", "the dataset: .csv, .jsonl or .ndjson, optionally .gz")
    .option("--name <name>", "dataset name (default: the file name)")
    .option("--columns <a,b>", "columns every row must have, e.g. text,label")
    .action(
      async (file: string, opts: ConnectionFlags & { json?: boolean; name?: string; columns?: string }) => {
        let bytes: Buffer;
        try {
          bytes = await readFile(file);
        } catch {
          throw new CliError(`cannot read ${file}`, EXIT.error);
        }
        const name = opts.name ?? path.basename(file);
        const client = await Client.create(opts);
        process.stderr.write(`uploading ${file} (${kib(bytes.byteLength)}) as ${name}…\n`);
        const { body } = await client.request<DatasetView>(
          "PUT",
          `/api/v1/datasets/${name.split("/").map(encodeURIComponent).join("/")}`,
          {
            body: new Uint8Array(bytes),
            headers: { "content-type": "application/octet-stream" },
            query: { columns: opts.columns },
          },
        );
        if (opts.json) return printJson(body);
        console.log(
          `uploaded ${body.name}: ${body.rows} rows, columns ${body.columns?.join(", ")}; train with --r2-key ${body.r2_key}`,
        );
      },
    );

  withJson(withConnection(datasets.command("list")))
    .description("every dataset (GET /api/v1/datasets)")
    .action(async (opts: ConnectionFlags & { json?: boolean }) => {
      const client = await Client.create(opts);
      const all: DatasetView[] = [];
      let cursor: string | undefined;
      do {
        const { body } = await client.call(
          client.api.GET("/api/v1/datasets", { params: { query: { cursor } } }),
        );
        all.push(...body.datasets);
        cursor = body.next_cursor ?? undefined;
      } while (cursor);
      if (opts.json) return printJson({ datasets: all });
      if (all.length === 0) return console.log("no datasets (upload one with `datasets upload <file>`)");
      console.log(
        table([
          ["name", "format", "size", "uploaded", "r2_key"],
          ...all.map((d) => [d.name, d.format, kib(d.size_bytes), d.uploaded_at, d.r2_key]),
        ]),
      );
    });

  withJson(withConnection(datasets.command("delete")))
    .description("delete a dataset (DELETE /api/v1/datasets/:name)")
    .argument("<name>", "dataset name")
    .option("--yes", "do not ask (required when not on a terminal)")
    .action(async (name: string, opts: ConnectionFlags & { json?: boolean; yes?: boolean }) => {
      if (!opts.yes && !(await confirm(`delete dataset '${name}'?`))) {
        throw new CliError("not deleted: confirm with --yes", EXIT.usage);
      }
      const client = await Client.create(opts);
      const segments = name.split("/");
      const { body } = await client.call(
        segments.length === 2
          ? client.api.DELETE("/api/v1/datasets/{folder}/{id}", {
              params: { path: { folder: segments[0] ?? "", id: segments[1] ?? "" } },
            })
          : client.api.DELETE("/api/v1/datasets/{id}", { params: { path: { id: name } } }),
      );
      if (opts.json) return printJson(body);
      console.log(`deleted ${body.deleted.name}`);
    });
}
