// Shared by the TensorFlow.js tests: a small deterministic model and data, and the four
// stores (local disk and the three local cloud servers) with a fresh folder on each.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalBackend } from '@savepoint/backend-local';
import type { StorageBackend } from '@savepoint/core';
import type * as tf from '@tensorflow/tfjs';
import { NETWORK_STORES } from '../../reliability/test/stores.js';

export { buildModel, dataset } from './fixture-model.mjs';

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
