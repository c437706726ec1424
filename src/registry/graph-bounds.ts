/**
 * Upload check of an ONNX graph's data-dependent work, before ORT ever loads it. Operators whose
 * output size or iteration count comes from a tensor's *values* (ConstantOfShape, Expand, Tile,
 * Range, Resize, Upsample, OneHot, Loop; Scan iterates over a data length) could make one
 * inference allocate gigabytes or run for minutes (a ConstantOfShape of 2.5e8 took the process to
 * 1.16 GB; a Loop of 1e9 iterations would run ~14 min). A graph using them is refused (422
 * `invalid_model`) unless its manifest declares `work_bounds` and every such node's size-deciding
 * input is a constant of the graph (an initializer or a Constant node) within them:
 *
 * - ConstantOfShape (shape), Expand (shape), Range (start, limit, delta), Resize / Upsample with
 *   `sizes`: the elements produced ≤ `max_elements`;
 * - Tile (repeats), Resize / Upsample with `scales`, OneHot (depth): the factor the input is
 *   multiplied by ≤ `max_elements`;
 * - Loop: a constant trip count ≤ `max_iterations` (no trip count: unbounded, refused);
 * - Scan: always refused (its iterations follow the input's length).
 *
 * Subgraphs (Loop and If bodies) are walked too, with the outer graph's constants in scope.
 */
import $protobuf from "protobufjs/minimal.js";
import type { ModelManifest } from "../contracts/manifest";
import { ApiError } from "../errors";

/** What each bounded operator's size-deciding input means. */
const BOUNDED: Record<
  string,
  { input: number | "scales-or-sizes"; what: "elements" | "factor" | "iterations" }
> = {
  ConstantOfShape: { input: 0, what: "elements" },
  Expand: { input: 1, what: "elements" },
  Range: { input: 1, what: "elements" },
  Tile: { input: 1, what: "factor" },
  OneHot: { input: 1, what: "factor" },
  Resize: { input: "scales-or-sizes", what: "elements" },
  Upsample: { input: 1, what: "factor" },
  Loop: { input: 0, what: "iterations" },
};

type Bounds = NonNullable<ModelManifest["work_bounds"]>;

function refuse(detail: string, op: string): ApiError {
  return new ApiError("invalid_model", detail, { extensions: { operator: op } });
}

/** The parts of an ONNX node this check reads (src/onnx/onnx.proto does not carry subgraphs). */
interface GraphNode {
  opType: string;
  domain: string;
  name: string;
  input: string[];
  output: string[];
  /** A Constant node's `value`. */
  value?: number[];
  /** Subgraphs of its attributes (Loop/Scan `body`, If `then_branch` / `else_branch`). */
  graphs: Graph[];
}

interface Graph {
  node: GraphNode[];
  /** Initializers' values by name. */
  initializer: Map<string, number[]>;
}

type Reader = $protobuf.Reader;

function int64(r: Reader): number {
  const v = r.int64() as unknown;
  return typeof v === "number" ? v : Number((v as { toString(): string }).toString());
}

/** Reads a TensorProto (ONNX field numbers) as its name and numeric values. */
function readTensor(r: Reader, end: number): { name: string; values: number[] } {
  let name = "";
  let type = 0;
  let raw: Uint8Array | undefined;
  const list: number[] = [];
  const packed = (read: () => number, wire: number) => {
    if (wire === 2) {
      const stop = r.uint32() + r.pos;
      while (r.pos < stop) list.push(read());
    } else list.push(read());
  };
  while (r.pos < end) {
    const tag = r.uint32();
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 2:
        type = r.int32();
        break;
      case 4:
        packed(() => r.float(), wire);
        break;
      case 5:
        packed(() => r.int32(), wire);
        break;
      case 7:
        packed(() => int64(r), wire);
        break;
      case 8:
        name = r.string();
        break;
      case 9:
        raw = r.bytes();
        break;
      case 10:
        packed(() => r.double(), wire);
        break;
      default:
        r.skipType(wire);
    }
  }
  if (!raw || raw.length === 0) return { name, values: list };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const size = type === 7 || type === 11 ? 8 : type === 6 || type === 1 ? 4 : 0;
  const values: number[] = [];
  for (let i = 0; size > 0 && i + size <= raw.byteLength; i += size) {
    if (type === 7) values.push(Number(view.getBigInt64(i, true)));
    else if (type === 6) values.push(view.getInt32(i, true));
    else if (type === 1) values.push(view.getFloat32(i, true));
    else values.push(view.getFloat64(i, true));
  }
  return { name, values };
}

function readNode(r: Reader, end: number): GraphNode {
  const node: GraphNode = { opType: "", domain: "", name: "", input: [], output: [], graphs: [] };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        node.input.push(r.string());
        break;
      case 2:
        node.output.push(r.string());
        break;
      case 3:
        node.name = r.string();
        break;
      case 4:
        node.opType = r.string();
        break;
      case 5: {
        const stop = r.uint32() + r.pos;
        let attrName = "";
        while (r.pos < stop) {
          const t = r.uint32();
          const f = t >>> 3;
          if (f === 1) attrName = r.string();
          else if (f === 5) {
            const tensor = readTensor(r, r.uint32() + r.pos);
            if (attrName === "value" || attrName === "") node.value = tensor.values;
          } else if (f === 6 || f === 11) node.graphs.push(readGraph(r, r.uint32() + r.pos));
          else r.skipType(t & 7);
        }
        break;
      }
      case 7:
        node.domain = r.string();
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return node;
}

function readGraph(r: Reader, end: number): Graph {
  const graph: Graph = { node: [], initializer: new Map() };
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1) graph.node.push(readNode(r, r.uint32() + r.pos));
    else if (field === 5) {
      const t = readTensor(r, r.uint32() + r.pos);
      graph.initializer.set(t.name, t.values);
    } else r.skipType(tag & 7);
  }
  return graph;
}

/** The model's graph and its functions' bodies (ModelProto.graph = 7, functions = 25, node = 7). */
function readModel(bytes: Uint8Array): Graph[] {
  const r = $protobuf.Reader.create(bytes);
  const graphs: Graph[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 7) graphs.push(readGraph(r, r.uint32() + r.pos));
    else if (field === 25) {
      const stop = r.uint32() + r.pos;
      const body: Graph = { node: [], initializer: new Map() };
      while (r.pos < stop) {
        const t = r.uint32();
        if (t >>> 3 === 7) body.node.push(readNode(r, r.uint32() + r.pos));
        else r.skipType(t & 7);
      }
      graphs.push(body);
    } else r.skipType(tag & 7);
  }
  return graphs;
}

/** Constants of `graph` by name: initializers and Constant nodes' `value`, over `outer`. */
function constantsOf(graph: Graph, outer: Map<string, number[]>): Map<string, number[]> {
  const constants = new Map(outer);
  for (const [name, values] of graph.initializer) constants.set(name, values);
  for (const n of graph.node) {
    const out = n.output[0];
    if (n.opType === "Constant" && n.value && out) constants.set(out, n.value);
  }
  return constants;
}

const product = (xs: readonly number[]) => xs.reduce((a, b) => a * Math.max(0, b), 1);

/** The amount a bounded node decides, from its constant input; undefined when not constant. */
function amountOf(node: GraphNode, constants: Map<string, number[]>): number | undefined {
  const op = node.opType ?? "";
  const input = (i: number) => {
    const name = node.input[i];
    return name ? constants.get(name) : undefined;
  };
  switch (op) {
    case "Range": {
      const [start, limit, delta] = [input(0)?.[0], input(1)?.[0], input(2)?.[0]];
      if (start === undefined || limit === undefined || delta === undefined || delta === 0) return undefined;
      return Math.max(0, Math.ceil((limit - start) / delta));
    }
    case "Resize": {
      // Inputs: X, roi, scales, sizes (opset ≥ 11); `sizes` wins when given.
      const sizes = input(3);
      if (sizes && sizes.length > 0) return product(sizes);
      const scales = input(2);
      return scales && scales.length > 0 ? product(scales) : undefined;
    }
    case "Loop": {
      if (!node.input[0]) return undefined; // no trip count: runs until its condition says stop
      return input(0)?.[0];
    }
    default: {
      const spec = BOUNDED[op];
      const v = typeof spec?.input === "number" ? input(spec.input) : undefined;
      if (!v) return undefined;
      return op === "OneHot" ? (v[0] ?? undefined) : product(v);
    }
  }
}

function walk(graph: Graph, outer: Map<string, number[]>, bounds: Bounds | undefined): void {
  const constants = constantsOf(graph, outer);
  for (const node of graph.node) {
    const op = node.opType;
    const label = `node '${node.name || node.output[0] || op}' (${op})`;
    if (node.domain === "" && op === "Scan") {
      throw refuse(`${label}: Scan iterates as long as its input is; such graphs are not accepted`, op);
    }
    const spec = node.domain === "" ? BOUNDED[op] : undefined;
    if (spec) {
      if (!bounds) {
        throw refuse(
          `${label} allocates or iterates as its input values say; declare work_bounds ({"max_elements", "max_iterations"}) in the manifest (docs/byom.md)`,
          op,
        );
      }
      const amount = amountOf(node, constants);
      if (amount === undefined || !Number.isFinite(amount)) {
        throw refuse(
          `${label}: its ${spec.what === "iterations" ? "trip count" : "size"} is computed from the model's inputs, so work_bounds cannot be verified; make it a constant of the graph`,
          op,
        );
      }
      const limit = spec.what === "iterations" ? bounds.max_iterations : bounds.max_elements;
      const name = spec.what === "iterations" ? "max_iterations" : "max_elements";
      if (amount > limit) {
        throw refuse(
          `${label}: ${spec.what === "factor" ? "multiplies its input by" : spec.what === "iterations" ? "runs" : "produces"} ${amount}${spec.what === "iterations" ? " iterations" : spec.what === "elements" ? " elements" : ""}; work_bounds.${name} is ${limit}`,
          op,
        );
      }
    }
    for (const g of node.graphs) walk(g, constants, bounds);
  }
}

/** Refuses (422) a graph whose data-dependent work is not bounded by `manifest.work_bounds`. */
export function checkWorkBounds(bytes: Uint8Array, manifest: ModelManifest): void {
  let graphs: Graph[];
  try {
    graphs = readModel(bytes);
  } catch {
    return; // not decodable as ONNX: session creation names the problem
  }
  for (const graph of graphs) walk(graph, new Map(), manifest.work_bounds);
}
