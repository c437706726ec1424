/**
 * The online learner: multinomial logistic regression (softmax) over hashed sparse features with a
 * label set that grows as new labels appear, trained one sample at a time by SGD with per-weight
 * Adagrad steps. Runtime-agnostic and deterministic: the same samples in the same order give
 * bit-identical weights (the Durable Object relies on this to rebuild its state from a checkpoint
 * plus the samples stored after it; the offline evaluation runs this same code).
 *
 * One update on sample x (L2-normalised, binary features) with label y:
 *   p = softmax(b + Wᵀx);  g_k = p_k − [k = y]
 *   for each label k with |g_k| ≥ truncation (always y unless p_y > 1 − truncation):
 *     for each feature j:  G_jk += (g_k x_j)²;  W_jk −= learningRate · g_k x_j / √G_jk
 *     b_k −= biasLearningRate · g_k
 * Truncating tiny gradients keeps W sparse: each bucket holds only the labels that were ever
 * plausible for it. W is stored as one linked list of (label, weight, Adagrad sum) entries per
 * bucket in growable typed arrays.
 */
import type { SparseFeatures, TextFeaturizerSpec } from "../featurizer/text";
import type { FloatLinearModel } from "../training/linear-model";

/** Hyperparameters of the learner (see the module comment). */
export interface LearnerHyperparameters {
  learningRate: number;
  biasLearningRate: number;
  truncation: number;
}

/** Chosen with `npm run eval:online` on the bank dataset (docs/online.md). */
export const DEFAULT_LEARNER: LearnerHyperparameters = {
  learningRate: 1,
  biasLearningRate: 0.1,
  truncation: 0.01,
};

const CHECKPOINT_FORMAT = 1;

interface CheckpointHeader {
  format: number;
  spec: TextFeaturizerSpec;
  hyperparameters: LearnerHyperparameters;
  labels: string[];
  entries: number;
  learned: number;
}

/** Online multinomial logistic regression with a growing label set (see the module comment). */
export class OnlineSoftmax {
  readonly spec: TextFeaturizerSpec;
  readonly hyperparameters: LearnerHyperparameters;
  /** Labels in the order they first appeared (their column index). */
  readonly labels: string[] = [];
  /** Samples learned so far. */
  learned = 0;
  private readonly labelIndex = new Map<string, number>();
  private bias = new Float64Array(16);
  /** First entry of each bucket's list, −1 when empty. */
  private readonly head: Int32Array;
  private entryLabel = new Int32Array(1024);
  private entryNext = new Int32Array(1024);
  private entryWeight = new Float32Array(1024);
  private entrySumSq = new Float32Array(1024);
  private entries = 0;
  // Scratch buffers sized to the label capacity.
  private z = new Float64Array(16);
  private slot = new Int32Array(16).fill(-1);
  private stepLabels = new Int32Array(16);
  private stepGrads = new Float64Array(16);

  constructor(spec: TextFeaturizerSpec, hyperparameters: LearnerHyperparameters = DEFAULT_LEARNER) {
    this.spec = { ...spec };
    this.hyperparameters = { ...hyperparameters };
    this.head = new Int32Array(spec.buckets).fill(-1);
  }

  /** Column index of `label`, or undefined when it was never learned. */
  indexOf(label: string): number | undefined {
    return this.labelIndex.get(label);
  }

  /** Number of non-zero weights (sparse entries). */
  get weightCount(): number {
    return this.entries;
  }

  /**
   * Logits `b + Wᵀx` of `features`, one per label. The returned array is a scratch buffer that the
   * next call overwrites.
   */
  logits(features: SparseFeatures): Float64Array {
    const L = this.labels.length;
    const z = this.z;
    for (let k = 0; k < L; k++) z[k] = this.bias[k] as number;
    const { ids, values } = features;
    const head = this.head;
    const next = this.entryNext;
    const label = this.entryLabel;
    const weight = this.entryWeight;
    for (let i = 0; i < ids.length; i++) {
      const v = values[i] as number;
      for (let s = head[ids[i] as number] as number; s >= 0; s = next[s] as number) {
        const k = label[s] as number;
        z[k] = (z[k] as number) + (weight[s] as number) * v;
      }
    }
    return z.subarray(0, L);
  }

  /** Index of the highest-scoring label (the first on ties), or −1 before any label is known. */
  predict(features: SparseFeatures): number {
    return argmax(this.logits(features));
  }

  /** Softmax probabilities of every label, in `labels` order. */
  probabilities(features: SparseFeatures): Float64Array {
    return softmaxInPlace(Float64Array.from(this.logits(features)));
  }

  /** Learns one labelled sample (adding `label` to the label set when new). */
  learn(features: SparseFeatures, label: string): void {
    const y = this.ensureLabel(label);
    this.update(features, y, this.logits(features));
  }

  /**
   * Predicts `features` with the current weights, then learns it with `label`: one logits pass
   * serves both. Returns the prediction made before learning (−1 when no label was known yet).
   */
  step(features: SparseFeatures, label: string): number {
    const z = this.logits(features);
    const predicted = argmax(z);
    const known = this.labelIndex.get(label);
    // A new label may reallocate the scratch buffer: recompute (its own logit is its bias, 0).
    if (known !== undefined) this.update(features, known, z);
    else this.learn(features, label);
    return predicted;
  }

  private ensureLabel(label: string): number {
    const known = this.labelIndex.get(label);
    if (known !== undefined) return known;
    const k = this.labels.length;
    if (k === this.bias.length) this.growLabels(k * 2);
    this.labels.push(label);
    this.labelIndex.set(label, k);
    this.bias[k] = 0;
    this.z[k] = 0;
    return k;
  }

  private update(features: SparseFeatures, y: number, z: Float64Array): void {
    const { learningRate, biasLearningRate, truncation } = this.hyperparameters;
    const L = this.labels.length;
    softmaxInPlace(z);
    let n = 0;
    for (let k = 0; k < L; k++) {
      const g = (z[k] as number) - (k === y ? 1 : 0);
      if (Math.abs(g) >= truncation) {
        this.stepLabels[n] = k;
        this.stepGrads[n++] = g;
      }
    }
    const { ids, values } = features;
    const slot = this.slot;
    for (let i = 0; i < ids.length; i++) {
      const bucket = ids[i] as number;
      const v = values[i] as number;
      for (let s = this.head[bucket] as number; s >= 0; s = this.entryNext[s] as number) {
        slot[this.entryLabel[s] as number] = s;
      }
      for (let t = 0; t < n; t++) {
        const k = this.stepLabels[t] as number;
        let s = slot[k] as number;
        if (s < 0) s = this.addEntry(bucket, k);
        const g = (this.stepGrads[t] as number) * v;
        const sumSq = (this.entrySumSq[s] as number) + g * g;
        this.entrySumSq[s] = sumSq;
        this.entryWeight[s] = (this.entryWeight[s] as number) - (learningRate * g) / Math.sqrt(sumSq);
      }
      for (let s = this.head[bucket] as number; s >= 0; s = this.entryNext[s] as number) {
        slot[this.entryLabel[s] as number] = -1;
      }
    }
    for (let t = 0; t < n; t++) {
      const k = this.stepLabels[t] as number;
      this.bias[k] = (this.bias[k] as number) - biasLearningRate * (this.stepGrads[t] as number);
    }
    this.learned++;
  }

  private addEntry(bucket: number, label: number): number {
    if (this.entries === this.entryLabel.length) {
      const size = this.entries * 2;
      this.entryLabel = grow(this.entryLabel, new Int32Array(size));
      this.entryNext = grow(this.entryNext, new Int32Array(size));
      this.entryWeight = grow(this.entryWeight, new Float32Array(size));
      this.entrySumSq = grow(this.entrySumSq, new Float32Array(size));
    }
    const s = this.entries++;
    this.entryLabel[s] = label;
    this.entryWeight[s] = 0;
    this.entrySumSq[s] = 0;
    this.entryNext[s] = this.head[bucket] as number;
    this.head[bucket] = s;
    return s;
  }

  private growLabels(capacity: number): void {
    this.bias = grow(this.bias, new Float64Array(capacity));
    this.z = new Float64Array(capacity);
    this.slot = new Int32Array(capacity).fill(-1);
    this.stepLabels = new Int32Array(capacity);
    this.stepGrads = new Float64Array(capacity);
  }

  /**
   * The current weights as a dense float model (`[buckets, labels]`, softmax): what the ONNX
   * exporter takes. Needs at least one label.
   */
  toFloatModel(): FloatLinearModel {
    const L = this.labels.length;
    if (L === 0) throw new Error("the learner has no labels yet");
    const weights = new Float32Array(this.spec.buckets * L);
    for (let bucket = 0; bucket < this.head.length; bucket++) {
      for (let s = this.head[bucket] as number; s >= 0; s = this.entryNext[s] as number) {
        weights[bucket * L + (this.entryLabel[s] as number)] = this.entryWeight[s] as number;
      }
    }
    return {
      task: "multiclass",
      labels: [...this.labels],
      spec: { ...this.spec },
      columns: L,
      bias: Float32Array.from(this.bias.subarray(0, L)),
      quantization: "none",
      weights,
    };
  }

  /** The complete state as bytes (exact: `fromCheckpoint` restores bit-identical weights). */
  checkpoint(): Uint8Array {
    const header: CheckpointHeader = {
      format: CHECKPOINT_FORMAT,
      spec: this.spec,
      hyperparameters: this.hyperparameters,
      labels: this.labels,
      entries: this.entries,
      learned: this.learned,
    };
    const n = this.entries;
    const parts: ArrayBufferView[] = [
      this.head,
      this.entryLabel.subarray(0, n),
      this.entryNext.subarray(0, n),
      this.entryWeight.subarray(0, n),
      this.entrySumSq.subarray(0, n),
      this.bias.subarray(0, this.labels.length),
    ];
    const headerBytes = new TextEncoder().encode(JSON.stringify(header));
    const total = 4 + headerBytes.length + parts.reduce((sum, p) => sum + p.byteLength, 0);
    const out = new Uint8Array(total);
    new DataView(out.buffer).setUint32(0, headerBytes.length, true);
    out.set(headerBytes, 4);
    let offset = 4 + headerBytes.length;
    for (const p of parts) {
      out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), offset);
      offset += p.byteLength;
    }
    return out;
  }

  /** Restores a learner from `checkpoint()` bytes. */
  static fromCheckpoint(bytes: Uint8Array): OnlineSoftmax {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = view.getUint32(0, true);
    const header = JSON.parse(
      new TextDecoder().decode(bytes.subarray(4, 4 + headerLength)),
    ) as CheckpointHeader;
    if (header.format !== CHECKPOINT_FORMAT) throw new Error(`unknown checkpoint format ${header.format}`);
    const learner = new OnlineSoftmax(header.spec, header.hyperparameters);
    let offset = 4 + headerLength;
    // Copies, so each typed array is aligned and owns its buffer.
    const take = (byteLength: number): ArrayBuffer => {
      const chunk = bytes.slice(offset, offset + byteLength);
      offset += byteLength;
      return chunk.buffer;
    };
    const n = header.entries;
    const capacity = Math.max(1024, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
    learner.head.set(new Int32Array(take(header.spec.buckets * 4)));
    learner.entryLabel = grow(new Int32Array(take(n * 4)), new Int32Array(capacity));
    learner.entryNext = grow(new Int32Array(take(n * 4)), new Int32Array(capacity));
    learner.entryWeight = grow(new Float32Array(take(n * 4)), new Float32Array(capacity));
    learner.entrySumSq = grow(new Float32Array(take(n * 4)), new Float32Array(capacity));
    learner.entries = n;
    const bias = new Float64Array(take(header.labels.length * 8));
    if (offset !== bytes.byteLength) throw new Error("checkpoint has trailing or missing bytes");
    learner.growLabels(Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, header.labels.length)))));
    learner.bias.set(bias);
    for (const label of header.labels) {
      learner.labelIndex.set(label, learner.labels.length);
      learner.labels.push(label);
    }
    learner.learned = header.learned;
    return learner;
  }
}

function grow<T extends Int32Array | Float32Array | Float64Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}

/** Index of the largest value (the first on ties), −1 for an empty array. */
export function argmax(xs: ArrayLike<number>): number {
  let best = -1;
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < xs.length; k++) {
    if ((xs[k] as number) > max) {
      max = xs[k] as number;
      best = k;
    }
  }
  return best;
}

/** Softmax of `z`, written into `z`; returns it. */
function softmaxInPlace(z: Float64Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < z.length; k++) if ((z[k] as number) > max) max = z[k] as number;
  let sum = 0;
  for (let k = 0; k < z.length; k++) {
    const e = Math.exp((z[k] as number) - max);
    z[k] = e;
    sum += e;
  }
  for (let k = 0; k < z.length; k++) z[k] = (z[k] as number) / sum;
  return z;
}
