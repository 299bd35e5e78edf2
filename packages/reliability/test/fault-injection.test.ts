// Transient faults are survived and permanent ones fail fast, on every network
// store, through a proxy that injects the cloud's own error answers.
import { createHash } from 'node:crypto';
import { ToyModel } from '@savepoint/backend-test-suite';
import { CheckpointHook, PermissionDeniedError, ReferenceTrainer, type StorageBackend } from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { FaultProxy, recordFigures } from '../src/index.js';
import { NETWORK_STORES_BOTH_S3 } from './stores.js';

const SAVES = 100;
const acc = (epoch: number) => 0.5 + 0.4 * Math.sin(epoch / 7) * Math.cos(epoch / 13);

async function train(store: StorageBackend, workDir: string) {
  const hook = new CheckpointHook({ interval: 1, maxKeepCkpts: 3, saveBest: 'acc', backend: store });
  const trainer = new ReferenceTrainer({
    workDir,
    model: new ToyModel((p) => ({ acc: acc(p.epoch) })),
    checkpointHook: hook,
    itersPerEpoch: 1,
    maxEpochs: SAVES,
    valInterval: 1,
    backend: store,
  });
  await trainer.train();
}

async function snapshot(store: StorageBackend, dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const entry of store.list(dir, { recursive: true })) {
    out[entry.path.slice(dir.length + 1)] = createHash('sha256')
      .update(await store.get(entry.path))
      .digest('hex');
  }
  return out;
}

const figures: Record<string, unknown> = {};
afterAll(() => recordFigures('fault-injection', { stores: figures }));

for (const net of NETWORK_STORES_BOTH_S3) {
  describe.skipIf(!!net.skipReason)(
    `fault injection on ${net.name}${net.skipReason ? ` (skipped: ${net.skipReason})` : ''}`,
    () => {
      it(`with 10% of requests faulted, a ${SAVES}-save run completes byte-identical to a fault-free run`, async () => {
        await net.prepare();
        const direct = net.make(net.origin as string);
        const dir = `${net.root}/faults-${Date.now()}`;
        await train(direct, dir);
        const expected = await snapshot(direct, dir);
        await direct.rmtree(dir);
        expect(Object.keys(expected).length).toBeGreaterThanOrEqual(5);

        const proxy = await new FaultProxy({
          target: net.origin as string,
          cloud: net.cloud,
          seed: 20261129,
          faultRate: 0.1,
        }).start();
        try {
          const faulty = net.make(proxy.url, { retries: 10, minDelayMs: 1, maxDelayMs: 20 });
          await train(faulty, dir);
          expect(await snapshot(direct, dir)).toEqual(expected);
          expect(proxy.faultsInjected).toBeGreaterThan(10);
          figures[net.name] = {
            requests: proxy.stats.requests,
            faultsInjected: proxy.faultsInjected,
            faultsSurvived: proxy.faultsInjected,
            byKind: proxy.stats.faults,
            saves: SAVES,
          };
        } finally {
          await proxy.stop();
          await direct.rmtree(dir);
        }
      }, 300_000);

      it('with a permanent 403, the first save fails fast with a clear error and is not retried', async () => {
        await net.prepare();
        const proxy = await new FaultProxy({ target: net.origin as string, cloud: net.cloud, seed: 1, mode: 'deny' }).start();
        try {
          const store = net.make(proxy.url, { retries: 5, minDelayMs: 200, maxDelayMs: 1000 });
          const started = performance.now();
          const error = await train(store, `${net.root}/denied-${Date.now()}`).catch((e: unknown) => e);
          const elapsed = performance.now() - started;
          expect(error).toBeInstanceOf(PermissionDeniedError);
          // The first request of a run reads the generation its pointer records (the lease is taken above it).
          expect(String((error as Error).message)).toMatch(
            new RegExp(`^\\[${net.cloud}\\] stat .*/last_checkpoint: access denied`),
          );
          // Not retried: one request. The time only rules out a backoff being waited out
          // (five retries of 200-1,000 ms each); a tight bound turned red on a busy machine.
          expect(proxy.stats.requests).toBe(1);
          expect(elapsed).toBeLessThan(10_000);
          figures[`${net.name}-403`] = {
            requests: proxy.stats.requests,
            retried: proxy.stats.requests - 1,
            failedFastMs: Math.round(elapsed),
          };
        } finally {
          await proxy.stop();
        }
      }, 60_000);
    },
  );
}
