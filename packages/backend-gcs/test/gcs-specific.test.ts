// GCS specifics: a resumable upload that fails leaves no object; reads are quiet and
// CRC32C-checked; option errors.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, NotFoundError, SavepointError } from '@savepoint/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { GcsBackend } from '../src/index.js';
import { BUCKET, ensureBucket, gcsArgs, server } from './gcs-setup.js';

const MiB = 1024 * 1024;

describe.skipIf(!!server.skipReason)(
  `gcs backend specifics${server.skipReason ? ` (skipped: ${server.skipReason})` : ''}`,
  () => {
    const base = `gs://${BUCKET}/specific-${Date.now()}`;
    beforeAll(() => ensureBucket());

    it('a resumable upload that fails after several chunks leaves no object and keeps the old one', async () => {
      const backend = new GcsBackend(gcsArgs({ chunkSize: 256 * 1024 }));
      const path = `${base}/resumable.bin`;
      await backend.put(path, 'previous version');
      async function* failing() {
        for (let i = 0; i < 3; i++) yield new Uint8Array(MiB).fill(i);
        throw new Error('source died');
      }
      await expect(backend.put(path, failing())).rejects.toThrow();
      expect(new TextDecoder().decode(await backend.get(path))).toBe('previous version');
      const fresh = `${base}/fresh.bin`;
      await expect(backend.put(fresh, failing())).rejects.toThrow();
      expect(await backend.exists(fresh)).toBe(false);
    });

    it('a multi-chunk resumable upload reads back intact', async () => {
      const backend = new GcsBackend(gcsArgs({ chunkSize: 256 * 1024 }));
      const path = `${base}/chunks.bin`;
      const data = new Uint8Array(3 * MiB + 123).map((_, i) => (i * 7) % 256);
      async function* stream() {
        for (let i = 0; i < data.length; i += 100_000) yield data.subarray(i, i + 100_000);
      }
      await backend.put(path, stream());
      expect(Buffer.from(await backend.get(path)).equals(Buffer.from(data))).toBe(true);
    });

    it("reads add no listeners past Node's limit: no MaxListenersExceededWarning, whole or ranged", async () => {
      const backend = new GcsBackend(gcsArgs());
      const path = `${base}/quiet.bin`;
      const data = new Uint8Array(3 * MiB).map((_, i) => (i * 13) % 251);
      await backend.put(path, data);
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
      process.on('warning', onWarning);
      try {
        for (let i = 0; i < 6; i++) {
          expect(Buffer.from(await backend.get(path)).equals(Buffer.from(data))).toBe(true);
          const part = await backend.get(path, { range: { start: MiB + i, end: 2 * MiB } });
          expect(Buffer.from(part).equals(Buffer.from(data.subarray(MiB + i, 2 * MiB)))).toBe(true);
        }
        // Warnings are emitted on the next tick.
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off('warning', onWarning);
      }
      expect(warnings).toEqual([]);
    });

    it('a whole read whose bytes do not match the stored CRC32C fails, and is not passed off as the object', async () => {
      const path = `${base}/crc.bin`;
      const data = new Uint8Array(MiB).fill(7);
      await new GcsBackend(gcsArgs()).put(path, data);
      const proxy = await corruptingProxy(server.endpoint as string, 1000);
      try {
        const backend = new GcsBackend(gcsArgs({ apiEndpoint: proxy.url }));
        const failure = await backend.get(path).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(SavepointError);
        // Failed as the body ended (read again once, changed again), the CRC32C mismatch as its cause.
        expect(String(failure)).toMatch(/end-of-read check/);
        expect(String((failure as Error).cause)).toMatch(/CRC32C/);
        // A ranged read has no stored checksum to compare with: it gets the bytes as served.
        const part = await backend.get(path, { range: { start: 0, end: 2000 } });
        expect(part[1000]).toBe(7 ^ 0xff);
      } finally {
        await proxy.close();
      }
    });

    it('a missing bucket is NotFoundError', async () => {
      // A few retries: this checks how a 404 is classed, not how a busy server's blips are survived.
      const backend = new GcsBackend(gcsArgs({ retry: { retries: 2, minDelayMs: 10, maxDelayMs: 50 } }));
      await expect(backend.get('gs://no-such-bucket-savepoint/k')).rejects.toBeInstanceOf(NotFoundError);
      expect(await backend.isDir('gs://no-such-bucket-savepoint/k')).toBe(false);
    });

    it('bad options fail at construction, naming the option', () => {
      expect(() => new GcsBackend({ chunkSize: 1000 })).toThrow(ConfigError);
      expect(() => new GcsBackend({ chunkSize: 1000 })).toThrow(
        /"chunkSize" got 1000 \(number\); accepted: a positive multiple of 262144/,
      );
      expect(() => new GcsBackend({ apiEndpoint: 'localhost' })).toThrow(/"apiEndpoint"/);
      expect(() => new GcsBackend({ projectID: 'x' } as never)).toThrow(/unknown gcs backend option "projectID"/);
      const secret = '-----BEGIN PRIVATE KEY-----SECRETSECRET';
      const attempt = () => new GcsBackend({ credentials: { private_key: secret } as never });
      expect(attempt).toThrow(/credentials/);
      try {
        attempt();
      } catch (error) {
        expect(String(error)).not.toContain('SECRETSECRET');
      }
    });
  },
);

/** Forwards to the server, flipping the bits of one byte of every media download. */
async function corruptingProxy(target: string, offset: number) {
  const server = http.createServer((request, response) => {
    const upstream = http.request(
      new URL(request.url ?? '/', target),
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        let position = 0;
        const media = /[?&]alt=media/.test(request.url ?? '');
        answer.on('data', (chunk: Buffer) => {
          if (media && offset >= position && offset < position + chunk.length)
            chunk.writeUInt8(chunk.readUInt8(offset - position) ^ 0xff, offset - position);
          position += chunk.length;
          response.write(chunk);
        });
        answer.on('end', () => response.end());
      },
    );
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
