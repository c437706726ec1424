/**
 * A model version uploaded as `multipart/form-data` (`PUT /api/v1/models/:id/versions/:version`):
 * the parts are read (`readModelUpload`), the manifest is completed from the bytes and the URL and
 * validated, and the version is published (`uploadModelVersion`, see `publishModelVersion`).
 */

import type { ModelManifest } from "../contracts/manifest";
import { DEFAULT_OPTIMIZATION_LEVEL, type OptimizationLevel } from "../contracts/manifest";
import { r2Keys } from "../contracts/r2-keys";
import {
  MAX_PROFILE_BYTES,
  profileProblem,
  type ReferenceProfile,
  referenceProfileSchema,
} from "../drift/profile";
import { ApiError } from "../errors";
import { sha256Hex } from "../hash";
import { kindName } from "../inference/kinds";
import { getModelRow, getVersionRow, versionView } from "./db";
import { ensureModelImported } from "./import";
import { publishModelVersion } from "./publish";
import { parseManifest, type SessionMemory } from "./validate";

/** What an upload carries: the manifest fields given (a JSON object) and the ONNX bytes. */
export interface ModelUpload {
  given: Record<string, unknown>;
  bytes: Uint8Array;
  /** The optional `profile` part: the version's reference profile (docs/drift.md), unchecked JSON. */
  profile?: unknown;
}

/**
 * Reads a `multipart/form-data` body (`contentType` with its boundary) with a `manifest` part (a
 * JSON object) and a `model` file part. 400 `invalid_request` for a body that is not such a form,
 * 422 `invalid_model` for a manifest that is not a JSON object.
 */
export async function readModelUpload(body: Uint8Array, contentType: string): Promise<ModelUpload> {
  if (body.byteLength === 0) throw new ApiError("invalid_request", "the upload is empty");
  let form: FormData;
  try {
    form = await new Response(body, { headers: { "content-type": contentType } }).formData();
  } catch (cause) {
    throw new ApiError("invalid_request", "the body is not valid multipart/form-data", { cause });
  }
  // File parts are `File`s at this compatibility date; workers-types still declares `string`.
  const manifestPart = form.get("manifest") as File | string | null;
  const modelPart = form.get("model") as File | string | null;
  if (manifestPart === null || modelPart === null || typeof modelPart === "string") {
    throw new ApiError(
      "invalid_request",
      "the upload needs a 'manifest' part (JSON) and a 'model' file part",
      {
        extensions: { errors: [{ path: manifestPart === null ? "manifest" : "model", message: "missing" }] },
      },
    );
  }
  const bytes = new Uint8Array(await modelPart.arrayBuffer());
  const profilePart = form.get("profile") as File | string | null;
  let profile: unknown;
  if (profilePart !== null) {
    const text = typeof profilePart === "string" ? profilePart : await profilePart.text();
    if (text.length > MAX_PROFILE_BYTES) {
      throw new ApiError("invalid_model", `the 'profile' part exceeds ${MAX_PROFILE_BYTES} bytes`);
    }
    try {
      profile = JSON.parse(text) as unknown;
    } catch {
      throw new ApiError("invalid_model", "the 'profile' part is not JSON");
    }
  }
  try {
    const text = typeof manifestPart === "string" ? manifestPart : await manifestPart.text();
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new Error("not an object");
    return { given: parsed as Record<string, unknown>, bytes, ...(profilePart !== null && { profile }) };
  } catch {
    throw new ApiError("invalid_model", "the 'manifest' part is not a JSON object");
  }
}

/** What `uploadModelVersion` answers (201 when stored, 200 when that exact version already was). */
export interface UploadedVersion {
  id: string;
  version: string;
  sha256: string;
  size_bytes: number;
  /** `kind` of the manifest (`text` for hashed n-grams). */
  kind: NonNullable<ModelManifest["kind"]>;
  active_version: string | null;
  /** ORT's WASM heap around validation (absent when the version already existed). */
  memory?: SessionMemory;
  /** The ORT graph optimization level it runs at (see src/inference/optimization.ts). */
  graph_optimization_level: OptimizationLevel;
  existed: boolean;
}

/**
 * Completes the manifest (`id`/`version` from the URL, which a given one must match; `sha256`,
 * `size_bytes`, `created_at`, `metrics` from the bytes and now unless given), validates the model
 * (422 `invalid_model`) and publishes it, activating it when asked. A `profile` part, when given,
 * must be a reference profile of this model (`checkProfile`) and is stored next to the manifest.
 */
export async function uploadModelVersion(
  env: Env,
  target: { id: string; version: string; activate: boolean },
  upload: ModelUpload,
): Promise<UploadedVersion> {
  const { id, version, activate } = target;
  const { given, bytes } = upload;
  for (const [key, value] of [
    ["id", id],
    ["version", version],
  ] as const) {
    if (given[key] !== undefined && given[key] !== value) {
      throw new ApiError(
        "invalid_model",
        `manifest ${key} '${String(given[key])}' does not match the URL's '${value}'`,
      );
    }
  }
  const manifest = parseManifest({
    sha256: await sha256Hex(bytes),
    size_bytes: bytes.byteLength,
    created_at: new Date().toISOString(),
    metrics: {},
    ...given,
    id,
    version,
  });
  const profile =
    upload.profile === undefined ? undefined : checkProfile(upload.profile, manifest, id, version);
  await ensureModelImported(env, id);
  const existed = (await getVersionRow(env.DB, id, version))?.state === "ready";
  const published = await publishModelVersion(env, { manifest, bytes, activate, source: "upload" });
  const { memory } = published;
  if (profile) await env.MODELS.put(r2Keys.profile(id, version), JSON.stringify(profile));
  const model = await getModelRow(env.DB, id);
  const stored = await getVersionRow(env.DB, id, version);
  return {
    id,
    version,
    sha256: manifest.sha256,
    size_bytes: manifest.size_bytes,
    kind: kindName(manifest),
    active_version: model?.active_version ?? null,
    ...(memory && { memory }),
    graph_optimization_level:
      published.graph_optimization_level ??
      (stored ? versionView(stored).graph_optimization_level : DEFAULT_OPTIMIZATION_LEVEL),
    existed,
  };
}

/**
 * The upload's `profile` part as the version's reference profile (docs/drift.md): a profile in the
 * format of src/drift/profile.ts whose signals this model collects, with their bins; its `model` is
 * set to the URL's. 422 `invalid_model` otherwise; a tensor model takes no profile.
 */
function checkProfile(raw: unknown, manifest: ModelManifest, id: string, version: string): ReferenceProfile {
  const parsed = referenceProfileSchema.safeParse(
    typeof raw === "object" && raw !== null ? { ...raw, model: { id, version } } : raw,
  );
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiError(
      "invalid_model",
      `profile.${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`,
    );
  }
  const kind = kindName(manifest);
  if (kind === "tensor") throw new ApiError("invalid_model", "a tensor model takes no reference profile");
  // A baseline is taken from live traffic only; an uploaded profile is a training reference, which a
  // live window never replaces (a claimed baseline could be reset over, and would be reported as one).
  if (parsed.data.origin === "baseline" || parsed.data.window !== undefined) {
    throw new ApiError(
      "invalid_model",
      'profile.origin: an uploaded profile is a reference of training inputs; drop "origin" and "window" ' +
        `(a baseline of live traffic is set with PUT /api/v1/models/${id}/drift/reference)`,
    );
  }
  const problem = profileProblem(parsed.data, kind === "image" ? "image" : "text", manifest.labels);
  if (problem) throw new ApiError("invalid_model", problem);
  return parsed.data;
}
