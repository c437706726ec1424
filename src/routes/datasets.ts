/** Training datasets in R2 (`datasets/<name>`): upload, list, delete. Core in src/datasets/. */
import * as z from "zod";
import { DatasetDeletionSchema, DatasetListSchema, UploadedDatasetSchema } from "../answers";
import type { AppRequest, Handler } from "../context";
import { deleteDataset, listDatasets, uploadDataset } from "../datasets/store";
import { ApiError } from "../errors";
import { reply, validate } from "../http";

/** The dataset name of `/api/v1/datasets/:id` or `/api/v1/datasets/:folder/:id`. */
function datasetName(request: AppRequest): string {
  const { folder, id = "" } = request.params;
  return folder === undefined ? id : `${folder}/${id}`;
}

export const uploadDatasetQuerySchema = z.strictObject({
  columns: z
    .string({ error: "columns must be given once" })
    .max(2000)
    .transform((v) =>
      v
        .split(",")
        .map((c) => c.trim())
        .filter(Boolean),
    )
    .optional(),
});

/**
 * `PUT /api/v1/datasets/:name[?columns=text,label]`: the body (CSV or JSON Lines, gzipped when the
 * name ends in `.gz`; Content-Length required) is stored at `datasets/<name>` once it validates;
 * 201 with the dataset, its row count and columns.
 */
export const putDataset: Handler = async (request, env) => {
  const name = datasetName(request);
  const query = validate(uploadDatasetQuerySchema, { ...request.query });
  const length = Number(request.headers.get("content-length") ?? "NaN");
  if (!Number.isInteger(length) || length < 0) {
    throw new ApiError(
      "length_required",
      "send the dataset with a Content-Length header (a file upload does)",
    );
  }
  if (!request.body || length === 0) throw new ApiError("invalid_request", "the upload is empty");
  const dataset = await uploadDataset(env.MODELS, request.state.config, {
    name,
    body: request.body,
    length,
    required: query.columns ?? [],
  });
  return reply(UploadedDatasetSchema, dataset, 201, {
    location: `/api/v1/datasets/${encodeURIComponent(name)}`,
  });
};

export const listDatasetsQuerySchema = z.strictObject({
  cursor: z.string({ error: "cursor must be given once" }).max(1024).optional(),
});

/** `GET /api/v1/datasets[?cursor=]`: datasets in name order, 1,000 per page. */
export const getDatasets: Handler = async (request, env) => {
  const query = validate(listDatasetsQuerySchema, { ...request.query });
  return reply(DatasetListSchema, await listDatasets(env.MODELS, query.cursor));
};

/** `DELETE /api/v1/datasets/:name`. */
export const removeDataset: Handler = async (request, env) => {
  return reply(DatasetDeletionSchema, { deleted: await deleteDataset(env.MODELS, datasetName(request)) });
};
