// Reads on every network store: one request each (the first GET's headers give the
// size and version, so no HEAD goes before it: on a cloud that is one round trip per
// small read, the pointer or a tensor of a lazy load), and a ranged answer is trusted
// only when it says which range it holds.
import { SavepointError } from '@savepoint/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy, type FaultProxyOptions } from '../src/index.js';
import { NETWORK_STORES, type NetworkStore } from './stores.js';

const data = new Uint8Array(64 * 1024).map((_, i) => (i * 31) % 251);
const MiB = 1024 * 1024;

/** Runs `check` against a proxy in front of the store's server (no faults unless `options` asks). */
async function throughProxy(net: NetworkStore, options: Partial<FaultProxyOptions>, check: (proxy: FaultProxy) => Promise<void>) {
  const proxy = await new FaultProxy({
    target: net.origin as string,
    cloud: net.cloud,
    seed: 1,
    faultRate: 0,
    ...options,
  }).start();
  try {
    await check(proxy);
  } finally {
    await proxy.stop();
  }
}

for (const net of NETWORK_STORES) {
  describe.skipIf(!!net.skipReason)(`reads on ${net.cloud}${net.skipReason ? ` (skipped: ${net.skipReason})` : ''}`, () => {
    const dir = `${net.root}/reads-${Date.now()}`;
    const path = `${dir}/object.bin`;
    const RETRY = { retries: 3, minDelayMs: 1, maxDelayMs: 5 };
    beforeAll(async () => {
      await net.prepare();
      await net.make(net.origin as string).put(path, data);
    });

    it('a whole get, a ranged get and a stream are one request each', () =>
      throughProxy(net, {}, async (proxy) => {
        const backend = net.make(proxy.url);
        // The first request of a client may fetch a token or settle its configuration: not counted.
        await backend.get(path);
        const reads: [string, () => Promise<Uint8Array>, Uint8Array][] = [
          ['whole get', () => backend.get(path), data],
          ['ranged get', () => backend.get(path, { range: { start: 1000, end: 3000 } }), data.subarray(1000, 3000)],
          ['range to the end', () => backend.get(path, { range: { start: 60_000 } }), data.subarray(60_000)],
          ['stream', async () => Buffer.concat(await collect(await backend.getStream(path))), data],
        ];
        for (const [what, read, expected] of reads) {
          const before = proxy.stats.requests;
          const bytes = await read();
          expect(Buffer.from(bytes).equals(Buffer.from(expected)), what).toBe(true);
          expect(proxy.stats.requests - before, what).toBe(1);
        }
      }));

    it('a ranged read answered with a 200 and no Content-Range is refused, not taken for the range', () =>
      throughProxy(net, { mode: 'rangeIgnored' }, async (proxy) => {
        const backend = net.make(proxy.url, RETRY);
        const failure = await backend.get(path, { range: { start: 1000, end: 3000 } }).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(SavepointError);
        expect(String(failure)).toMatch(/ignored the Range header/);
        // Whole reads carry no Range header: they are unaffected.
        expect(Buffer.from(await backend.get(path)).equals(Buffer.from(data))).toBe(true);
      }));

    it('a whole read answered chunked (no Content-Length) reads every byte (the head gives the size), or fails clearly on Azure', () =>
      throughProxy(net, { mode: 'chunked' }, async (proxy) => {
        const backend = net.make(proxy.url, RETRY);
        if (net.cloud === 'azure') {
          // The Azure SDK refuses a download without Content-Length (Azure always sends one):
          // a clear error, never a short read.
          await expect(backend.get(path)).rejects.toThrow(/content length/);
          return;
        }
        expect(Buffer.from(await backend.get(path)).equals(Buffer.from(data))).toBe(true);
        expect(Buffer.concat(await collect(await backend.getStream(path))).equals(Buffer.from(data))).toBe(true);
      }));

    it('a read cut off mid-body resumes from the version it started on: an object replaced meanwhile fails the read, never mixes in', async () => {
      const direct = net.make(net.origin as string);
      const replaced = `${dir}/replaced.bin`;
      await direct.put(replaced, new Uint8Array(2 * MiB).fill(1));
      await throughProxy(net, { mode: 'cutOnce', cutAfterBytes: 256 * 1024 }, async (proxy) => {
        const backend = net.make(proxy.url, RETRY);
        const received: Uint8Array[] = [];
        const failure = await (async () => {
          for await (const chunk of await backend.getStream(replaced)) {
            // While the first bytes are in hand, another writer replaces the object.
            if (received.length === 0) await direct.put(replaced, new Uint8Array(2 * MiB).fill(2));
            received.push(chunk);
          }
        })().then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(proxy.cuts).toBe(1);
        expect(failure).toBeInstanceOf(SavepointError);
        expect(String(failure)).toMatch(/replaced while it was being read/);
        const bytes = Buffer.concat(received);
        expect(bytes.byteLength).toBeGreaterThan(0);
        expect(bytes.byteLength).toBeLessThan(2 * MiB);
        expect(bytes.every((b) => b === 1)).toBe(true);
      });
    });
  });
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}
