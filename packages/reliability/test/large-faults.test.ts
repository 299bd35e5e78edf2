// 30% of requests faulted, on objects of several parts per store: errors, resets
// before the server sees a request, resets after it applied one, stalls, and resets
// in the middle of a response body. Every save and every load must succeed, byte
// for byte: uploads retry each part (GCS resumes its session), reads resume from the
// last byte received.
import { createHash, randomBytes } from 'node:crypto';
import { AzureBackend } from '@savepoint/backend-azure';
import { GcsBackend } from '@savepoint/backend-gcs';
import { S3Backend } from '@savepoint/backend-s3';
import type { StorageBackend } from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type Cloud, FaultProxy, type FaultStats, recordFigures } from '../src/index.js';
import { NETWORK_STORES_BOTH_S3 } from './stores.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const ROUNDS = 4;
const RETRY = { retries: 12, minDelayMs: 1, maxDelayMs: 20 };
const MIN_BODY_RESETS = 3;

/** Per store: the smallest part the store allows, and an object of 3.5 of them. */
const SHAPES: Record<Cloud, { partBytes: number; make(args: Record<string, unknown>, part: number): StorageBackend }> = {
  s3: { partBytes: 5 * MiB, make: (args, part) => new S3Backend({ ...args, partSize: part, queueSize: 2 }) },
  gcs: { partBytes: 256 * KiB, make: (args, part) => new GcsBackend({ ...args, chunkSize: part }) },
  azure: { partBytes: 256 * KiB, make: (args, part) => new AzureBackend({ ...args, blockSize: part, concurrency: 2 }) },
};

async function* chunked(data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < data.byteLength; offset += size) yield data.subarray(offset, offset + size);
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const figures: Record<string, unknown> = {};
afterAll(() => recordFigures('large-faults', { stores: figures }));

for (const net of NETWORK_STORES_BOTH_S3) {
  describe.skipIf(!!net.skipReason)(`30% faults on multi-part objects on ${net.name}`, () => {
    it('every save and load of a 3.5-part object succeeds byte for byte', async () => {
      await net.prepare();
      const shape = SHAPES[net.cloud];
      const size = Math.round(shape.partBytes * 3.5);
      // Saves through one proxy, loads through another, so that each sees the faults that
      // matter to it: resets after the server applied a write, and resets mid-body on reads.
      const proxy = await new FaultProxy({
        target: net.origin as string,
        cloud: net.cloud,
        seed: 7,
        faultRate: 0.3,
        stallMs: 20,
        kinds: ['status500', 'status503', 'status429', 'reset', 'stall', 'appliedReset'],
      }).start();
      const readProxy = await new FaultProxy({
        target: net.origin as string,
        cloud: net.cloud,
        seed: 11,
        faultRate: 0.3,
        stallMs: 20,
        kinds: ['bodyReset', 'status503', 'reset', 'bodyReset'],
      }).start();
      const faulty = shape.make(net.args(proxy.url, RETRY), shape.partBytes);
      const reader = shape.make(net.args(readProxy.url, RETRY), shape.partBytes);
      const direct = shape.make(net.args(net.origin as string), shape.partBytes);
      const dir = `${net.root}/large-faults-${Date.now()}`;
      let saves = 0;
      let loads = 0;
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const data = new Uint8Array(randomBytes(size));
          const path = `${dir}/object-${round}.bin`;
          await faulty.put(path, chunked(data, 64 * KiB));
          expect(sha(await direct.get(path)), `save ${round}`).toBe(sha(data));
          saves++;
          expect(sha(await reader.get(path)), `load ${round}`).toBe(sha(data));
          const parts: Uint8Array[] = [];
          for await (const chunk of await reader.getStream(path)) parts.push(chunk);
          expect(sha(Buffer.concat(parts)), `stream ${round}`).toBe(sha(data));
          loads += 2;
        }
        // Reads go on until a few bodies were cut mid-way: a seeded run of 8 reads may
        // draw none (and then proves nothing about resuming); bounded, byte for byte.
        const lastPath = `${dir}/object-${ROUNDS - 1}.bin`;
        const lastSha = sha(await direct.get(lastPath));
        for (let extra = 0; readProxy.stats.faults.bodyReset < MIN_BODY_RESETS && extra < 40; extra++) {
          expect(sha(await reader.get(lastPath)), `extra load ${extra}`).toBe(lastSha);
          loads++;
        }
        const faults: FaultStats['faults'] = { ...proxy.stats.faults };
        for (const [kind, n] of Object.entries(readProxy.stats.faults)) faults[kind as keyof typeof faults] += n;
        // Both kinds that matter happened, or the run proved nothing about them.
        expect(faults.appliedReset, 'resets after an applied write').toBeGreaterThan(0);
        expect(faults.bodyReset, 'resets in the middle of a read').toBeGreaterThanOrEqual(MIN_BODY_RESETS);
        figures[net.name] = {
          objectBytes: size,
          partBytes: shape.partBytes,
          saves,
          loads,
          requests: proxy.stats.requests + readProxy.stats.requests,
          faultsInjected: proxy.faultsInjected + readProxy.faultsInjected,
          byKind: faults,
        };
      } finally {
        await proxy.stop();
        await readProxy.stop();
        await reader.close?.();
        await direct.rmtree(dir).catch(() => {});
        await faulty.close?.();
        await direct.close?.();
      }
    }, 240_000);
  });
}
