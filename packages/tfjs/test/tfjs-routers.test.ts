// model.save('<scheme>://…') and tf.loadLayersModel('<scheme>://…/model.json') through
// savepoint on every store; the folder is TensorFlow.js's own format (its HTTP loader
// reads it), weights land before model.json, and a re-save leaves no stale weights.

import { readFile, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CorruptCheckpointError } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { InstrumentedBackend } from '../../backend-test-suite/src/instrumented-backend.js';
import { MAX_MODEL_JSON_BYTES, registerSavepointRouters, savepointIO } from '../src/index.js';
import { buildModel, dataset, TF_STORES, weightsOf } from './tfjs-setup.js';

for (const target of TF_STORES) {
  describe.skipIf(!!target.skipReason)(
    `TensorFlow.js routers on ${target.name}${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`,
    () => {
      it('model.save(url) then tf.loadLayersModel(url/model.json) gives the same model', async () => {
        const { store, url, dir, cleanup } = await target.open();
        try {
          const scheme = new URL(url).protocol.replace(':', '');
          registerSavepointRouters({ schemes: [scheme], backend: store });
          const model = buildModel();
          const { x, y } = dataset();
          await model.fit(x, y, { epochs: 2, batchSize: 32, shuffle: false, verbose: 0 });
          const result = await model.save(`${url}/m1`);
          expect(result.modelArtifactsInfo.weightDataBytes).toBeGreaterThan(0);
          const loaded = await tf.loadLayersModel(`${url}/m1/model.json`);
          expect(await weightsOf(loaded)).toEqual(await weightsOf(model));
          const probe = tf.tensor2d([[1, -1, 0.5, 0.5]]);
          expect(Array.from(await (loaded.predict(probe) as tf.Tensor).data())).toEqual(
            Array.from(await (model.predict(probe) as tf.Tensor).data()),
          );
          // A second save over the first: the weights the old model.json named are gone afterwards.
          await model.fit(x, y, { epochs: 1, batchSize: 32, shuffle: false, verbose: 0 });
          await model.save(`${url}/m1`);
          const files: string[] = [];
          for await (const entry of store.list(store.joinPath(dir, 'm1'))) files.push(entry.name);
          expect(files.filter((f) => f.endsWith('.bin'))).toHaveLength(1);
          expect(files).toContain('model.json');
          expect(await weightsOf(await tf.loadLayersModel(`${url}/m1`))).toEqual(await weightsOf(model));
        } finally {
          await cleanup();
        }
      });

      it('writes the weights before model.json, and reads nothing outside the folder a model.json names', async () => {
        const { store, dir, cleanup } = await target.open();
        try {
          const recorded = new InstrumentedBackend(store);
          const model = buildModel();
          await model.save(savepointIO(store.joinPath(dir, 'm2'), { backend: recorded }));
          const puts = recorded.calls.filter((c) => c.op === 'put').map((c) => c.path.slice(c.path.lastIndexOf('/') + 1));
          expect(puts.at(-1)).toBe('model.json');
          expect(puts[0]).toMatch(/^weights-[0-9a-f]{16}-[0-9a-f]{8}\.bin$/);
          const hostile = JSON.parse(new TextDecoder().decode(await store.get(store.joinPath(dir, 'm2', 'model.json'))));
          hostile.weightsManifest[0].paths = ['../secrets.bin'];
          await store.put(store.joinPath(dir, 'm3', 'model.json'), JSON.stringify(hostile));
          await expect(tf.loadLayersModel(savepointIO(store.joinPath(dir, 'm3'), { backend: store }))).rejects.toBeInstanceOf(
            CorruptCheckpointError,
          );
        } finally {
          await cleanup();
        }
      });
    },
  );
}

describe("the saved folder is TensorFlow.js's own format", () => {
  it("loads with TensorFlow.js's HTTP loader when the folder is served as it is", async () => {
    const local = TF_STORES[0];
    if (!local) throw new Error('no local store');
    const { url, dir, cleanup } = await local.open();
    const server = createServer(async (request, response) => {
      try {
        const body = await readFile(join(dir, 'm', decodeURIComponent((request.url ?? '/').slice(1))));
        response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
      } catch {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      registerSavepointRouters({ schemes: ['file'] });
      const model = buildModel();
      await model.save(`${url}/m`);
      const { port } = server.address() as AddressInfo;
      const loaded = await tf.loadLayersModel(`http://127.0.0.1:${port}/model.json`);
      expect(await weightsOf(loaded)).toEqual(await weightsOf(model));
    } finally {
      server.close();
      await cleanup();
    }
  });
});

describe('what a model.json names is checked before it is loaded', () => {
  const local = TF_STORES[0];
  /** A saved model on local disk: its folder, model.json and weights file. */
  async function saved(seed: number) {
    if (!local) throw new Error('no local store');
    const opened = await local.open();
    const model = buildModel();
    if (seed !== 1) model.setWeights(model.getWeights().map((w) => tf.fill(w.shape, seed)));
    await model.save(savepointIO(opened.dir, { backend: opened.store }));
    const json = JSON.parse(await readFile(join(opened.dir, 'model.json'), 'utf8'));
    const weights = join(opened.dir, json.weightsManifest[0].paths[0]);
    return { ...opened, json, weights, load: () => tf.loadLayersModel(savepointIO(opened.dir, { backend: opened.store })) };
  }

  it('a weights file with a flipped byte, or another model’s weights under this name, is refused', async () => {
    const mine = await saved(1);
    const theirs = await saved(2);
    try {
      const bytes = await readFile(mine.weights);
      const flipped = Buffer.from(bytes);
      flipped[5] = (flipped[5] ?? 0) ^ 0x01;
      await writeFile(mine.weights, flipped);
      await expect(mine.load()).rejects.toBeInstanceOf(CorruptCheckpointError);
      await expect(mine.load()).rejects.toThrow(/do not match the SHA-256 its name carries/);
      await writeFile(mine.weights, await readFile(theirs.weights)); // same size, another model
      await expect(mine.load()).rejects.toThrow(/do not match the SHA-256 its name carries/);
      await writeFile(mine.weights, bytes);
      await expect(mine.load()).resolves.toBeDefined();
    } finally {
      await mine.cleanup();
      await theirs.cleanup();
    }
  });

  it('a model.json listing its weights 2,000 times, or over the size bound, is refused', async () => {
    const mine = await saved(1);
    try {
      const path = mine.json.weightsManifest[0].paths[0];
      mine.json.weightsManifest[0].paths = Array.from({ length: 2000 }, () => path);
      await writeFile(join(mine.dir, 'model.json'), JSON.stringify(mine.json));
      await expect(mine.load()).rejects.toThrow(/lists weights file "weights-[0-9a-f]{16}-[0-9a-f]{8}\.bin" twice/);
      mine.json.weightsManifest[0].paths = [7];
      await writeFile(join(mine.dir, 'model.json'), JSON.stringify(mine.json));
      await expect(mine.load()).rejects.toThrow(/names a weights file that is not a string/);
      await truncate(join(mine.dir, 'model.json'), MAX_MODEL_JSON_BYTES + 4096); // sparse
      await expect(mine.load()).rejects.toThrow(new RegExp(`over the ${MAX_MODEL_JSON_BYTES}-byte bound`));
    } finally {
      await mine.cleanup();
    }
  });
});
