// Builds S3 backends for this package's tests against the two local S3 servers:
// moto (the reference emulator) and the Versity S3 Gateway (versitygw, a production
// S3 server over a POSIX folder), both started by scripts/servers.sh with the same
// static test credentials.
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { Capabilities } from '@savepoint/backend-test-suite';
import { localServer } from '../../../test-support/servers.js';
import { S3Backend, type S3BackendOptions } from '../src/index.js';

export interface S3Server {
  /** What the server is, in test names and figures: `moto`, `versitygw`. */
  name: string;
  endpoint: string | undefined;
  skipReason: string | undefined;
  /** What the contract suite may expect of the server, where it differs from the defaults. */
  capabilities: Partial<Capabilities>;
}

function s3Server(name: string, kind: 'S3' | 'S3_VERSITYGW', capabilities: Partial<Capabilities> = {}): S3Server {
  const found = localServer(kind);
  return { name, endpoint: found.endpoint, skipReason: found.skipReason, capabilities };
}

/** moto, the server every S3 test runs on. */
export const server: S3Server = s3Server('moto', 'S3');
/**
 * versitygw, the second server: the contract, policy, crash and fault tests run on it too.
 * Its POSIX backend keeps each object as a file, so as on local disk a key cannot also
 * be a folder of other keys (`a` beside `a/b`: HTTP 409 ObjectParentIsFile).
 */
export const versitygwServer: S3Server = s3Server('versitygw', 'S3_VERSITYGW', { fileAndFolderSameName: false });
export const S3_SERVERS: readonly S3Server[] = [server, versitygwServer];

export const BUCKET = 'savepoint-test';
export const testCredentials = { accessKeyId: 'testing-access-key', secretAccessKey: 'testing-secret-key-0123456789' };

export function s3Args(extra: S3BackendOptions = {}, on: S3Server = server): S3BackendOptions {
  return {
    endpoint: on.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: testCredentials,
    retry: { retries: 3, minDelayMs: 20, maxDelayMs: 200 },
    ...extra,
  };
}

function adminClient(on: S3Server): S3Client {
  return new S3Client({
    endpoint: on.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { ...testCredentials },
  });
}

export async function ensureBucket(name = BUCKET, on: S3Server = server): Promise<void> {
  const client = adminClient(on);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (error) {
    if (!/BucketAlready/.test((error as Error).name)) throw error;
  } finally {
    client.destroy();
  }
}

export async function s3Context(on: S3Server = server) {
  await ensureBucket(BUCKET, on);
  return {
    backend: new S3Backend(s3Args({}, on)),
    root: `s3://${BUCKET}/`,
    storeRoot: `s3://${BUCKET}`,
    scratchStore: () => s3ScratchStore(on),
    throughProxy: {
      origin: on.endpoint as string,
      make: (origin: string) =>
        new S3Backend(s3Args({ endpoint: origin, retry: { retries: 3, minDelayMs: 1, maxDelayMs: 5 } }, on)),
    },
  };
}

/** A new, empty bucket for the contract's `allowRoot` check; deleted afterwards. */
export async function s3ScratchStore(on: S3Server = server) {
  const bucket = `savepoint-scratch-${randomBytes(4).toString('hex')}`;
  await ensureBucket(bucket, on);
  return {
    backend: new S3Backend(s3Args({}, on)),
    storeRoot: `s3://${bucket}`,
    dispose: async () => {
      const client = adminClient(on);
      try {
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
    },
  };
}
