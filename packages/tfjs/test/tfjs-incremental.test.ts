// (ours) Transfer learning with `incremental: true`: a frozen base (trainable = false)
// and a small trainable head. The base's weights are uploaded once; every later save
// writes the head's objects and a manifest; resume restores the weights exactly.
import { Run } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SavepointCheckpoint } from '../src/index.js';
import { TF_STORES, weightsOf } from './tfjs-setup.js';

function transferModel(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 64, inputShape: [32], activation: 'relu', trainable: false, name: 'base1' }));
  model.add(tf.layers.dense({ units: 64, activation: 'relu', trainable: false, name: 'base2' }));
  model.add(tf.layers.dense({ units: 2, activation: 'softmax', name: 'head' }));
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy', metrics: ['acc'] });
  return model;
}

const local = TF_STORES.find((s) => s.name === 'local');

describe.skipIf(!local)('SavepointCheckpoint with incremental: true (transfer learning, local disk)', () => {
  it('uploads the frozen base once, the head at every save, and resumes the same weights', async () => {
    const { store, dir, cleanup } = await (local as (typeof TF_STORES)[number]).open();
    try {
      const x = tf.randomUniform([32, 32], 0, 1, 'float32', 1);
      const y = tf.oneHot(
        tf.tensor1d(
          Array.from({ length: 32 }, (_, i) => i % 2),
          'int32',
        ),
        2,
      );
      const model = transferModel();
      const checkpoint = new SavepointCheckpoint({
        workDir: dir,
        backend: store,
        interval: 1,
        maxKeepCkpts: 2,
        incremental: true,
      });
      await model.fit(x, y, { epochs: 3, batchSize: 16, verbose: 0, callbacks: [checkpoint] });
      const run = Run.open(dir, { backend: store });
      const usage = await run.objectUsage();
      expect(usage.missing).toEqual([]);
      expect(usage.unreferenced).toEqual([]);
      const last = usage.byCheckpoint.get('epoch_3.safetensors');
      // The base (4 tensors, ~6.4K floats) is shared by both kept checkpoints; the head and optimizer state are not.
      expect(last?.shared).toBeGreaterThan(4 * 32 * 64);
      expect(last?.exclusive).toBeLessThan(last?.shared ?? 0);
      const resumed = transferModel();
      const again = new SavepointCheckpoint({ workDir: dir, backend: store, interval: 1, maxKeepCkpts: 2, incremental: true });
      await again.resume(resumed);
      expect(await weightsOf(resumed)).toEqual(await weightsOf(model));
      await again.close();
    } finally {
      await cleanup();
    }
  });
});
