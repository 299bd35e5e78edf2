// GCS specifics: a resumable upload that fails leaves no object; option errors.
import { ConfigError, NotFoundError } from '@savepoint/core';
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
