/**
 * Open Inference Protocol v2 (KServe V2 / Triton / MLServer REST, JSON) over the classification
 * core: parse the protocol's tensors → `classifyTexts` / `classifyImages` → shape the outputs.
 * Text models take a `BYTES` input `text` of shape `[n]` (or `[n, 1]`); image models take `image`
 * as `BYTES` (base64 PNG/JPEG, one per batch row) or `UINT8` pixels `[n, height, width, channels]`.
 * Every model answers `scores` (`FP32 [n, labels]`) and `labels` (`BYTES [labels]`). Errors are
 * rendered as `{"error": "…"}` by the router (src/errors.ts `oipErrorResponse`).
 */
import * as z from "zod";
import { OipModelMetadataSchema, OipRepositoryIndexSchema, OipServerMetadataSchema } from "../answers";
import type { AppRequest, Handler } from "../context";
import type { ModelManifest } from "../contracts/manifest";
import { MODEL_ID_RE, MODEL_VERSION_RE, OIP_DATATYPES, TENSOR_DATATYPES } from "../contracts/manifest";
import { ApiError } from "../errors";
import { readBodyBytes, readJsonBody, readJsonBodyBytes, reply, validate } from "../http";
import type { DecodedImage } from "../image/pixels";
import { checkImagePixels, checkImageRuns, type WorkBudget } from "../inference/budget";
import { EXPLAIN_TOP_MAX } from "../inference/explain";
import type { WireTensor } from "../inference/tensors";
import {
  checkTextLimits,
  chooseVersion,
  classifyImages,
  classifyTexts,
  explainOption,
  type ImageSource,
  inferTensors,
  probeModel,
} from "../predictions/classify";
import { listModelSummaries, modelVersions } from "../registry/list";
import { getManifest } from "../storage/model-store";
import {
  attachBinaryInputs,
  BINARY_HEADER,
  inferResponse,
  type OutgoingTensor,
  parseJsonLossless,
  splitBinaryBody,
} from "./oip-tensors";

const parametersSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional();

/**
 * One input tensor. `shape` `[]` is a scalar (one element). `data` is flat or nested row-major; it
 * is absent when `parameters.binary_data_size` says the data follows the JSON (binary extension).
 */
const tensorSchema = z.strictObject({
  name: z.string().min(1).max(128),
  shape: z
    .array(
      z
        .number()
        .int()
        .min(0)
        .max(2 ** 31),
    )
    .max(8),
  datatype: z.enum(OIP_DATATYPES),
  parameters: parametersSchema,
  data: z.array(z.unknown()).optional(),
});

/** Body of `POST /v2/models/{m}[/versions/{v}]/infer`. */
export const inferRequestSchema = z.strictObject({
  id: z.string().max(128).optional(),
  parameters: parametersSchema,
  inputs: z.array(tensorSchema).max(8),
  outputs: z
    .array(z.strictObject({ name: z.string().min(1).max(128), parameters: parametersSchema }))
    .max(8)
    .optional(),
});

type InferTensor = z.infer<typeof tensorSchema>;

/** Body of `POST /v2/repository/index`. */
export const repositoryIndexSchema = z.strictObject({ ready: z.boolean().optional() });

/** One tensor's metadata. */
interface TensorMetadata {
  name: string;
  datatype: (typeof OIP_DATATYPES)[number];
  shape: number[];
}

const SERVER = {
  name: "edge-inference",
  version: "0.1.0",
  extensions: ["model_repository", "binary_tensor_data"],
};

/** The `{m}` and optional `{v}` of a model route. */
function modelRef(request: AppRequest): { id: string; version: string | undefined } {
  const id = request.params.model ?? "";
  const version = request.params.version;
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id.slice(0, 80)}'`);
  if (version !== undefined && !MODEL_VERSION_RE.test(version)) {
    throw new ApiError("model_version_not_found", `model '${id}' has no version '${version.slice(0, 80)}'`);
  }
  return { id, version };
}

/**
 * The manifest of the model version a route names (its active version when none; with `caller`,
 * the version the model's traffic split gives that caller, as inference serves it).
 */
async function manifestOf(request: AppRequest, env: Env, caller?: string): Promise<ModelManifest> {
  const { id, version } = modelRef(request);
  const ttl = request.state.config.ACTIVE_POINTER_TTL_MS;
  const resolved = await chooseVersion(env, request.state.config, id, { version, caller });
  return getManifest(env.MODELS, id, resolved, ttl);
}

/** Inputs and outputs as the protocol describes them (see the module comment). */
export function tensorMetadata(manifest: ModelManifest): {
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
} {
  if (manifest.kind === "tensor") return { inputs: manifest.inputs, outputs: manifest.outputs };
  const k = manifest.labels.length;
  const inputs: TensorMetadata[] =
    manifest.kind === "image"
      ? [{ name: "image", datatype: "BYTES", shape: [-1] }]
      : [{ name: "text", datatype: "BYTES", shape: [-1] }];
  return {
    inputs,
    outputs: [
      { name: "scores", datatype: "FP32", shape: [-1, k] },
      { name: "labels", datatype: "BYTES", shape: [k] },
    ],
  };
}

/** An empty 200: the protocol's health answers carry their verdict in the status alone. */
const ok = (): Response => new Response(null, { status: 200 });

/** `GET /v2`: server metadata. */
export const serverMetadata: Handler = () => reply(OipServerMetadataSchema, SERVER);

/** `GET /v2/health/live`: the Worker answers, so it is live. */
export const serverLive: Handler = () => ok();

/** `GET /v2/health/ready`: ready when the default model loads and runs (as `/api/v1/health/ready`). */
export const serverReady: Handler = async (request, env) => {
  const { config } = request.state;
  await probeModel(env.MODELS, config, config.DEFAULT_MODEL, undefined);
  return ok();
};

/** `GET /v2/models/{m}[/versions/{v}]/ready`: the version loads and runs. */
export const modelReady: Handler = async (request, env) => {
  const { id, version } = modelRef(request);
  await probeModel(env.MODELS, request.state.config, id, version);
  return ok();
};

/** `GET /v2/models/{m}[/versions/{v}]`: name, versions, platform, inputs and outputs. */
export const modelMetadata: Handler = async (request, env) => {
  const manifest = await manifestOf(request, env);
  return reply(OipModelMetadataSchema, {
    name: manifest.id,
    versions: await modelVersions(env, manifest.id),
    platform: "onnx_onnxv1",
    ...tensorMetadata(manifest),
  });
};

/** `POST /v2/repository/index`: every model's active version and whether it is ready to load. */
export const repositoryIndex: Handler = async (request, env) => {
  const body = validate(
    repositoryIndexSchema,
    await readJsonBody(request, request.state.config.MAX_BODY_BYTES),
  );
  const models = await listModelSummaries(env, request.state.config.DEFAULT_MODEL);
  const index = models.map((m) => ({
    name: m.id,
    ...(m.active_version !== null && { version: m.active_version }),
    state: m.active_version === null ? ("UNAVAILABLE" as const) : ("READY" as const),
    reason: m.active_version === null ? "no active version" : "",
  }));
  return reply(OipRepositoryIndexSchema, body.ready ? index.filter((m) => m.state === "READY") : index);
};

/**
 * Row-major tensor data checked against the declared shape: a typed array (binary tensor data) or a
 * flat list (no element is an array) with as many elements as the shape holds, or a list nested to
 * exactly the declared rank, every level as long as its dimension. Anything else (deeper, shallower
 * or ragged nesting) is a 400.
 */
export function flatData(tensor: InferTensor): unknown[] {
  const raw = tensor.data ?? [];
  const { shape } = tensor;
  const expected = shape.reduce((a, b) => a * b, 1);
  const where = `input '${tensor.name}': shape [${shape.join(", ")}]`;
  const data = Array.isArray(raw) ? (raw as unknown[]) : Array.from(raw as ArrayLike<unknown>);
  if (!data.some(Array.isArray)) {
    if (data.length !== expected) {
      throw new ApiError("invalid_request", `${where} holds ${expected} elements, data has ${data.length}`);
    }
    return data;
  }
  const flat: unknown[] = [];
  const walk = (value: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (Array.isArray(value)) {
        throw new ApiError(
          "invalid_request",
          `${where}: data is nested deeper than the shape's ${shape.length} dimensions (at ${path})`,
        );
      }
      flat.push(value);
      return;
    }
    if (!Array.isArray(value) || value.length !== shape[depth]) {
      throw new ApiError(
        "invalid_request",
        `${where}: nested data must be flat or nested to exactly ${shape.length} dimensions; ${path} should be a list of ${shape[depth]}`,
      );
    }
    for (const [i, v] of value.entries()) walk(v, depth + 1, `${path}[${i}]`);
  };
  walk(data, 0, "data");
  return flat;
}

function inputNamed(inputs: readonly InferTensor[], name: string): InferTensor {
  const input = inputs.find((t) => t.name === name);
  if (!input || inputs.length !== 1) {
    throw new ApiError(
      "invalid_request",
      `this model takes exactly one input, '${name}'; got ${inputs.map((t) => `'${t.name}'`).join(", ")}`,
    );
  }
  return input;
}

/** The texts of a `BYTES` input of shape `[n]` or `[n, 1]`. */
function textsOf(input: InferTensor): string[] {
  const [n, width = 1, ...rest] = input.shape;
  if (input.datatype !== "BYTES" || rest.length > 0 || width !== 1 || n === undefined) {
    throw new ApiError(
      "invalid_request",
      `input 'text' must be BYTES of shape [n] or [n, 1]; got ${input.datatype} [${input.shape.join(", ")}]`,
    );
  }
  const data = flatData(input).map((t) => (t instanceof Uint8Array ? new TextDecoder().decode(t) : t));
  if (!data.every((t): t is string => typeof t === "string")) {
    throw new ApiError("invalid_request", "input 'text': every element must be a string");
  }
  return data;
}

/** The images of an `image` input: `BYTES` base64 files `[n]`, or `UINT8` pixels `[n, h, w, c]`. */
function imagesOf(input: InferTensor, budget: WorkBudget): ImageSource[] {
  if (
    input.datatype === "BYTES" &&
    (input.shape.length === 1 || (input.shape.length === 2 && input.shape[1] === 1))
  ) {
    // Binary BYTES elements are the file's bytes; JSON ones its base64 text.
    const data = flatData(input).map((t) => (t instanceof Uint8Array ? base64Of(t) : t));
    if (!data.every((t): t is string => typeof t === "string")) {
      throw new ApiError("invalid_request", "input 'image': every element must be a base64 string");
    }
    return data.map((base64) => ({ base64 }));
  }
  const [n, height, width, channels] = input.shape;
  if (
    input.datatype === "UINT8" &&
    input.shape.length === 4 &&
    n !== undefined &&
    height !== undefined &&
    width !== undefined &&
    (channels === 1 || channels === 2 || channels === 3 || channels === 4)
  ) {
    if (height < 1 || width < 1 || height > 1024 || width > 1024) {
      throw new ApiError("image_too_large", "pixel tensors are limited to 1024 × 1024", {
        extensions: { limit_side: 1024 },
      });
    }
    // The budget from the shape alone, before the data is copied (the core checks it again).
    checkImageRuns(budget, n);
    checkImagePixels(budget, new Array<{ width: number; height: number }>(n).fill({ width, height }));
    const data = flatData(input);
    const size = height * width * channels;
    const pixels = Uint8Array.from(data as number[]);
    if (!data.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255)) {
      throw new ApiError("invalid_request", "input 'image': UINT8 elements must be integers 0..255");
    }
    return Array.from({ length: n }, (_, i) => {
      const image: DecodedImage = {
        format: "png",
        width,
        height,
        channels,
        data: pixels.subarray(i * size, (i + 1) * size),
      };
      return { pixels: image };
    });
  }
  throw new ApiError(
    "invalid_request",
    `input 'image' must be BYTES [n] (base64 PNG/JPEG) or UINT8 [n, height, width, channels]; got ${input.datatype} [${input.shape.join(", ")}]`,
  );
}

function base64Of(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/**
 * Reads an infer request: JSON (parsed losslessly, see `parseJsonLossless`), or with
 * `Inference-Header-Content-Length` the binary tensor extension's JSON + binary data (any content
 * type). Every input ends up with data.
 */
async function readInferRequest(
  request: AppRequest,
  maxBytes: number,
): Promise<z.infer<typeof inferRequestSchema>> {
  const header = request.headers.get(BINARY_HEADER);
  let body: z.infer<typeof inferRequestSchema>;
  if (header === null) {
    body = validate(inferRequestSchema, parseJsonLossless(await readJsonBodyBytes(request, maxBytes)));
  } else {
    const parts = splitBinaryBody(await readBodyBytes(request, maxBytes), header);
    body = validate(inferRequestSchema, parseJsonLossless(parts.json));
    attachBinaryInputs(body.inputs, parts.binary);
  }
  const missing = body.inputs.find((t) => t.data === undefined);
  if (missing) {
    throw new ApiError(
      "invalid_request",
      `input '${missing.name}' has no data: give "data", or parameters.binary_data_size with an Inference-Header-Content-Length header and the bytes after the JSON`,
    );
  }
  return body;
}

/** Whether output `name` is asked for as binary data (its own `binary_data`, else `binary_data_output`). */
function binaryOutput(body: z.infer<typeof inferRequestSchema>): (name: string) => boolean {
  const all = body.parameters?.binary_data_output === true;
  return (name) => {
    const own = body.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
    return typeof own === "boolean" ? own : all;
  };
}

/** `POST /v2/models/{m}[/versions/{v}]/infer`. */
export const infer: Handler = async (request, env, ctx) => {
  const { config } = request.state;
  const body = await readInferRequest(request, config.MAX_BODY_BYTES);
  const manifest = await manifestOf(request, env, request.state.caller?.issuer);
  const choice = { model: manifest.id, version: manifest.version };
  const respond = (model: { id: string; version: string }, outputs: OutgoingTensor[]) =>
    inferResponse(
      {
        model_name: model.id,
        model_version: model.version,
        ...(body.id !== undefined && { id: body.id }),
      },
      selectOutputs(outputs, body.outputs),
      binaryOutput(body),
    );
  const explain = explainOption(
    env,
    request.state,
    explainParameter(body.parameters),
    explainTop(body.parameters),
  );
  if (manifest.kind === "tensor") {
    const inputs = body.inputs.map(wireTensor);
    const { model, outputs } = await inferTensors(env, request.state, choice, inputs, explain);
    return respond(model, outputs);
  }
  let result: Awaited<ReturnType<typeof classifyTexts>>;
  if (manifest.kind === "image") {
    const images = imagesOf(inputNamed(body.inputs, "image"), config);
    result = await classifyImages(env, ctx, request.state, choice, images, explain);
  } else {
    const texts = textsOf(inputNamed(body.inputs, "text"));
    checkTextLimits(texts, request.state, (i) => `inputs.0.data.${i}`);
    result = await classifyTexts(env, ctx, request.state, choice, texts, explain);
  }
  const { labels, scores, model, explanations } = result;
  const k = labels.length;
  const data = new Array<number>(scores.length * k);
  scores.forEach((row, i) => {
    for (let j = 0; j < k; j++) data[i * k + j] = row[j] as number;
  });
  const outputs = [
    { name: "scores", datatype: "FP32" as const, shape: [scores.length, k], data },
    { name: "labels", datatype: "BYTES" as const, shape: [k], data: [...labels] },
    // With parameters.explain: one JSON string per text (the native answer's `explanation`).
    ...(explanations
      ? [
          {
            name: "explanation",
            datatype: "BYTES" as const,
            shape: [explanations.length],
            data: explanations.map((e) => JSON.stringify(e)),
          },
        ]
      : []),
  ];
  return respond(model, outputs);
};

/** `parameters.explain` (a boolean; "true"/"false" strings as some clients send them). */
function explainParameter(parameters: Record<string, unknown> | undefined): boolean {
  const value = parameters?.explain;
  if (value === undefined || value === false || value === "false") return false;
  if (value === true || value === "true") return true;
  throw new ApiError("invalid_request", "parameters.explain must be a boolean");
}

/** `parameters.explain_top`: n-grams per label, 1..`EXPLAIN_TOP_MAX`. */
function explainTop(parameters: Record<string, unknown> | undefined): number | undefined {
  const value = parameters?.explain_top;
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > EXPLAIN_TOP_MAX) {
    throw new ApiError(
      "invalid_request",
      `parameters.explain_top must be an integer from 1 to ${EXPLAIN_TOP_MAX}`,
    );
  }
  return value;
}

/**
 * The outputs a request asks for: all when it names none (no `outputs`, or `"outputs": []`, as
 * Triton answers both); 400 for a name the model lacks.
 */
function selectOutputs<T extends { name: string }>(
  outputs: T[],
  requested: readonly { name: string }[] | undefined,
): T[] {
  const wanted = requested?.map((o) => o.name);
  if (!wanted || wanted.length === 0) return outputs;
  const unknown = wanted.filter((name) => !outputs.some((o) => o.name === name));
  if (unknown.length > 0) {
    throw new ApiError(
      "invalid_request",
      `unknown output(s) ${unknown.join(", ")}; this model has ${outputs.map((o) => o.name).join(", ")}`,
    );
  }
  return outputs.filter((o) => wanted.includes(o.name));
}

/** A request tensor for a `tensor` model: a numeric datatype, data flattened and counted. */
function wireTensor(tensor: InferTensor): WireTensor {
  const datatype = TENSOR_DATATYPES.find((d) => d === tensor.datatype);
  if (!datatype) {
    throw new ApiError(
      "invalid_request",
      `input '${tensor.name}': datatype ${tensor.datatype} is not supported; use one of ${TENSOR_DATATYPES.join(", ")}`,
    );
  }
  // Elements are checked against the datatype by the core (src/inference/tensors.ts); binary data
  // arrives as a typed array of the datatype already.
  const data = tensor.data;
  if (data === undefined || Array.isArray(data)) {
    return { name: tensor.name, datatype, shape: tensor.shape, data: flatData(tensor) };
  }
  return { name: tensor.name, datatype, shape: tensor.shape, data: data as WireTensor["data"] };
}
