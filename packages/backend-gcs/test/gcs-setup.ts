// Builds GCS backends against the local fake-gcs-server for this package's tests.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { localServer } from '../../../test-support/servers.js';
import { GcsBackend, type GcsBackendOptions } from '../src/index.js';

export const server = localServer('GCS');
export const BUCKET = 'savepoint-test';

export function gcsArgs(extra: GcsBackendOptions = {}): GcsBackendOptions {
  return {
    apiEndpoint: server.endpoint,
    projectId: 'savepoint-test',
    retry: { retries: 3, minDelayMs: 20, maxDelayMs: 200 },
    ...extra,
  };
}

export async function ensureBucket(name = BUCKET): Promise<void> {
  const storage = new Storage({ apiEndpoint: server.endpoint, projectId: 'savepoint-test' });
  const [exists] = await storage.bucket(name).exists();
  if (!exists) await storage.createBucket(name);
}

/**
 * A service account's key made up for the tests: signed URLs are signed locally with it.
 * Against a custom endpoint the client sends no credentials (useAuthWithCustomEndpoint is
 * off), so the emulator never sees it.
 */
export const signingCredentials = (() => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    client_email: 'savepoint-test@savepoint-test.iam.gserviceaccount.com',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
})();

export async function gcsContext() {
  await ensureBucket();
  return {
    backend: new GcsBackend(gcsArgs({ credentials: signingCredentials })),
    root: `gs://${BUCKET}/`,
    storeRoot: `gs://${BUCKET}`,
    scratchStore: gcsScratchStore,
    throughProxy: {
      origin: server.endpoint as string,
      make: (origin: string) =>
        new GcsBackend(gcsArgs({ apiEndpoint: origin, retry: { retries: 3, minDelayMs: 1, maxDelayMs: 5 } })),
    },
  };
}

/** A new, empty bucket for the contract's `allowRoot` check; deleted afterwards. */
export async function gcsScratchStore() {
  const bucket = `savepoint-scratch-${randomBytes(4).toString('hex')}`;
  await ensureBucket(bucket);
  return {
    backend: new GcsBackend(gcsArgs()),
    storeRoot: `gs://${bucket}`,
    dispose: async () => {
      await new Storage({ apiEndpoint: server.endpoint, projectId: 'savepoint-test' })
        .bucket(bucket)
        .delete({ ignoreNotFound: true });
    },
  };
}
