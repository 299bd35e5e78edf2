// A client passed in is accepted by its shape: a consumer's @aws-sdk/client-s3 one
// minor version away (or a second copy in the tree) works, for small and multipart writes.
import { randomBytes } from 'node:crypto';
import ourPackage from '@aws-sdk/client-s3/package.json' with { type: 'json' };
import { ConfigError } from '@savepoint/core';
import { S3Client as PreviousS3Client } from 'aws-sdk-client-s3-previous';
import previousPackage from 'aws-sdk-client-s3-previous/package.json' with { type: 'json' };
import { describe, expect, it } from 'vitest';
import { S3Backend } from '../src/index.js';
import { BUCKET, ensureBucket, server, testCredentials } from './s3-setup.js';

describe.skipIf(!!server.skipReason)(
  `a client from another @aws-sdk/client-s3 version${server.skipReason ? ` (skipped: ${server.skipReason})` : ''}`,
  () => {
    it('is accepted, and saves and loads small and multipart objects', async () => {
      expect(previousPackage.version).not.toBe(ourPackage.version);
      await ensureBucket();
      const client = new PreviousS3Client({
        endpoint: server.endpoint,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: { ...testCredentials },
      });
      const backend = new S3Backend({ client, partSize: 5 * 1024 * 1024 });
      const dir = `s3://${BUCKET}/client-shape-${randomBytes(4).toString('hex')}`;
      try {
        await backend.put(`${dir}/small.txt`, 'hello');
        expect(new TextDecoder().decode(await backend.get(`${dir}/small.txt`))).toBe('hello');
        const big = randomBytes(11 * 1024 * 1024);
        async function* chunks() {
          for (let i = 0; i < big.byteLength; i += 1024 * 1024) yield big.subarray(i, i + 1024 * 1024);
        }
        await backend.put(`${dir}/big.bin`, chunks());
        expect(Buffer.from(await backend.get(`${dir}/big.bin`)).equals(big)).toBe(true);
      } finally {
        await backend.rmtree(dir);
        client.destroy();
      }
    });

    it('something that is not a client is refused at construction, saying what is accepted', () => {
      expect(() => new S3Backend({ client: { send: 'no' } as never })).toThrow(ConfigError);
      expect(() => new S3Backend({ client: {} as never })).toThrow(
        /accepted: an S3Client from @aws-sdk\/client-s3 \(any 3\.x version/,
      );
    });
  },
);
