// The demo's model: logistic regression trained by SGD with momentum and a step
// learning-rate schedule, on a seeded synthetic two-class problem. Plain
// TypeScript, a few milliseconds per epoch, and a validation accuracy that moves.
import type { TrainableModel } from '@savepoint/core';

/** mulberry32: a small seeded PRNG, so every run sees the same data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
}

export interface Dataset {
  x: Float32Array[];
  y: number[];
}

/** Two overlapping Gaussian blobs in `dims` dimensions. */
export function makeDataset(n: number, dims: number, seed: number): Dataset {
  const next = rng(seed);
  const x: Float32Array[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const row = new Float32Array(dims);
    for (let d = 0; d < dims; d++) row[d] = gaussian(next) + (label ? 0.6 : -0.6) * (d % 3 === 0 ? 1 : 0.3);
    x.push(row);
    y.push(label);
  }
  return { x, y };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export class LogisticRegression implements TrainableModel {
  weight: Float32Array;
  bias = new Float32Array(1);
  velocityW: Float32Array;
  velocityB = new Float32Array(1);
  lr: number;
  readonly baseLr: number;
  readonly #train: Dataset;
  readonly #val: Dataset;
  readonly #batchSize: number;

  constructor(options: { dims: number; train: Dataset; val: Dataset; lr?: number; batchSize?: number }) {
    this.weight = new Float32Array(options.dims);
    this.velocityW = new Float32Array(options.dims);
    this.lr = options.lr ?? 0.05;
    this.baseLr = this.lr;
    this.#train = options.train;
    this.#val = options.val;
    this.#batchSize = options.batchSize ?? 32;
  }

  #logit(row: Float32Array): number {
    let z = this.bias[0] ?? 0;
    for (let d = 0; d < row.length; d++) z += (this.weight[d] ?? 0) * (row[d] ?? 0);
    return z;
  }

  trainStep({ iter }: { epoch: number; iter: number }): number {
    const { x, y } = this.#train;
    const gradW = new Float32Array(this.weight.length);
    let gradB = 0;
    let loss = 0;
    for (let b = 0; b < this.#batchSize; b++) {
      const i = (iter * this.#batchSize + b) % x.length;
      const row = x[i] as Float32Array;
      const p = sigmoid(this.#logit(row));
      const err = p - (y[i] as number);
      loss += -((y[i] as number) * Math.log(p + 1e-9) + (1 - (y[i] as number)) * Math.log(1 - p + 1e-9));
      for (let d = 0; d < row.length; d++) gradW[d] = (gradW[d] ?? 0) + (err * (row[d] ?? 0)) / this.#batchSize;
      gradB += err / this.#batchSize;
    }
    for (let d = 0; d < this.weight.length; d++) {
      this.velocityW[d] = 0.9 * (this.velocityW[d] ?? 0) + (gradW[d] ?? 0);
      this.weight[d] = (this.weight[d] ?? 0) - this.lr * (this.velocityW[d] ?? 0);
    }
    this.velocityB[0] = 0.9 * (this.velocityB[0] ?? 0) + gradB;
    this.bias[0] = (this.bias[0] ?? 0) - this.lr * (this.velocityB[0] ?? 0);
    return loss / this.#batchSize;
  }

  evaluate(): Record<string, number> {
    const { x, y } = this.#val;
    let correct = 0;
    let loss = 0;
    for (let i = 0; i < x.length; i++) {
      const p = sigmoid(this.#logit(x[i] as Float32Array));
      if ((p >= 0.5 ? 1 : 0) === y[i]) correct++;
      loss += -((y[i] as number) * Math.log(p + 1e-9) + (1 - (y[i] as number)) * Math.log(1 - p + 1e-9));
    }
    return { acc: correct / x.length, loss: loss / x.length };
  }

  /** Step decay, as a scheduler would: called once per epoch by the demo. */
  stepSchedule(epoch: number): void {
    this.lr = this.baseLr * 0.7 ** Math.floor(epoch / 3);
  }

  stateDict() {
    return { 'linear.weight': this.weight, 'linear.bias': this.bias };
  }
  loadStateDict(state: Record<string, unknown>) {
    this.weight = new Float32Array(state['linear.weight'] as Float32Array);
    this.bias = new Float32Array(state['linear.bias'] as Float32Array);
  }
  optimizerState() {
    return {
      state: { velocity_weight: this.velocityW, velocity_bias: this.velocityB },
      param_groups: [{ lr: this.lr, momentum: 0.9 }],
    };
  }
  loadOptimizerState(state: Record<string, unknown>) {
    const s = state as { state: { velocity_weight: Float32Array; velocity_bias: Float32Array }; param_groups: { lr: number }[] };
    this.velocityW = new Float32Array(s.state.velocity_weight);
    this.velocityB = new Float32Array(s.state.velocity_bias);
    this.lr = s.param_groups[0]?.lr ?? this.lr;
  }
  schedulerState() {
    return { name: 'StepLR', base_lr: this.baseLr, gamma: 0.7, step_size: 3, last_lr: this.lr };
  }
  loadSchedulerState(state: Record<string, unknown>) {
    this.lr = (state.last_lr as number | undefined) ?? this.lr;
  }
}
