/**
 * The trainer's convolutional image classifiers (`src/training/cnn.ts`) as ONNX. Image graph
 * contract: input `image` float32 [batch, C, H, W] (preprocessed, see `src/image/preprocess.ts`),
 * output `scores` float32 [batch, K] (softmax). One node per layer:
 *   conv    → Conv(x, W, B, kernel_shape, pads, strides = 1)   W [F, C, k, k]
 *   relu    → Relu
 *   maxpool → MaxPool(kernel_shape = strides = [s, s]); avgpool → AveragePool (same attributes)
 *   dense   → Gemm(x, W, B, transB = 1)   W [units, inputs]; a 4-D x is Flatten(axis = 1)ed first
 *   then Softmax(axis = −1).
 * int8: each W is an int8 initializer + per-output-channel float32 scales (zero point 0), turned into
 * float by DequantizeLinear(axis = 0) in front of its Conv/Gemm; biases stay float32. Opset 17, IR 8.
 */
import {
  type ImageModelManifest,
  type ImagePreprocessSpec,
  imageManifestSchema,
} from "../contracts/manifest";
import type { CnnModel, QuantizedWeights } from "../training/cnn";
import {
  commonManifestFields,
  DT,
  type ExportMetadata,
  float32Bytes,
  GRAPH_NAMES,
  intAttr,
  intsAttr,
  type ManifestMetadata,
  modelProto,
  node,
  type onnx,
  pushInt8Weight,
  tensor,
  tensorValue,
} from "./proto";

/**
 * Serialises a CNN (`src/training/cnn.ts`) as an ONNX ModelProto following the image graph contract
 * above. Deterministic: the same model and metadata give the same bytes.
 */
export function buildCnnOnnxModel(model: CnnModel, meta: ExportMetadata): Uint8Array {
  const { channels, height, width } = model.input;
  const initializer: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  let x: string = GRAPH_NAMES.image;
  let rank = 4;
  // A weight tensor as a graph value: float initializer, or int8 + scales → DequantizeLinear.
  const weight = (name: string, dims: number[], w: Float32Array, q: QuantizedWeights | undefined): string => {
    if (model.quantization !== "int8") {
      initializer.push(tensor(name, DT.FLOAT, dims, float32Bytes(w)));
      return name;
    }
    if (!q) throw new Error(`${name}: an int8 model needs quantized weights on every conv/dense layer`);
    pushInt8Weight(initializer, nodes, name, dims, q);
    return name;
  };
  model.layers.forEach((layer, i) => {
    const y = `t${i}_${layer.type}`;
    if (layer.type === "conv") {
      const dims = [layer.filters, layer.inChannels, layer.kernel, layer.kernel];
      const w = weight(`conv${i}_W`, dims, layer.weights, layer.quantized);
      initializer.push(tensor(`conv${i}_B`, DT.FLOAT, [layer.filters], float32Bytes(layer.bias)));
      nodes.push(
        node(
          "Conv",
          [x, w, `conv${i}_B`],
          [y],
          [
            intsAttr("kernel_shape", [layer.kernel, layer.kernel]),
            intsAttr("pads", [layer.pad, layer.pad, layer.pad, layer.pad]),
            intsAttr("strides", [1, 1]),
          ],
        ),
      );
    } else if (layer.type === "dense") {
      if (rank !== 2) {
        nodes.push(node("Flatten", [x], [`t${i}_flat`], [intAttr("axis", 1)]));
        x = `t${i}_flat`;
        rank = 2;
      }
      const w = weight(`dense${i}_W`, [layer.units, layer.inputs], layer.weights, layer.quantized);
      initializer.push(tensor(`dense${i}_B`, DT.FLOAT, [layer.units], float32Bytes(layer.bias)));
      nodes.push(node("Gemm", [x, w, `dense${i}_B`], [y], [intAttr("transB", 1)]));
    } else if (layer.type === "relu") {
      nodes.push(node("Relu", [x], [y]));
    } else {
      const size = [layer.size, layer.size];
      const op = layer.type === "maxpool" ? "MaxPool" : "AveragePool";
      nodes.push(node(op, [x], [y], [intsAttr("kernel_shape", size), intsAttr("strides", size)]));
    }
    x = y;
  });
  if (rank !== 2) throw new Error("the last layer must be dense");
  nodes.push(node("Softmax", [x], [GRAPH_NAMES.scores], [intAttr("axis", -1)]));
  return modelProto(
    meta,
    [
      { key: "task", value: model.task },
      { key: "labels", value: JSON.stringify(model.labels) },
      { key: "quantization", value: model.quantization },
    ],
    {
      node: nodes,
      initializer,
      input: [tensorValue(GRAPH_NAMES.image, DT.FLOAT, ["batch", channels, height, width])],
      output: [tensorValue(GRAPH_NAMES.scores, DT.FLOAT, ["batch", model.labels.length])],
    },
  );
}

/**
 * Exports a CNN as ONNX bytes plus its validated image manifest; `preprocess` is how the Worker turns
 * a decoded image into the graph's input (its size and channels must match the model's input).
 */
export async function exportImageModel(
  model: CnnModel,
  meta: ManifestMetadata & { preprocess: ImagePreprocessSpec },
): Promise<{ onnx: Uint8Array; manifest: ImageModelManifest }> {
  const { preprocess } = meta;
  if (
    preprocess.layout !== "NCHW" ||
    preprocess.channels !== model.input.channels ||
    preprocess.height !== model.input.height ||
    preprocess.width !== model.input.width
  ) {
    throw new Error("the preprocess spec does not match the model's input shape (NCHW)");
  }
  const bytes = buildCnnOnnxModel(model, meta);
  const manifest = imageManifestSchema.parse({
    kind: "image",
    task: model.task,
    labels: [...model.labels],
    preprocess,
    inputs: { image: GRAPH_NAMES.image },
    ...(await commonManifestFields(model, meta, bytes)),
  });
  return { onnx: bytes, manifest };
}
