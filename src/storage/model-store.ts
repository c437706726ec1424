import { BoundedMap } from "../bounded-map";
import {
  type ActivePointer,
  activePointerSchema,
  MODEL_ID_RE,
  MODEL_VERSION_RE,
  type ModelManifest,
  manifestSchema,
} from "../contracts/manifest";
import { r2Keys } from "../contracts/r2-keys";
import type { Split } from "../contracts/rollout";
import { ApiError } from "../errors";
import { sha256Hex } from "../hash";
import { closest, didYouMean } from "../suggest";

const activeCache = new Map<string, { pointer: ActivePointer; until: number }>();
const MANIFEST_CACHE_MAX = 256;
const manifestCache = new BoundedMap<string, { manifest: ModelManifest; etag: string; until: number }>(
  MANIFEST_CACHE_MAX,
);
const staleListeners: ((id: string, version: string) => void)[] = [];

/**
 * Registers `listener`, called with a model id and version this isolate should stop holding: the
 * active pointer moved away from it, the model or version is gone, or its bytes changed. The
 * session cache uses it to release the old session (once no request still runs on it).
 */
export function onStaleVersion(listener: (id: string, version: string) => void): void {
  staleListeners.push(listener);
}

function stale(id: string, version: string): void {
  for (const listener of staleListeners) listener(id, version);
}

/**
 * Forgets what this isolate cached about model `id` (pointer and manifests) and reports each of
 * `staleVersions` to the `onStaleVersion` listeners. Registry writes call it so the isolate that
 * made a change sees it at once; other isolates see it within `ACTIVE_POINTER_TTL_MS`.
 */
export function invalidateModel(id: string, staleVersions: readonly string[]): void {
  activeCache.delete(id);
  for (const key of [...manifestCache.keys()]) if (key.startsWith(`${id}@`)) manifestCache.delete(key);
  for (const version of staleVersions) stale(id, version);
}

/**
 * Resolves which version of model `id` to serve: `version` when given (it must exist); else, when
 * the model has a traffic split and `assign` is given (the scoring core's `chooseVersion` passes
 * one for a request that names its caller), the version `assign` picks from the split; else the
 * model's active version. The pointer is cached per isolate for `ttlMs`, which bounds how long an
 * isolate keeps serving a previous version (or split) after a switch.
 */
export async function resolveVersion(
  bucket: R2Bucket,
  id: string,
  version: string | undefined,
  ttlMs: number,
  assign?: (split: Split) => Promise<string>,
): Promise<string> {
  if (!MODEL_ID_RE.test(id)) throw await modelNotFound(bucket, id);
  if (version !== undefined) {
    if (!MODEL_VERSION_RE.test(version)) {
      throw new ApiError("model_version_not_found", `model '${id}' has no version '${version}'`);
    }
    return version;
  }
  const pointer = await readActivePointer(bucket, id, ttlMs);
  if (pointer.split !== undefined && assign !== undefined) return assign(pointer.split);
  return pointer.version;
}

/** The versions a pointer keeps in use: the active one, the split's and the shadows'. */
export function versionsInUse(pointer: ActivePointer): Set<string> {
  return new Set([
    pointer.version,
    ...Object.keys(pointer.split ?? {}),
    ...(pointer.shadows ?? []).map((s) => s.version),
  ]);
}

/**
 * The active pointer of model `id` (active version, split, shadows), cached per isolate for
 * `ttlMs`; 404 when the model has none, 503 when R2 cannot be read and nothing is cached.
 */
export async function readActivePointer(bucket: R2Bucket, id: string, ttlMs: number): Promise<ActivePointer> {
  const pointer = await activePointerOrNull(bucket, id, ttlMs);
  if (pointer === null) throw await modelNotFound(bucket, id);
  return pointer;
}

/** `readActivePointer`, but null (and no 404 to build) when the model has no pointer. */
export async function activePointerOrNull(
  bucket: R2Bucket,
  id: string,
  ttlMs: number,
): Promise<ActivePointer | null> {
  const now = Date.now();
  const hit = activeCache.get(id);
  if (hit && hit.until > now) return hit.pointer;
  let object: R2ObjectBody | null;
  try {
    object = await getOrUnavailable(bucket, r2Keys.active(id), id);
  } catch (error) {
    // R2 unreachable: keep serving the version this isolate last saw (stale-if-error), for another
    // TTL, so a loaded model survives an outage; with nothing cached, the request gets the 503.
    if (!hit) throw error;
    hit.until = now + ttlMs;
    return hit.pointer;
  }
  if (!object) {
    if (hit) invalidateModel(id, [...versionsInUse(hit.pointer)]);
    return null;
  }
  const parsed = activePointerSchema.safeParse(await parseJsonOrNull(object));
  if (!parsed.success) {
    throw new ApiError("model_unavailable", `model '${id}' has a corrupt active-version pointer`);
  }
  activeCache.set(id, { pointer: parsed.data, until: now + ttlMs });
  // The pointer moved (activation, rollback, a new split elsewhere): release the sessions of the
  // versions it no longer uses.
  if (hit) {
    const inUse = versionsInUse(parsed.data);
    for (const version of versionsInUse(hit.pointer)) if (!inUse.has(version)) stale(id, version);
  }
  return parsed.data;
}

/**
 * The 404 of a model id without an active pointer, saying how to fix it (error path only: one or
 * two R2 lists): a model whose versions exist but none is active says so and how to activate one;
 * otherwise the closest model ids are suggested (`suggestions`).
 */
export async function modelNotFound(bucket: R2Bucket, id: string): Promise<ApiError> {
  const shown = id.slice(0, 80);
  try {
    if (MODEL_ID_RE.test(id)) {
      const listed = await bucket.list({ prefix: `models/${id}/`, delimiter: "/" });
      const versions = listed.delimitedPrefixes
        .map((p) => p.slice(`models/${id}/`.length, -1))
        .filter((v) => MODEL_VERSION_RE.test(v));
      if (versions.length > 0) {
        return new ApiError(
          "model_not_found",
          `model '${id}' exists but has no active version (versions: ${versions.slice(0, 10).join(", ")}): ` +
            `activate one with POST /api/v1/models/${id}/activate {"version": "…"} ` +
            `(CLI: edge-inference models activate ${id} ${versions.at(-1)}), or name one with "version"`,
          { extensions: { versions, active_version: null } },
        );
      }
    }
    const ids = (await bucket.list({ prefix: "models/", delimiter: "/" })).delimitedPrefixes.map((p) =>
      p.slice("models/".length, -1),
    );
    const suggestions = closest(id, ids);
    return new ApiError(
      "model_not_found",
      `no model named '${shown}'${didYouMean(suggestions)} (GET /api/v1/models lists the models)`,
      { extensions: { suggestions } },
    );
  } catch {
    return new ApiError("model_not_found", `no model named '${shown}'`);
  }
}

/**
 * Reads and validates the manifest of `id`@`version`, cached per isolate for `ttlMs`: a version's
 * manifest never changes while it exists, but the registry can delete it (and a new upload reuse
 * the name), so an isolate re-checks at most every `ttlMs`.
 */
export async function getManifest(
  bucket: R2Bucket,
  id: string,
  version: string,
  ttlMs = Number.POSITIVE_INFINITY,
): Promise<ModelManifest> {
  const cacheKey = `${id}@${version}`;
  const now = Date.now();
  const hit = manifestCache.get(cacheKey);
  if (hit && hit.until > now) return hit.manifest;
  if (hit) {
    // Expired: a HEAD tells whether the version is still the one cached; if R2 cannot say, the
    // cached manifest keeps serving (stale-if-error, as the pointer above).
    const head = await headOrUnavailable(bucket, r2Keys.manifest(id, version), id).catch(() => hit);
    if (head?.etag === hit.etag) {
      hit.until = now + ttlMs;
      return hit.manifest;
    }
    manifestCache.delete(cacheKey);
    stale(id, version);
  }
  const object = await getOrUnavailable(bucket, r2Keys.manifest(id, version), id);
  if (!object) {
    // Tell "no such model" from "no such version" with one cheap extra lookup.
    const anyVersion = await bucket.head(r2Keys.active(id));
    if (!anyVersion) throw await modelNotFound(bucket, id);
    throw new ApiError("model_version_not_found", `model '${id}' has no version '${version}'`);
  }
  const parsed = manifestSchema.safeParse(await parseJsonOrNull(object));
  if (!parsed.success || parsed.data.id !== id || parsed.data.version !== version) {
    throw new ApiError("model_unavailable", `model '${id}' version '${version}' has an invalid manifest`);
  }
  manifestCache.set(cacheKey, { manifest: parsed.data, etag: object.etag, until: now + ttlMs });
  return parsed.data;
}

/**
 * Reads the ONNX bytes of a manifest's version and checks them against the manifest's size limit
 * and sha256 before anything parses them.
 */
export async function getModelBytes(
  bucket: R2Bucket,
  manifest: ModelManifest,
  maxBytes: number,
): Promise<Uint8Array> {
  const { id, version } = manifest;
  if (manifest.size_bytes > maxBytes) {
    throw new ApiError(
      "model_unavailable",
      `model '${id}' version '${version}' exceeds the model size limit`,
    );
  }
  const object = await getOrUnavailable(bucket, r2Keys.model(id, version), id);
  if (!object)
    throw new ApiError("model_unavailable", `model '${id}' version '${version}' has no model.onnx`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  if (bytes.byteLength !== manifest.size_bytes || (await sha256Hex(bytes)) !== manifest.sha256) {
    throw new ApiError(
      "model_unavailable",
      `model '${id}' version '${version}' failed its integrity check (sha256 mismatch)`,
    );
  }
  return bytes;
}

/** Forgets cached pointers and manifests (tests, and after registry writes in this isolate). */
export function clearModelMetadataCache(): void {
  activeCache.clear();
  manifestCache.clear();
}

async function getOrUnavailable(bucket: R2Bucket, key: string, id: string): Promise<R2ObjectBody | null> {
  try {
    return await bucket.get(key);
  } catch (cause) {
    throw new ApiError("model_unavailable", `model storage is unreachable for model '${id}'`, { cause });
  }
}

async function headOrUnavailable(bucket: R2Bucket, key: string, id: string): Promise<R2Object | null> {
  try {
    return await bucket.head(key);
  } catch (cause) {
    throw new ApiError("model_unavailable", `model storage is unreachable for model '${id}'`, { cause });
  }
}

async function parseJsonOrNull(object: R2ObjectBody): Promise<unknown> {
  try {
    return JSON.parse(await object.text());
  } catch {
    return null;
  }
}
