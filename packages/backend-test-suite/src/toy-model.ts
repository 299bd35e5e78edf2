// A tiny deterministic model for policy tests: its weights change every step and
// its metrics follow a given schedule, so tests know exactly what is "best".
import type { TrainableModel } from '@savepoint/core';

export class ToyModel implements TrainableModel {
  weights = new Float32Array([0, 0, 0, 0]);
  bias = new Float64Array([0]);
  momentum = new Float32Array(4);
  steps = 0;

  constructor(private readonly metricsAt: (step: { epoch: number; iter: number }) => Record<string, number> = () => ({})) {}
  private position = { epoch: 0, iter: 0 };

  trainStep(position: { epoch: number; iter: number }): number {
    this.steps++;
    for (let i = 0; i < this.weights.length; i++) {
      this.weights[i] = (this.weights[i] ?? 0) + (i + 1) * 0.5;
      this.momentum[i] = (this.momentum[i] ?? 0) * 0.9 + 0.1;
    }
    this.bias[0] = (this.bias[0] ?? 0) + 1;
    this.position = { epoch: position.epoch, iter: position.iter + 1 };
    return 1 / (position.iter + 1);
  }

  evaluate(position: { epoch: number; iter: number }): Record<string, number> {
    return this.metricsAt(position);
  }

  stateDict() {
    return { 'fc.weight': this.weights, 'fc.bias': this.bias };
  }
  loadStateDict(state: Record<string, unknown>) {
    this.weights = new Float32Array(state['fc.weight'] as Float32Array);
    this.bias = new Float64Array(state['fc.bias'] as Float64Array);
  }
  optimizerState() {
    return { state: { 0: { momentum_buffer: this.momentum } }, param_groups: [{ lr: 0.1, momentum: 0.9 }] };
  }
  loadOptimizerState(state: Record<string, unknown>) {
    const s = state as { state: Record<string, { momentum_buffer: Float32Array }> };
    this.momentum = new Float32Array(s.state['0']?.momentum_buffer ?? new Float32Array(4));
  }
  schedulerState() {
    return { last_epoch: this.position.epoch, base_lrs: [0.1] };
  }
  loadSchedulerState() {}
}
