// Reads on every network store: one request each (the first GET's headers give the
// size and version, so no HEAD goes before it: on a cloud that is one round trip per
// small read, the pointer or a tensor of a lazy load), and a ranged answer is trusted
// only when it says which range it holds.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SavepointError } from '@savepoint/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../src/index.js';
import { NETWORK_STORES } from './stores.js';

const data = new Uint8Array(64 * 1024).map((_, i) => (i * 31) % 251);
const MiB = 1024 * 1024;

for (const net of NETWORK_STORES) {
  describe.skipIf(!!net.skipReason)(`reads on ${net.cloud}${net.skipReason ? ` (skipped: ${net.skipReason})` : ''}`, () => {
    const dir = `${net.root}/reads-${Date.now()}`;
    const path = `${dir}/object.bin`;
    beforeAll(async () => {
      await net.prepare();
      await net.make(net.origin as string).put(path, data);
    });

    it('a whole get, a ranged get and a stream are one request each', async () => {
      const proxy = await new FaultProxy({ target: net.origin as string, cloud: net.cloud, seed: 1, faultRate: 0 }).start();
      try {
        const backend = net.make(proxy.url);
        // The first request of a client may fetch a token or settle its configuration: not counted.
        await backend.get(path);
        const reads: [string, () => Promise<Uint8Array>, Uint8Array][] = [
          ['whole get', () => backend.get(path), data],
          ['ranged get', () => backend.get(path, { range: { start: 1000, end: 3000 } }), data.subarray(1000, 3000)],
          ['range to the end', () => backend.get(path, { range: { start: 60_000 } }), data.subarray(60_000)],
          [
            'stream',
            async () => {
              const chunks: Uint8Array[] = [];
              for await (const chunk of await backend.getStream(path)) chunks.push(chunk);
              return Buffer.concat(chunks);
            },
            data,
          ],
        ];
        for (const [what, read, expected] of reads) {
          const before = proxy.stats.requests;
          const bytes = await read();
          expect(Buffer.from(bytes).equals(Buffer.from(expected)), what).toBe(true);
          expect(proxy.stats.requests - before, what).toBe(1);
        }
      } finally {
        await proxy.stop();
      }
    });

    it('a ranged read answered with a 200 and no Content-Range is refused, not taken for the range', async () => {
      const proxy = await new FaultProxy({
        target: net.origin as string,
        cloud: net.cloud,
        seed: 1,
        faultRate: 0,
        mode: 'rangeIgnored',
      }).start();
      try {
        const backend = net.make(proxy.url, { retries: 2, minDelayMs: 1, maxDelayMs: 5 });
        const failure = await backend.get(path, { range: { start: 1000, end: 3000 } }).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(SavepointError);
        expect(String(failure)).toMatch(/ignored the Range header/);
        // Whole reads carry no Range header: they are unaffected.
        expect(Buffer.from(await backend.get(path)).equals(Buffer.from(data))).toBe(true);
      } finally {
        await proxy.stop();
      }
    });

    it('a whole read answered chunked (no Content-Length) reads every byte (the head gives the size), or fails clearly on Azure', async () => {
      const proxy = await new FaultProxy({
        target: net.origin as string,
        cloud: net.cloud,
        seed: 1,
        faultRate: 0,
        mode: 'chunked',
      }).start();
      try {
        const backend = net.make(proxy.url, { retries: 2, minDelayMs: 1, maxDelayMs: 5 });
        if (net.cloud === 'azure') {
          // The Azure SDK refuses a download without Content-Length (Azure always sends one):
          // a clear error, never a short read.
          await expect(backend.get(path)).rejects.toThrow(/content length/);
          return;
        }
        expect(Buffer.from(await backend.get(path)).equals(Buffer.from(data))).toBe(true);
        const chunks: Uint8Array[] = [];
        for await (const chunk of await backend.getStream(path)) chunks.push(chunk);
        expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
      } finally {
        await proxy.stop();
      }
    });

    it('a read cut off mid-body resumes from the version it started on: an object replaced meanwhile fails the read, never mixes in', async () => {
      const direct = net.make(net.origin as string);
      const replaced = `${dir}/replaced.bin`;
      const first = new Uint8Array(2 * MiB).fill(1);
      await direct.put(replaced, first);
      const proxy = await cutOnceProxy(net.origin as string, 256 * 1024);
      try {
        const backend = net.make(proxy.url, { retries: 3, minDelayMs: 1, maxDelayMs: 5 });
        const received: Uint8Array[] = [];
        const reading = (async () => {
          for await (const chunk of await backend.getStream(replaced)) {
            // While the first bytes are in hand, another writer replaces the object.
            if (received.length === 0) await direct.put(replaced, new Uint8Array(2 * MiB).fill(2));
            received.push(chunk);
          }
        })();
        const failure = await reading.then(
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
      } finally {
        await proxy.close();
      }
    });
  });
}

/** Forwards to the server, and cuts the connection of the first answer longer than 1 MiB after `after` bytes of its body. */
async function cutOnceProxy(target: string, after: number) {
  let cuts = 0;
  const server = http.createServer((request, response) => {
    const upstream = http.request(
      new URL(request.url ?? '/', target),
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        const cut = cuts === 0 && Number(answer.headers['content-length'] ?? 0) > MiB;
        if (!cut) return answer.pipe(response);
        cuts++;
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= after) return;
          const part = chunk.subarray(0, after - sent);
          sent += part.byteLength;
          response.write(part);
          if (sent >= after) setTimeout(() => request.socket.destroy(), 20);
        });
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get cuts() {
      return cuts;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
