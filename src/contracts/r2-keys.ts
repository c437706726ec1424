/**
 * The R2 key layout of the Worker's bucket (`MODELS`): model versions and active pointers, a
 * training job's inline rows, an async prediction's stored input. (Datasets live under
 * `datasets/`, see `src/datasets/store.ts`; ASAP public keys under `asap-keys/`, see
 * `src/auth/asap.ts`.)
 */

/** R2 keys of one model version and of a model's active pointer. */
export const r2Keys = {
  model: (id: string, version: string): string => `models/${id}/${version}/model.onnx`,
  manifest: (id: string, version: string): string => `models/${id}/${version}/manifest.json`,
  active: (id: string): string => `models/${id}/active.json`,
  /** The version's reference profile (src/drift/profile.ts; a few KB of JSON), next to its manifest. */
  profile: (id: string, version: string): string => `models/${id}/${version}/profile.json`,
};

/** R2 key of a job's inline rows. */
export const jobRowsKey = (jobId: string): string => `jobs/${jobId}/rows.json`;

/** R2 key of a prediction's input. */
export const inputKey = (id: string): string => `inputs/${id}`;
