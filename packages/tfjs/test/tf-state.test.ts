// What a save reads from a TensorFlow.js model: the values themselves, not a copy (the
// hook writes them before training goes on, or copies them once into its snapshot).
// A copy here made every async save point copy the state twice on the training thread.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { toSavepointTensor } from '../src/index.js';
import { optimizerState, weightsState } from '../src/tf-state.js';
import { buildModel, dataset } from './tfjs-setup.js';

describe('the state a save reads from TensorFlow.js', () => {
  it('shares the CPU backend memory of the weights and optimizer slots (no copy)', async () => {
    await tf.setBackend('cpu');
    const model = buildModel('adam');
    const { x, y } = dataset();
    await model.fit(x, y, { epochs: 1, batchSize: 32, verbose: 0 });
    const weights = weightsState(model);
    for (const w of model.weights) {
      expect(weights[w.originalName]?.data.buffer).toBe((w.read().dataSync() as Float32Array).buffer);
    }
    const slots = (await optimizerState(model.optimizer)) as { weights: Record<string, { data: Float32Array }> };
    const named = await model.optimizer.getWeights();
    const slot = named.find((n) => n.name.endsWith('/m'));
    if (!slot) throw new Error(`Adam has no first-moment slot among ${named.map((n) => n.name).join(', ')}`);
    expect(slots.weights[slot.name]?.data.buffer).toBe((slot.tensor.dataSync() as Float32Array).buffer);
  });

  it('keeps the values it read when training goes on (a step replaces the tensors, it does not write into them)', async () => {
    await tf.setBackend('cpu');
    const model = buildModel('adam');
    const { x, y } = dataset();
    const read = weightsState(model);
    const before = Object.fromEntries(Object.entries(read).map(([name, t]) => [name, Array.from(t.data as Float32Array)]));
    await model.fit(x, y, { epochs: 2, batchSize: 32, verbose: 0 });
    for (const [name, t] of Object.entries(read)) expect(Array.from(t.data as Float32Array)).toEqual(before[name]);
    const changed = weightsState(model);
    expect(Object.keys(changed).some((name) => changed[name]?.data[0] !== read[name]?.data[0])).toBe(true);
  });

  it('toSavepointTensor copies unless told not to', () => {
    const tensor = tf.tensor1d([1, 2, 3]);
    expect(toSavepointTensor(tensor, 't').data.buffer).not.toBe((tensor.dataSync() as Float32Array).buffer);
    expect(toSavepointTensor(tensor, 't', { copy: false }).data.buffer).toBe((tensor.dataSync() as Float32Array).buffer);
    tensor.dispose();
  });
});
