// What S3 is sent for its own checks (issue 28), and the library's copy between stores.
// moto accepts a wrong x-amz-checksum-crc32c (tried: a PutObject with AAAAAA== lands), so
// this asserts what the client sends and asks for; real S3 refuses a mismatch with 400.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '@savepoint/backend-local';
import { type TransferProgress, transferObject } from '@savepoint/core/store';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { S3Backend } from '../src/index.js';
import { NativeCrc32c } from '../src/s3-checksum.js';
import { BUCKET, ensureBucket, S3_SERVERS, s3Args, server } from './s3-setup.js';

const MiB = 1024 * 1024;

/** The headers of every request the client sends, by command, after the SDK added its checksums. */
function recordHeaders(backend: S3Backend): { command: string; headers: Record<string, string> }[] {
  const seen: { command: string; headers: Record<string, string> }[] = [];
  backend.client.middlewareStack.add(
    (next, context) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      seen.push({ command: String(context.commandName), headers: { ...request.headers } });
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: `headers${Math.random()}` },
  );
  return seen;
}

async function* parts(count: number, size: number) {
  for (let i = 0; i < count; i++) yield new Uint8Array(size).fill(i + 1);
}

describe.skipIf(!!server.skipReason)(
  `s3 checksums and transfers${server.skipReason ? ` (skipped: ${server.skipReason})` : ''}`,
  () => {
    const base = `s3://${BUCKET}/checksums-${Date.now()}`;
    let disk: string;
    beforeAll(async () => {
      await ensureBucket();
      disk = await mkdtemp(join(tmpdir(), 'savepoint-transfer-'));
    });
    afterAll(async () => {
      await rm(disk, { recursive: true, force: true });
      const backend = new S3Backend(s3Args());
      await backend.rmtree(base);
      await backend.close();
    });

    it('every upload request carries a CRC32C of its bytes, and whole reads ask for the stored checksum', async () => {
      const backend = new S3Backend(s3Args({ partSize: 5 * MiB }));
      const seen = recordHeaders(backend);
      await backend.put(`${base}/small.bin`, new Uint8Array(1000).fill(7));
      await backend.put(`${base}/big.bin`, parts(3, 4 * MiB));
      await backend.get(`${base}/small.bin`);
      await backend.get(`${base}/small.bin`, { range: { start: 1, end: 10 } });
      const uploads = seen.filter((r) => r.command === 'PutObjectCommand' || r.command === 'UploadPartCommand');
      expect(uploads.map((r) => r.command)).toContain('UploadPartCommand');
      for (const upload of uploads) {
        const names = Object.keys(upload.headers).map((h) => h.toLowerCase());
        // A header, or a trailer announced in x-amz-trailer for a streamed body.
        const crc = names.includes('x-amz-checksum-crc32c') || upload.headers['x-amz-trailer'] === 'x-amz-checksum-crc32c';
        expect(crc, `${upload.command} without a CRC32C`).toBe(true);
      }
      const reads = seen.filter((r) => r.command === 'GetObjectCommand');
      // The whole read asks for it (the SDK then compares); a range has no stored checksum to compare.
      expect(reads[0]?.headers['x-amz-checksum-mode']).toBe('ENABLED');
      await backend.close();
    }, 60_000);

    it('whole reads check the stored CRC32C natively (the SDK pure-JS one cost 2 s per GiB of a load)', async () => {
      if (!NativeCrc32c) throw new Error('@node-rs/crc32 did not load: its binary for this platform is missing');
      // The check value of CRC-32C (RFC 3720 B.4): "123456789" -> 0xE3069283.
      const check = new NativeCrc32c();
      check.update(new TextEncoder().encode('12345'));
      check.update(new TextEncoder().encode('6789'));
      expect(Buffer.from(await check.digest()).toString('hex')).toBe('e3069283');
      check.reset();
      expect(Buffer.from(await check.digest()).toString('hex')).toBe('00000000');

      const backend = new S3Backend(s3Args());
      const body = new Uint8Array(3 * MiB).map((_, i) => i % 251);
      await backend.put(`${base}/native.bin`, body);
      const update = vi.spyOn(NativeCrc32c.prototype, 'update');
      try {
        expect(Buffer.from(await backend.get(`${base}/native.bin`)).equals(Buffer.from(body))).toBe(true);
        const checked = update.mock.calls.reduce((n, [chunk]) => n + (chunk as Uint8Array).byteLength, 0);
        expect(checked).toBe(body.byteLength);
      } finally {
        update.mockRestore();
        await backend.close();
      }
    });

    it('transferObject streams a file from local disk to S3 and back with progress', async () => {
      const local = new LocalBackend({ root: disk });
      const s3 = new S3Backend(s3Args({ partSize: 5 * MiB }));
      const source = join(disk, 'model.bin');
      const size = 12 * MiB + 3;
      await local.put(source, parts(1, size));
      const events: TransferProgress[] = [];
      const up = await transferObject(
        { store: local, path: source },
        { store: s3, path: `${base}/model.bin` },
        { onProgress: (p) => events.push({ ...p }) },
      );
      expect(up.bytes).toBe(size);
      expect(events.length).toBeGreaterThan(1);
      expect(events.at(-1)).toEqual({ bytes: size, totalBytes: size });
      expect((await s3.stat(`${base}/model.bin`)).size).toBe(size);
      // With metadata on S3, a copy between two S3 paths keeps it; back to disk (which keeps none) it is left behind.
      await s3.put(`${base}/tagged.json`, '{}', { contentType: 'application/json', metadata: { step: '7' } });
      const other = new S3Backend(s3Args());
      await transferObject({ store: s3, path: `${base}/tagged.json` }, { store: other, path: `${base}/tagged-copy.json` });
      expect((await other.stat(`${base}/tagged-copy.json`)).metadata).toEqual({ step: '7' });
      await transferObject({ store: s3, path: `${base}/tagged.json` }, { store: local, path: join(disk, 'tagged.json') });
      expect(new TextDecoder().decode(await local.get(join(disk, 'tagged.json')))).toBe('{}');
      await s3.close();
      await other.close();
    }, 120_000);
  },
);

// The data of a checkpoint goes unsigned (x-amz-content-sha256: UNSIGNED-PAYLOAD; its
// signed CRC32C header covers it): signing a buffer cost a SHA-256 pass over every
// uploaded byte. versitygw checks every signature, so it also shows S3 accepts it.
for (const on of S3_SERVERS) {
  describe.skipIf(!!on.skipReason)(
    `s3 payload signing on ${on.name}${on.skipReason ? ` (skipped: ${on.skipReason})` : ''}`,
    () => {
      const base = `s3://${BUCKET}/unsigned-${Date.now()}`;
      beforeAll(() => ensureBucket(BUCKET, on));

      it('data uploads are sent unsigned and land; conditional records keep a signed payload', async () => {
        const backend = new S3Backend(s3Args({ partSize: 5 * MiB }, on));
        const seen = recordHeaders(backend);
        try {
          await backend.put(`${base}/small.bin`, new Uint8Array(1000).fill(7));
          await backend.put(`${base}/big.bin`, parts(3, 4 * MiB));
          expect(await backend.putIfAbsent(`${base}/record.json`, '{"a":1}')).toBe(true);
          const { version } = await backend.stat(`${base}/record.json`);
          await backend.put(`${base}/record.json`, '{"a":2}', { ifMatch: version });
          const payload = (command: string) =>
            seen.filter((r) => r.command === command).map((r) => r.headers['x-amz-content-sha256']);
          expect(payload('UploadPartCommand')).toEqual(['UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD']);
          const puts = payload('PutObjectCommand');
          expect(puts[0]).toBe('UNSIGNED-PAYLOAD');
          expect(puts.slice(1)).toHaveLength(2);
          for (const signed of puts.slice(1)) expect(signed).toMatch(/^[0-9a-f]{64}$/);
          expect(Buffer.from(await backend.get(`${base}/small.bin`)).equals(Buffer.alloc(1000, 7))).toBe(true);
          const big = await backend.get(`${base}/big.bin`);
          expect(big.byteLength).toBe(12 * MiB);
          expect([big[0], big[4 * MiB], big[12 * MiB - 1]]).toEqual([1, 2, 3]);
          expect(new TextDecoder().decode(await backend.get(`${base}/record.json`))).toBe('{"a":2}');
        } finally {
          await backend.rmtree(base);
          await backend.close();
        }
      }, 60_000);
    },
  );
}
