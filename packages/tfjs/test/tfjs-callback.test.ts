// SavepointCheckpoint drives CheckpointHook from model.fit on every store: rotation,
// bests on the logs' metrics with the rule inferred, publishedKeys, saveLast, async
// saves; resume() restores weights and optimizer state exactly; Python reads the file.
import { execFileSync } from 'node:child_process';
import { loadCheckpoint, openCheckpoint, Run, Tensor } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { PYTHON, pythonSkipReason } from '../../../test-support/python.js';
import { SavepointCheckpoint } from '../src/index.js';
import { buildModel, dataset, TF_STORES, weightsOf } from './tfjs-setup.js';

async function names(store: import('@savepoint/core').StorageBackend, dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of store.list(dir)) out.push(entry.name);
  return out.sort();
}

for (const target of TF_STORES) {
  describe.skipIf(!!target.skipReason)(
    `SavepointCheckpoint on ${target.name}${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`,
    () => {
      it('rotates, keeps the best val_acc (rule inferred), publishes, and points at the last save', async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const model = buildModel();
          const { x, y } = dataset();
          const checkpoint = new SavepointCheckpoint({
            workDir: dir,
            backend: store,
            interval: 1,
            maxKeepCkpts: 2,
            saveBest: 'val_acc',
            publishedKeys: ['meta', 'state_dict'],
          });
          const history = await model.fit(x, y, {
            epochs: 5,
            batchSize: 32,
            shuffle: false,
            validationSplit: 0.25,
            verbose: 0,
            callbacks: [checkpoint],
          });
          const valAcc = history.history.val_acc as number[];
          const bestEpoch = valAcc.indexOf(Math.max(...valAcc)) + 1; // first of equals: "greater" keeps the first
          const files = await names(store, dir);
          expect(files.filter((f) => /^epoch_\d+\.safetensors$/.test(f))).toEqual(['epoch_4.safetensors', 'epoch_5.safetensors']);
          expect(files.filter((f) => /^best_val_acc_epoch_\d+\.safetensors$/.test(f))).toEqual([
            `best_val_acc_epoch_${bestEpoch}.safetensors`,
          ]);
          expect(files.filter((f) => /-[0-9a-f]{8}\.safetensors$/.test(f)).length).toBe(2); // published last and best
          expect(await Run.open(dir, { backend: store }).latest()).toBe(store.joinPath(dir, 'epoch_5.safetensors'));
          // The checkpoint holds the weights by variable name, equal to model.getWeights().
          const saved = await loadCheckpoint(store, store.joinPath(dir, 'epoch_5.safetensors'));
          const state = saved.state_dict as Record<string, Tensor | Float32Array>;
          expect(Object.keys(state)).toEqual(model.weights.map((w) => w.originalName));
          const expected = await weightsOf(model);
          Object.values(state).forEach((t, i) => {
            // A 1-D weight (a bias) comes back as a plain Float32Array, others as a Tensor with its shape.
            expect(Array.from(t instanceof Tensor ? (t.data as Float32Array) : t)).toEqual(expected[i]);
          });
          expect((saved.optimizer as { class: string }).class).toBe('Momentum');
          expect(saved.meta).toMatchObject({ epoch: 5, iter: 15, tfjs_version: tf.version.tfjs });
        } finally {
          await cleanup();
        }
      });

      it('val_loss is tracked with the "less" rule; iteration mode saves by batch', async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const model = buildModel();
          const { x, y } = dataset();
          const checkpoint = new SavepointCheckpoint({
            workDir: store.joinPath(dir, 'loss'),
            backend: store,
            interval: 1,
            maxKeepCkpts: 1,
            saveBest: 'val_loss',
          });
          const history = await model.fit(x, y, {
            epochs: 4,
            batchSize: 32,
            shuffle: false,
            validationSplit: 0.25,
            verbose: 0,
            callbacks: [checkpoint],
          });
          const valLoss = history.history.val_loss as number[];
          const bestEpoch = valLoss.indexOf(Math.min(...valLoss)) + 1;
          expect((await names(store, store.joinPath(dir, 'loss'))).filter((f) => f.startsWith('best_'))).toEqual([
            `best_val_loss_epoch_${bestEpoch}.safetensors`,
          ]);
          const byBatch = new SavepointCheckpoint({
            workDir: store.joinPath(dir, 'iter'),
            backend: store,
            byEpoch: false,
            interval: 4,
            maxKeepCkpts: 2,
          });
          await buildModel().fit(x, y, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0, callbacks: [byBatch] });
          // 3 batches x 3 epochs = 9 iterations: saves at 4 and 8, and the last (9) by saveLast.
          expect(await names(store, store.joinPath(dir, 'iter'))).toEqual(
            expect.arrayContaining(['iter_8.safetensors', 'iter_9.safetensors']),
          );
          expect((await names(store, store.joinPath(dir, 'iter'))).filter((f) => f.startsWith('iter_'))).toHaveLength(2);
        } finally {
          await cleanup();
        }
      });

      it.each(['momentum', 'adam'] as const)(
        'resume() after an interrupted fit ends with the weights of an uninterrupted run (%s, async saves)',
        async (optimizer) => {
          const { store, dir, cleanup } = await target.open();
          try {
            const { x, y } = dataset();
            const options = { batchSize: 32, shuffle: false, verbose: 0 as const };
            const straight = buildModel(optimizer);
            await straight.fit(x, y, { ...options, epochs: 6 });

            const first = buildModel(optimizer);
            const before = new SavepointCheckpoint({
              workDir: dir,
              backend: store,
              interval: 1,
              maxKeepCkpts: 2,
              asyncSave: true,
            });
            await first.fit(x, y, { ...options, epochs: 3, callbacks: [before] });

            const resumed = buildModel(optimizer);
            const after = new SavepointCheckpoint({
              workDir: dir,
              backend: store,
              interval: 1,
              maxKeepCkpts: 2,
              asyncSave: true,
            });
            const { initialEpoch } = await after.resume(resumed);
            expect(initialEpoch).toBe(3);
            await resumed.fit(x, y, { ...options, epochs: 6, initialEpoch, callbacks: [after] });
            const got = await weightsOf(resumed);
            const want = await weightsOf(straight);
            if (optimizer === 'momentum') expect(got).toEqual(want);
            else {
              // TensorFlow.js's Adam recomputes beta^t with pow() on restore, the live run by
              // repeated products: equal to float32 rounding.
              for (const [i, w] of got.entries()) {
                for (const [j, v] of w.entries()) expect(v).toBeCloseTo(want[i]?.[j] as number, 5);
              }
            }
            expect((await names(store, dir)).filter((f) => f.startsWith('epoch_'))).toEqual([
              'epoch_5.safetensors',
              'epoch_6.safetensors',
            ]);
          } finally {
            await cleanup();
          }
        },
      );
    },
  );
}

describe.skipIf(!!pythonSkipReason)(
  `Python reads a checkpoint written from TensorFlow.js${pythonSkipReason ? ` (skipped: ${pythonSkipReason})` : ''}`,
  () => {
    it('safetensors.numpy.load_file gives model.getWeights(), name by name', async () => {
      const local = TF_STORES[0];
      if (!local) throw new Error('no local store');
      const { store, dir, cleanup } = await local.open();
      try {
        const model = buildModel();
        const { x, y } = dataset();
        await model.fit(x, y, {
          epochs: 1,
          batchSize: 32,
          shuffle: false,
          verbose: 0,
          callbacks: [new SavepointCheckpoint({ workDir: dir, backend: store, interval: 1 })],
        });
        const path = store.joinPath(dir, 'epoch_1.safetensors');
        const script = [
          'import json, sys',
          'from safetensors.numpy import load_file',
          'tensors = load_file(sys.argv[1])',
          'print(json.dumps({k: {"shape": list(v.shape), "values": v.flatten().tolist()} for k, v in tensors.items() if k.startswith("state_dict.")}))',
        ].join('\n');
        const out = JSON.parse(execFileSync(PYTHON, ['-c', script, path], { encoding: 'utf8' }));
        const weights = model.weights;
        const values = await weightsOf(model);
        expect(Object.keys(out).sort()).toEqual(weights.map((w) => `state_dict.${w.originalName}`).sort());
        weights.forEach((w, i) => {
          const entry = out[`state_dict.${w.originalName}`];
          expect(entry.shape).toEqual(w.shape);
          // float32 values printed by Python as float64: compare as float32.
          expect(Float32Array.from(entry.values)).toEqual(Float32Array.from(values[i] as number[]));
        });
        const reader = await openCheckpoint(store, path);
        expect(reader.tensorNames.filter((n) => n.startsWith('state_dict.'))).toHaveLength(weights.length);
      } finally {
        await cleanup();
      }
    });
  },
);
