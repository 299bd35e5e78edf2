// Builds S3 backends against the local moto server for this package's tests.
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { localServer } from '../../../test-support/servers.js';
import { S3Backend, type S3BackendOptions } from '../src/index.js';

export const server = localServer('S3');
export const BUCKET = 'savepoint-test';
export const testCredentials = { accessKeyId: 'testing-access-key', secretAccessKey: 'testing-secret-key-0123456789' };

export function s3Args(extra: S3BackendOptions = {}): S3BackendOptions {
  return {
    endpoint: server.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: testCredentials,
    retry: { retries: 3, minDelayMs: 20, maxDelayMs: 200 },
    ...extra,
  };
}

function adminClient(): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { ...testCredentials },
  });
}

export async function ensureBucket(name = BUCKET): Promise<void> {
  const client = adminClient();
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (error) {
    if (!/BucketAlready/.test((error as Error).name)) throw error;
  } finally {
    client.destroy();
  }
}

export async function s3Context() {
  await ensureBucket();
  return { backend: new S3Backend(s3Args()), root: `s3://${BUCKET}/`, storeRoot: `s3://${BUCKET}`, scratchStore: s3ScratchStore };
}

/** A new, empty bucket for the contract's `allowRoot` check; deleted afterwards. */
export async function s3ScratchStore() {
  const bucket = `savepoint-scratch-${randomBytes(4).toString('hex')}`;
  await ensureBucket(bucket);
  return {
    backend: new S3Backend(s3Args()),
    storeRoot: `s3://${bucket}`,
    dispose: async () => {
      const client = adminClient();
      try {
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
    },
  };
}
