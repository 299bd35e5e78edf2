// model.save('<scheme>://…') and tf.loadLayersModel('<scheme>://…/model.json') through
// savepoint on every store; the folder is TensorFlow.js's own format (its HTTP loader
// reads it), weights land before model.json, and a re-save leaves no stale weights.

import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CorruptCheckpointError } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { InstrumentedBackend } from '../../backend-test-suite/src/instrumented-backend.js';
import { registerSavepointRouters, savepointIO } from '../src/index.js';
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
          expect(puts[0]).toMatch(/^weights-[0-9a-f]{16}\.bin$/);
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
