/**
 * Does a loaded graph match its manifest? One check for the upload validation (422 naming the
 * problem) and the engine's load (503: the stored bytes no longer fit their manifest).
 */
import type { ModelManifest, TensorSpec } from "../contracts/manifest";
import type { ort } from "./ort";
import type { ModelSession } from "./session-cache";
import { datatypeOf } from "./tensors";

type Metadata = ort.InferenceSession.ValueMetadata;

function describeShape(meta: Metadata): string {
  return meta.isTensor
    ? `${meta.type} [${meta.shape.map((d) => (typeof d === "number" ? d : "?")).join(", ")}]`
    : "not a tensor";
}

/** The declared input names of a manifest, whatever its kind. */
export function declaredInputs(manifest: ModelManifest): string[] {
  switch (manifest.kind) {
    case "image":
      return [manifest.inputs.image];
    case "raw-text":
      return [manifest.inputs.text];
    case "tensor":
      return manifest.inputs.map((t) => t.name);
    default:
      return [manifest.inputs.ids, manifest.inputs.values];
  }
}

/** The declared output names a manifest relies on. */
function declaredOutputs(manifest: ModelManifest): string[] {
  if (manifest.kind === "tensor")
    return [...new Set([manifest.output, ...manifest.outputs.map((t) => t.name)])];
  if (manifest.kind === "raw-text" && manifest.label_output) return [manifest.output, manifest.label_output];
  return [manifest.output];
}

function tensorProblem(kind: "input" | "output", spec: TensorSpec, meta: Metadata): string | undefined {
  if (!meta.isTensor) return `${kind} '${spec.name}' is not a tensor`;
  const datatype = datatypeOf(meta.type);
  const sizes = meta.shape;
  const fits =
    datatype === spec.datatype &&
    sizes.length === spec.shape.length &&
    spec.shape.every((d, i) => d === -1 || typeof sizes[i] !== "number" || sizes[i] === d);
  return fits
    ? undefined
    : `${kind} '${spec.name}' is ${describeShape(meta)} in the graph; the manifest declares ${spec.datatype} [${spec.shape.join(", ")}]`;
}

/**
 * Returns why `session` does not fit `manifest` (names, and for raw-text and tensor models the
 * types and shapes the session reports), or undefined when it fits. A non-tensor output — e.g. the
 * sequence of maps skl2onnx's ZipMap produces — is refused: ORT cannot hand it back to the Worker.
 */
export function signatureProblem(session: ModelSession, manifest: ModelManifest): string | undefined {
  const wanted = declaredInputs(manifest);
  const missing = wanted.filter((name) => !session.inputNames.includes(name));
  const extra = session.inputNames.filter((name) => !wanted.includes(name));
  const outputs = declaredOutputs(manifest);
  const missingOutputs = outputs.filter((name) => !session.outputNames.includes(name));
  if (missing.length > 0 || extra.length > 0 || missingOutputs.length > 0) {
    return (
      `graph inputs [${session.inputNames.join(", ")}] / outputs [${session.outputNames.join(", ")}] do not match ` +
      `the manifest's inputs [${wanted.join(", ")}] / outputs [${outputs.join(", ")}]`
    );
  }
  const nonTensor = session.outputMetadata.find((m) => !m.isTensor);
  if (nonTensor) {
    return (
      `output '${nonTensor.name}' is not a tensor (a sequence or map, as a ZipMap produces); ` +
      "export with zipmap disabled (skl2onnx: options={id(model): {'zipmap': False}})"
    );
  }
  const input = (name: string) => session.inputMetadata.find((m) => m.name === name) as Metadata;
  const output = (name: string) => session.outputMetadata.find((m) => m.name === name) as Metadata;
  if (manifest.kind === "raw-text") {
    const text = input(manifest.inputs.text);
    const shape = text.isTensor ? text.shape : [];
    if (
      !text.isTensor ||
      text.type !== "string" ||
      !(shape.length === 1 || (shape.length === 2 && (shape[1] === 1 || typeof shape[1] !== "number")))
    ) {
      return `input '${text.name}' is ${describeShape(text)}; a raw-text model takes one string tensor [batch] or [batch, 1]`;
    }
    const scores = output(manifest.output);
    if (!scores.isTensor || scores.type !== "float32" || scores.shape.length !== 2) {
      return `output '${scores.name}' is ${describeShape(scores)}; expected float32 [batch, labels] probabilities`;
    }
  }
  if (manifest.kind === "tensor") {
    for (const spec of manifest.inputs) {
      const problem = tensorProblem("input", spec, input(spec.name));
      if (problem) return problem;
    }
    for (const spec of manifest.outputs) {
      const problem = tensorProblem("output", spec, output(spec.name));
      if (problem) return problem;
    }
    if (!manifest.outputs.some((t) => t.name === manifest.output)) {
      return `output '${manifest.output}' is not among the declared outputs`;
    }
  }
  return undefined;
}
