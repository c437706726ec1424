/** Helpers of the registry, job and async-prediction tests: tiny real models, uploads, polling. */
import { vi } from "vitest";
import type { ModelManifest } from "../src/contracts/manifest";
import { FEATURIZER_NAME, FEATURIZER_VERSION } from "../src/featurizer/text";
import { exportModel } from "../src/onnx/text";
import { trainTextModel } from "../src/training/index";
import { api } from "./helpers";

/** Texts of the two classes of the tiny models. */
export const CALM = [
  "what a lovely quiet morning",
  "thanks for the tea and the chat",
  "see you at the park later",
];
export const LOUD = ["buy cheap pills now now now", "win cash prize click here", "free money offer call now"];

/** Labelled rows of the two classes (`calm`/`loud`), `n` of each, alternating (training-job datasets). */
export function labelledRows(n: number): { text: string; label: string }[] {
  const out: { text: string; label: string }[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ text: `${CALM[i % CALM.length]} number ${i}`, label: "calm" });
    out.push({ text: `${LOUD[i % LOUD.length]} offer ${i}`, label: "loud" });
  }
  return out;
}

/**
 * Trains and exports a real binary model (labels `calm`/`loud`, 2^10 buckets) with the project's
 * trainer and exporter. `flip` swaps the classes, so two versions give opposite answers.
 */
export async function tinyModel(
  id: string,
  version: string,
  flip = false,
): Promise<{ manifest: ModelManifest; bytes: Uint8Array }> {
  const rows = [
    ...CALM.flatMap((t) => [t, `${t} again`].map((text) => ({ text, target: flip ? 1 : 0 }))),
    ...LOUD.flatMap((t) => [t, `${t} again`].map((text) => ({ text, target: flip ? 0 : 1 }))),
  ];
  const { quantized } = trainTextModel({
    rows,
    task: "binary",
    labels: ["calm", "loud"],
    spec: {
      name: FEATURIZER_NAME,
      version: FEATURIZER_VERSION,
      buckets: 1024,
      word_ngrams: [1, 1],
      char_ngrams: [3, 3],
      seed: 0,
      tf: "sublinear",
      norm: "l2",
    },
    hyperparameters: { c: 10 },
  });
  const { onnx, manifest } = await exportModel(quantized, { id, version, metrics: { test_accuracy: 1 } });
  return { manifest, bytes: onnx };
}

/**
 * `PUT /api/v1/models/:id/versions/:version` as multipart (`manifest` JSON + `model` bytes, and a
 * `profile` part when given: a string as is, anything else as JSON).
 */
export function upload(
  id: string,
  version: string,
  manifest: unknown,
  bytes: Uint8Array,
  query = "",
  profile?: unknown,
): Promise<Response> {
  const form = new FormData();
  form.append("manifest", JSON.stringify(manifest));
  form.append("model", new Blob([bytes]), "model.onnx");
  if (profile !== undefined)
    form.append("profile", typeof profile === "string" ? profile : JSON.stringify(profile));
  return api(`/api/v1/models/${id}/versions/${version}${query}`, { method: "PUT", body: form });
}

/** Polls `fn` until it returns a value (not undefined), up to 60 s. */
export function waitFor<T>(fn: () => Promise<T | undefined>, timeout = 60_000): Promise<T> {
  return vi.waitUntil(fn, { timeout, interval: 100 }) as Promise<T>;
}

/** Polls `GET path` until its `status` is one of `statuses`; returns the body. */
export function waitForStatus<T extends { status: string }>(
  path: string,
  statuses: readonly string[],
): Promise<T> {
  return waitFor(async () => {
    const res = await api(path);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as T;
    return statuses.includes(body.status) ? body : undefined;
  });
}
