/**
 * CLI commands of feedback and live quality (docs/rollout.md): `feedback` records the true label(s)
 * of a prediction (an async prediction's id, or a sync answer's X-Request-Id with --request-id);
 * `models quality <id>` shows live quality per version.
 */
import type { Command } from "commander";
import { CliError, Client, EXIT, withConnection } from "./client";
import type { ConnectionFlags } from "./config";
import { printJson, table, withJson } from "./output";

const labelList = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean),
];

const pct = (x: number | null) => (x === null ? "-" : `${(x * 100).toFixed(1)} %`);

/** Registers `feedback` and `models quality`. */
export function registerFeedbackCommands(program: Command): void {
  withJson(withConnection(program.command("feedback")))
    .description(
      "record the true label(s) of a prediction, once (POST /api/v1/predictions/:id/feedback, POST /api/v1/feedback)",
    )
    .argument("[prediction-id]", "an async prediction's id (or give --request-id)")
    .option("--request-id <id>", "the X-Request-Id of a sync answer")
    .option("--label <labels>", "a true label (repeat, or a,b for multilabel; none: --label '')", labelList)
    .option("--index <n>", "which text of a batch (0-based)", (v) => Number.parseInt(v, 10))
    .option("--text <text>", "the input text, kept for training when the log does not hold it")
    .action(
      async (
        predictionId: string | undefined,
        opts: ConnectionFlags & {
          json?: boolean;
          requestId?: string;
          label?: string[];
          index?: number;
          text?: string;
        },
      ) => {
        if ((predictionId === undefined) === (opts.requestId === undefined)) {
          throw new CliError("give a prediction id or --request-id <X-Request-Id>, not both", EXIT.usage);
        }
        if (opts.label === undefined) throw new CliError("give the true label(s) with --label", EXIT.usage);
        const item = {
          labels: opts.label,
          ...(opts.index !== undefined && { index: opts.index }),
          ...(opts.text !== undefined && { text: opts.text }),
        };
        const client = await Client.create(opts);
        const { status, body } =
          predictionId !== undefined
            ? await client.call(
                client.api.POST("/api/v1/predictions/{id}/feedback", {
                  params: { path: { id: predictionId } },
                  body: item,
                }),
              )
            : await client.call(
                client.api.POST("/api/v1/feedback", {
                  body: { request_id: opts.requestId as string, ...item },
                }),
              );
        if (opts.json) return printJson(body);
        for (const i of body.items) {
          console.log(
            `${status === 201 ? "recorded" : "already recorded:"} ${body.model.id}@${body.model.version} item ${i.index}: ${JSON.stringify(i.labels)} (predicted ${JSON.stringify(i.predicted)}, ${i.correct ? "correct" : "wrong"}${i.text_stored ? ", text kept for training" : ""})`,
          );
        }
      },
    );

  const models = program.commands.find((c) => c.name() === "models");
  if (!models) throw new Error("register the models commands first");
  withJson(withConnection(models.command("quality")))
    .description("live quality per version from feedback (GET /api/v1/models/:id/quality)")
    .argument("<id>", "model id")
    .action(async (id: string, opts: ConnectionFlags & { json?: boolean }) => {
      const client = await Client.create(opts);
      const { body } = await client.call(
        client.api.GET("/api/v1/models/{id}/quality", { params: { path: { id } } }),
      );
      if (opts.json) return printJson(body);
      const rows: string[][] = [
        ["version", "feedback", "accuracy", "label", "precision", "recall", "roc_auc"],
      ];
      for (const v of body.versions) {
        const mark = v.version === body.active_version ? `${v.version} (active)` : v.version;
        if (v.feedback === 0) {
          rows.push([mark, "0", "-", "-", "-", "-", "-"]);
          continue;
        }
        v.labels.forEach((l, k) => {
          rows.push([
            k === 0 ? mark : "",
            k === 0 ? String(v.feedback) : "",
            k === 0 ? pct(v.accuracy) : "",
            l.label,
            pct(l.precision),
            pct(l.recall),
            l.roc_auc === null ? `- (${l.positives}+/${l.negatives}-)` : l.roc_auc.toFixed(4),
          ]);
        });
      }
      console.log(table(rows));
    });
}
