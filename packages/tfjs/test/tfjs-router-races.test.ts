// The routers under concurrency, on local disk and S3 (issue 27): concurrent model.save
// calls to one folder leave a loadable model, a load racing saves gets a whole model,
// and a save deletes only weights files savepoint wrote. Each race is forced by holding
// one call of a store back until the other side is done (so it fails before the fix in
// every round, not by chance), then run free for 20 rounds.
import type { StorageBackend } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { savepointIO } from '../src/index.js';
import { buildModel, TF_STORES, weightsOf } from './tfjs-setup.js';

const ROUNDS = 20;

/** `store`, with `hold(path)` awaited before each put (or get) of a matching path. */
function holding(store: StorageBackend, op: 'put' | 'get', match: (path: string) => boolean, hold: () => Promise<void>) {
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (key !== op || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      return async (path: string, ...rest: unknown[]) => {
        if (match(path)) await hold();
        return value.call(target, path, ...rest);
      };
    },
  });
}

/** Two models with different weights (the seeded fixture, and the same filled with `seed`). */
function models(): tf.LayersModel[] {
  const a = buildModel();
  const b = buildModel();
  b.setWeights(b.getWeights().map((w) => tf.fill(w.shape, 0.25)));
  return [a, b];
}

async function binFiles(store: StorageBackend, dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of store.list(dir)) if (entry.name.endsWith('.bin')) out.push(entry.name);
  return out.sort();
}

for (const target of TF_STORES.filter((t) => t.name === 'local' || t.name === 's3')) {
  describe.skipIf(!!target.skipReason)(
    `TensorFlow.js routers under concurrency on ${target.name}${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`,
    () => {
      it(`concurrent saves to one folder leave a model.json whose weights exist (${ROUNDS} rounds)`, async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const [current, next] = models() as [tf.LayersModel, tf.LayersModel];
          const io = (s: StorageBackend) => savepointIO(store.joinPath(dir, 'm'), { backend: s });
          for (let round = 0; round < ROUNDS; round++) {
            await current.save(io(store));
            // Forced: a re-save of the current model whose model.json lands after a save of a new one.
            let releaseResave = () => {};
            const newDone = new Promise<void>((resolve) => {
              releaseResave = resolve;
            });
            const resave = current.save(
              io(
                holding(
                  store,
                  'put',
                  (p) => p.endsWith('model.json'),
                  () => newDone,
                ),
              ),
            );
            await next.save(io(store));
            releaseResave();
            await resave;
            const loaded = await tf.loadLayersModel(io(store));
            expect(await weightsOf(loaded)).toEqual(await weightsOf(current));
            // Free: three saves at once, two of them re-saving the model already there.
            await Promise.all([current.save(io(store)), next.save(io(store)), current.save(io(store))]);
            const winner = await weightsOf(await tf.loadLayersModel(io(store)));
            expect([await weightsOf(current), await weightsOf(next)]).toContainEqual(winner);
          }
          // Leftovers of lost races are bounded (at most one per racing save), and named by no model.json.
          await current.save(io(store));
          const left = await binFiles(store, store.joinPath(dir, 'm'));
          expect(left.length).toBeLessThanOrEqual(1 + 2 * ROUNDS);
          console.info(`${target.name}: ${left.length - 1} weights file(s) left by ${4 * ROUNDS} racing saves`);
        } finally {
          await cleanup();
        }
      }, 120_000);

      it(`a load racing saves gets a whole model, reading model.json again when its weights were replaced (${ROUNDS} rounds)`, async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const [a, b] = models() as [tf.LayersModel, tf.LayersModel];
          const folder = store.joinPath(dir, 'm');
          await a.save(savepointIO(folder, { backend: store }));
          for (let round = 0; round < ROUNDS; round++) {
            const [was, becomes] = round % 2 === 0 ? [a, b] : [b, a];
            // Forced: between the load's read of model.json and of its weights, a save replaces both.
            let saved = false;
            const reader = holding(
              store,
              'get',
              (p) => p.endsWith('.bin') && !saved,
              async () => {
                saved = true;
                await becomes.save(savepointIO(folder, { backend: store }));
              },
            );
            const loaded = await tf.loadLayersModel(savepointIO(folder, { backend: reader }));
            expect(saved).toBe(true);
            expect(await weightsOf(loaded)).toEqual(await weightsOf(becomes));
            expect(await weightsOf(loaded)).not.toEqual(await weightsOf(was));
            // Free: loads while saves run.
            const saves = Promise.all([
              was.save(savepointIO(folder, { backend: store })),
              becomes.save(savepointIO(folder, { backend: store })),
            ]);
            const loads = await Promise.all([1, 2, 3].map(() => tf.loadLayersModel(savepointIO(folder, { backend: store }))));
            await saves;
            for (const model of loads) expect([await weightsOf(a), await weightsOf(b)]).toContainEqual(await weightsOf(model));
          }
        } finally {
          await cleanup();
        }
      }, 120_000);

      it('a load whose model.json names weights that are gone, with no newer model.json, fails with NotFoundError', async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const [a] = models() as [tf.LayersModel];
          const folder = store.joinPath(dir, 'm');
          await a.save(savepointIO(folder, { backend: store }));
          for (const name of await binFiles(store, folder)) await store.remove(store.joinPath(folder, name));
          await expect(tf.loadLayersModel(savepointIO(folder, { backend: store }))).rejects.toMatchObject({
            name: 'NotFoundError',
          });
        } finally {
          await cleanup();
        }
      });

      it('model.save over a foreign model.json deletes none of the files that model.json named', async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const [a, b] = models() as [tf.LayersModel, tf.LayersModel];
          const folder = store.joinPath(dir, 'm');
          await a.save(savepointIO(folder, { backend: store }));
          // A model.json written by someone else: TensorFlow.js's own shard name, and a file of the user's.
          const json = JSON.parse(new TextDecoder().decode(await store.get(store.joinPath(folder, 'model.json'))));
          const [ours] = await binFiles(store, folder);
          const bytes = await store.get(store.joinPath(folder, ours as string));
          await store.remove(store.joinPath(folder, ours as string));
          await store.put(store.joinPath(folder, 'group1-shard1of1.bin'), bytes);
          await store.put(store.joinPath(folder, 'notes.txt'), 'keep me');
          json.weightsManifest[0].paths = ['group1-shard1of1.bin', 'notes.txt'];
          await store.put(store.joinPath(folder, 'model.json'), JSON.stringify(json));
          await b.save(savepointIO(folder, { backend: store }));
          expect(await store.exists(store.joinPath(folder, 'group1-shard1of1.bin'))).toBe(true);
          expect(new TextDecoder().decode(await store.get(store.joinPath(folder, 'notes.txt')))).toBe('keep me');
          expect(await weightsOf(await tf.loadLayersModel(savepointIO(folder, { backend: store })))).toEqual(await weightsOf(b));
        } finally {
          await cleanup();
        }
      });
    },
  );
}
