// Bytes changed on the wire are caught (issue 28): each backend sends a checksum of
// every upload for the server to check, and compares whole downloads against the
// checksum the server stored. A proxy flips one bit in the middle of every request
// body (upload) or answer body (download), leaving headers and lengths alone.
import type { StorageBackend } from '@savepoint/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../src/index.js';
import { NETWORK_STORES_BOTH_S3 } from './stores.js';

const SIZE = 256 * 1024;
const data = (seed: number) => new Uint8Array(SIZE).map((_, i) => (i * 31 + seed) % 251);
const FEW_RETRIES = { retries: 1, minDelayMs: 1, maxDelayMs: 5 };

/**
 * moto stores a PutObject whose bytes do not match its x-amz-checksum-crc32c (tried), so
 * the upload half runs on versitygw, which checks it as S3 does; downloads are compared
 * by the client on every store.
 */
const SERVER_IGNORES_UPLOAD_CHECKSUMS = new Set(['s3']);

for (const net of NETWORK_STORES_BOTH_S3) {
  describe.skipIf(!!net.skipReason)(
    `bytes changed on the wire, ${net.name}${net.skipReason ? ` (skipped: ${net.skipReason})` : ''}`,
    () => {
      // The bucket or container exists before the first direct put (not only inside `through`).
      beforeAll(() => net.prepare(), 60_000);

      async function through(
        mode: 'corruptUpload' | 'corruptDownload',
        test: (viaProxy: StorageBackend, proxy: FaultProxy) => Promise<void>,
        corruptTimes?: number,
      ) {
        await net.prepare();
        const proxy = await new FaultProxy({
          target: net.origin as string,
          cloud: net.cloud,
          seed: 1,
          mode,
          corruptAt: SIZE / 2,
          ...(corruptTimes === undefined ? {} : { corruptTimes }),
        }).start();
        const viaProxy = net.make(proxy.url, FEW_RETRIES);
        try {
          await test(viaProxy, proxy);
        } finally {
          await viaProxy.close?.();
          await proxy.stop();
        }
      }

      const uploadTest = SERVER_IGNORES_UPLOAD_CHECKSUMS.has(net.name) ? it.skip : it;
      uploadTest(
        `an upload changed on the wire is refused and the old object kept${SERVER_IGNORES_UPLOAD_CHECKSUMS.has(net.name) ? ' (skipped: moto does not check upload checksums; versitygw runs it)' : ''}`,
        async () => {
          const direct = net.make(net.origin as string);
          const p = direct.joinPath(net.root, `checksums-${Date.now()}-${Math.random().toString(16).slice(2, 8)}/up.bin`);
          try {
            await direct.put(p, data(1));
            await through('corruptUpload', async (viaProxy, proxy) => {
              await expect(viaProxy.put(p, data(2))).rejects.toThrow();
              expect(proxy.corrupted, 'the proxy changed the upload').toBeGreaterThanOrEqual(1);
            });
            expect(Buffer.from(await direct.get(p)).equals(Buffer.from(data(1))), 'the old object is kept').toBe(true);
          } finally {
            await direct.remove(p).catch(() => {});
            await direct.close?.();
          }
        },
        60_000,
      );

      it('a whole download changed on the wire fails instead of returning the changed bytes', async () => {
        const direct = net.make(net.origin as string);
        const p = direct.joinPath(net.root, `checksums-${Date.now()}-${Math.random().toString(16).slice(2, 8)}/down.bin`);
        try {
          await direct.put(p, data(3));
          await through('corruptDownload', async (viaProxy, proxy) => {
            await expect(viaProxy.get(p)).rejects.toThrow();
            expect(proxy.corrupted, 'the proxy changed the answer').toBeGreaterThanOrEqual(1);
          });
        } finally {
          await direct.remove(p).catch(() => {});
          await direct.close?.();
        }
      }, 60_000);

      it('a whole download changed once on the wire is read again and returns the object; a stream of it fails', async () => {
        const direct = net.make(net.origin as string);
        const p = direct.joinPath(net.root, `checksums-${Date.now()}-${Math.random().toString(16).slice(2, 8)}/again.bin`);
        try {
          await direct.put(p, data(4));
          await through(
            'corruptDownload',
            async (viaProxy, proxy) => {
              const seen: number[] = [];
              const bytes = await viaProxy.get(p, { onProgress: (progress) => seen.push(progress.bytes) });
              expect(proxy.corrupted, 'the proxy changed the first answer').toBe(1);
              expect(Buffer.from(bytes).equals(Buffer.from(data(4))), 'the object, not the changed bytes').toBe(true);
              expect(Math.max(...seen), 'progress is not reported twice').toBeLessThanOrEqual(SIZE);
            },
            1,
          );
          await through(
            'corruptDownload',
            async (viaProxy) => {
              const read = async () => {
                for await (const _chunk of await viaProxy.getStream(p)) {
                  // drained: the consumer has had the bytes, which cannot be taken back
                }
              };
              await expect(read()).rejects.toThrow(/end-of-read check/);
            },
            1,
          );
        } finally {
          await direct.remove(p).catch(() => {});
          await direct.close?.();
        }
      }, 60_000);
    },
  );
}
