// Shared by the TensorFlow.js tests: a small deterministic model and data, and the four
// stores (local disk and the three local cloud servers) with a fresh folder on each.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalBackend } from '@savepoint/backend-local';
import type { StorageBackend } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { NETWORK_STORES } from '../../reliability/test/stores.js';

tf.setBackend('cpu');

/** A 2-layer network with seeded initialisers: the same weights in every process. */
export function buildModel(optimizer: 'momentum' | 'adam' = 'momentum'): tf.LayersModel {
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      units: 8,
      inputShape: [4],
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      biasInitializer: 'zeros',
    }),
  );
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  model.compile({
    optimizer: optimizer === 'adam' ? tf.train.adam(0.01) : tf.train.momentum(0.1, 0.9),
    loss: 'categoricalCrossentropy',
    metrics: ['acc'],
  });
  return model;
}

/** 96 points in 3 classes, generated from a fixed recurrence (no randomness). */
export function dataset(): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const xs: number[][] = [];
  const ys: number[][] = [];
  let state = 12345;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  for (let i = 0; i < 96; i++) {
    const label = i % 3;
    xs.push([label + next() * 0.8, -label + next() * 0.8, next(), label * 0.5 + next() * 0.3]);
    ys.push([0, 1, 2].map((c) => (c === label ? 1 : 0)));
  }
  return { x: tf.tensor2d(xs), y: tf.tensor2d(ys) };
}

export async function weightsOf(model: tf.LayersModel): Promise<number[][]> {
  return Promise.all(model.getWeights().map(async (w) => Array.from(await w.data())));
}

export interface TfStore {
  name: string;
  skipReason: string | undefined;
  /** A backend and a fresh folder (URI or path) on it; `url` is the same folder as a URL for routers. */
  open(): Promise<{ store: StorageBackend; dir: string; url: string; args: Record<string, unknown>; cleanup(): Promise<void> }>;
}

export const TF_STORES: TfStore[] = [
  {
    name: 'local',
    skipReason: undefined,
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'savepoint-tfjs-'));
      return {
        store: new LocalBackend(),
        dir,
        url: pathToFileURL(dir).href,
        args: {},
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  ...NETWORK_STORES.map(
    (net): TfStore => ({
      name: net.cloud,
      skipReason: net.skipReason,
      async open() {
        await net.prepare();
        const args = net.args(net.origin as string, { retries: 3, minDelayMs: 10, maxDelayMs: 100 });
        const store = net.make(net.origin as string, { retries: 3, minDelayMs: 10, maxDelayMs: 100 });
        const dir = `${net.root}/tfjs-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
        return {
          store,
          dir,
          url: dir,
          args,
          cleanup: async () => {
            await store.rmtree(dir);
            await store.close?.();
          },
        };
      },
    }),
  ),
];
