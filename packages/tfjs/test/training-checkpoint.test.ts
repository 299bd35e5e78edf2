// TrainingCheckpoint: checkpoints for a custom loop (optimizer.minimize), on local disk
// and S3. save(step, metrics) drives CheckpointHook (interval, rotation, bests, async
// saves, publishing); restore() puts back the variables and the optimizer's state, and
// a run stopped and restored ends with the weights of an uninterrupted one.
import { ConfigError, loadCheckpoint } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SavepointCheckpoint, TrainingCheckpoint, toTfTensors } from '../src/index.js';
import { buildModel, dataset, TF_STORES, weightsOf } from './tfjs-setup.js';

const STEPS = 10;

/** y = x·[1, 2, 3, 4] + 0.5 on 64 fixed points. */
function data() {
  const xs = Array.from({ length: 64 }, (_, i) => [i % 4, (i * 7) % 5, (i * 3) % 7, (i % 3) - 1].map((v) => v / 4));
  const ys = xs.map((r) => [r.reduce((s, v, j) => s + v * (j + 1), 0.5)]);
  return { x: tf.tensor2d(xs), y: tf.tensor2d(ys) };
}

/** A fresh regression (a 2-D kernel and a 1-D bias) and its optimizer: the same in every call. */
function regression() {
  const variables = {
    w: tf.variable(tf.zeros([4, 1]), true, `w${Math.random()}`),
    b: tf.variable(tf.zeros([1]), true, `b${Math.random()}`),
  };
  return { variables, optimizer: tf.train.momentum(0.05, 0.9) };
}

/** Trains steps `from + 1 ..= to`, calling `save(step, metrics)` after each. */
async function train(
  { variables, optimizer }: ReturnType<typeof regression>,
  from: number,
  to: number,
  save?: (step: number, metrics: Record<string, number>) => Promise<void>,
) {
  const { x, y } = data();
  const losses: number[] = [];
  for (let step = from + 1; step <= to; step++) {
    const loss = optimizer.minimize(
      () => tf.losses.meanSquaredError(y, x.matMul(variables.w).add(variables.b)),
      true,
    ) as tf.Scalar;
    const value = (await loss.data())[0] as number;
    loss.dispose();
    losses.push(value);
    await save?.(step, { loss: value });
  }
  return losses;
}

const values = async (vars: Record<string, tf.Variable>) =>
  Object.fromEntries(await Promise.all(Object.entries(vars).map(async ([k, v]) => [k, Array.from(await v.data())])));

for (const target of TF_STORES.filter((t) => t.name === 'local' || t.name === 's3')) {
  describe.skipIf(!!target.skipReason)(
    `TrainingCheckpoint in a custom loop on ${target.name}${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`,
    () => {
      it('save(step, metrics) rotates, keeps the best, saves in the background; restore() continues exactly', async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const straight = regression();
          const losses = await train(straight, 0, STEPS);
          const bestStep = losses.indexOf(Math.min(...losses)) + 1; // "less" keeps the first of equals

          const options = {
            workDir: dir,
            backend: store,
            byEpoch: false,
            interval: 2,
            maxKeepCkpts: 2,
            saveBest: 'loss',
            asyncSave: true,
            publishedKeys: ['meta', 'state_dict'],
            maxSteps: STEPS,
          };
          // A first job: 6 steps, then it stops (as a preempted job would).
          const first = regression();
          const before = new TrainingCheckpoint({ ...options, ...first });
          expect(await before.restore()).toEqual({ step: 0 });
          await train(first, 0, 6, (step, metrics) => before.save(step, metrics));
          await before.flush();
          await before.close();

          // A second job, from fresh variables and a fresh optimizer.
          const second = regression();
          const after = new TrainingCheckpoint({ ...options, ...second });
          const { step, path } = await after.restore();
          expect(step).toBe(6);
          expect(path).toBe(store.joinPath(dir, 'iter_6.safetensors'));
          expect(await values(second.variables)).toEqual(await values(first.variables));
          await train(second, step, STEPS, (s, metrics) => after.save(s, metrics));
          await after.finish();
          // Momentum's accumulators came back too: the same weights as an uninterrupted run.
          expect(await values(second.variables)).toEqual(await values(straight.variables));

          const names: string[] = [];
          for await (const entry of store.list(dir)) names.push(entry.name);
          expect(names.filter((n) => /^iter_\d+\.safetensors$/.test(n)).sort()).toEqual([
            'iter_10.safetensors',
            'iter_8.safetensors',
          ]);
          expect(names.filter((n) => /^best_loss_iter_\d+\.safetensors$/.test(n))).toEqual([
            `best_loss_iter_${bestStep}.safetensors`,
          ]);
          expect(names.filter((n) => /-[0-9a-f]{8}\.safetensors$/.test(n))).toHaveLength(2); // published last and best

          // Loaded back, every tensor is a tf tensor with its shape, the 1-D bias too.
          const saved = await loadCheckpoint(store, store.joinPath(dir, 'iter_10.safetensors'));
          const state = toTfTensors(tf, saved.state_dict as Record<string, unknown>) as Record<string, tf.Tensor>;
          expect(state.w?.shape).toEqual([4, 1]);
          expect(state.b?.shape).toEqual([1]);
          expect(state.b).toBeInstanceOf(tf.Tensor);
          expect(Array.from(await (state.b as tf.Tensor).data())).toEqual((await values(second.variables)).b);
          expect(saved.meta).toMatchObject({ iter: 10 });
          expect((saved.optimizer as { class: string }).class).toBe('Momentum');
        } finally {
          await cleanup();
        }
      }, 60_000);

      it('a checkpoint written by the fit callback restores into a custom loop over the same model', async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const { x, y } = dataset();
          const fitted = buildModel('sgd');
          await fitted.fit(x, y, {
            epochs: 2,
            batchSize: 32,
            shuffle: false,
            verbose: 0,
            callbacks: [new SavepointCheckpoint({ workDir: dir, backend: store, interval: 1 })],
          });
          const model = buildModel('sgd');
          const checkpoint = new TrainingCheckpoint({ workDir: dir, backend: store, model, interval: 1 });
          expect((await checkpoint.restore()).step).toBe(2); // epochs, as the callback counted them
          expect(await weightsOf(model)).toEqual(await weightsOf(fitted));
          const optimizer = model.optimizer;
          optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.predict(x) as tf.Tensor) as tf.Scalar);
          await checkpoint.save(3);
          await checkpoint.finish();
          expect(await store.exists(store.joinPath(dir, 'epoch_3.safetensors'))).toBe(true);
        } finally {
          await cleanup();
        }
      }, 60_000);
    },
  );
}

describe('TrainingCheckpoint options', () => {
  it('refuses bad options at construction, naming the value and what is accepted', () => {
    const w = tf.variable(tf.zeros([2]));
    expect(() => new TrainingCheckpoint({ workDir: '/tmp/x', variables: { w: 3 as unknown as tf.Variable } })).toThrow(
      /option "variables" got "w": 3; accepted: an object of tf.Variable by name/,
    );
    expect(() => new TrainingCheckpoint({ workDir: '/tmp/x' })).toThrow(ConfigError);
    expect(() => new TrainingCheckpoint({ workDir: '/tmp/x', variables: { w }, maxSteps: 0 })).toThrow(
      /option "maxSteps" got 0; accepted: an integer >= 1/,
    );
    expect(() => new TrainingCheckpoint({ workDir: '/tmp/x', variables: { w }, optimizer: {} as tf.Optimizer })).toThrow(
      /option "optimizer" got an object \(Object\); accepted: a tf.Optimizer/,
    );
    expect(() => new TrainingCheckpoint({ workDir: '', variables: { w } })).toThrow(/option "workDir" got ""/);
  });

  it('save() refuses a step that does not move forward', async () => {
    const { store, dir, cleanup } = await (TF_STORES[0] as (typeof TF_STORES)[number]).open();
    try {
      const checkpoint = new TrainingCheckpoint({ workDir: dir, backend: store, variables: { w: tf.variable(tf.zeros([2])) } });
      await checkpoint.save(1);
      await expect(checkpoint.save(1)).rejects.toThrow(/save\(\) got step 1; accepted: an integer above the last step \(1\)/);
      await expect(checkpoint.restore()).rejects.toThrow(/restore\(\) after save\(\)/);
      await checkpoint.close();
    } finally {
      await cleanup();
    }
  });
});
