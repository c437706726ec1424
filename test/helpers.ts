import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { r2Keys } from "../src/inference/manifest";

/** Calls the Worker's own fetch handler (real router, real bindings). */
export function api(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(`http://edge.test${path}`, init));
}

/** POSTs `body` as JSON (a string is sent as-is). */
export function postJson(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return api(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Reads a repository file through the test-only FIXTURES service (see vitest.config.ts). */
export async function fixtureBytes(rel: string): Promise<Uint8Array> {
  const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(`http://fixtures/${rel}`);
  if (!res.ok) throw new Error(`fixture ${rel}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Seeds local R2 with a shipped model from models/<id>/ as version `version` and activates it. */
export async function seedShippedModel(id: string): Promise<{ version: string }> {
  const manifestBytes = await fixtureBytes(`models/${id}/manifest.json`);
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as { version: string };
  await env.MODELS.put(r2Keys.model(id, manifest.version), await fixtureBytes(`models/${id}/model.onnx`));
  await env.MODELS.put(r2Keys.manifest(id, manifest.version), manifestBytes);
  await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: manifest.version }));
  return { version: manifest.version };
}

/** Parses a problem+json response, asserting its content type. */
export async function problem(
  res: Response,
): Promise<{ code: string; status: number; detail: string } & Record<string, unknown>> {
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("application/problem+json"))
    throw new Error(`expected problem+json, got ${type}: ${await res.text()}`);
  return (await res.json()) as { code: string; status: number; detail: string };
}
