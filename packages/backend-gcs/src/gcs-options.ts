// Parses `backendArgs` for GCS, using the client's own option names.
import type { Storage, StorageOptions } from '@google-cloud/storage';
import {
  checkEndpointUrl,
  checkInteger,
  checkKnownKeys,
  checkRecord,
  checkString,
  configError,
  hasMethods,
  parseRequestTimeout,
  parseRetryPolicy,
  type RetryPolicy,
  secretConfigError,
} from '@savepoint/core/kit';
import { BACKEND_NAME } from './gcs-errors.js';

export interface GcsBackendOptions {
  /** An already-built client, used as it is. */
  storage?: Storage;
  /** Required with emulators; otherwise detected by the client. */
  projectId?: string;
  /** A service-account key file. */
  keyFilename?: string;
  /** Service-account credentials (`client_email`, `private_key`). Without them and keyFilename, Application Default Credentials. */
  credentials?: { client_email: string; private_key: string };
  /** For emulators and compatible endpoints: `http://127.0.0.1:4443`. */
  apiEndpoint?: string;
  retry?: Partial<RetryPolicy>;
  /** Part size in bytes for streamed uploads (a multiple of 256 KiB). Memory per upload is about chunkSize x (concurrency + 1). */
  chunkSize?: number;
  /** Parts uploaded at once. */
  concurrency?: number;
  /** Deletes in flight at once during rmtree (the client has no batch delete). */
  deleteConcurrency?: number;
  /** Milliseconds a request may go without progress before it is cancelled and retried (default 60000). */
  requestTimeoutMs?: number;
}

export interface ResolvedGcsOptions {
  retry: RetryPolicy;
  concurrency: number;
  requestTimeoutMs: number;
  chunkSize: number;
  deleteConcurrency: number;
  secrets: (string | undefined)[];
  storage: Storage | undefined;
  storageOptions: StorageOptions | undefined;
}

export const GCS_OPTION_NAMES = [
  'storage',
  'projectId',
  'keyFilename',
  'credentials',
  'apiEndpoint',
  'retry',
  'chunkSize',
  'concurrency',
  'deleteConcurrency',
  'requestTimeoutMs',
];
const ctx = { backend: BACKEND_NAME };
const CHUNK_UNIT = 256 * 1024;

export function resolveGcsOptions(options: GcsBackendOptions): ResolvedGcsOptions {
  const raw = checkRecord(options, 'backendArgs', ctx) ?? {};
  checkKnownKeys(raw, GCS_OPTION_NAMES, 'gcs backend', ctx);
  const o = raw as GcsBackendOptions;
  // Reads are authorised by the client and sent by fetch (see gcs-media-read.ts).
  if (
    o.storage !== undefined &&
    (!hasMethods(o.storage, ['bucket', 'makeAuthenticatedRequest']) ||
      typeof (o.storage as { baseUrl?: unknown }).baseUrl !== 'string')
  )
    throw configError(
      'storage',
      o.storage,
      'a Storage from @google-cloud/storage (any version with bucket(), makeAuthenticatedRequest() and baseUrl)',
      ctx,
    );
  const secrets: (string | undefined)[] = [];
  const projectId = o.projectId === undefined ? undefined : checkString(o.projectId, 'projectId', 'a GCP project id', ctx);
  if (o.keyFilename !== undefined && (typeof o.keyFilename !== 'string' || looksLikeKeyContents(o.keyFilename))) {
    // The key's contents passed where its path belongs: say so without printing it.
    throw secretConfigError(
      'keyFilename',
      o.keyFilename,
      'the path of a service-account JSON key file; to pass the key itself, parse it and give it as credentials',
      ctx,
    );
  }
  const keyFilename =
    o.keyFilename === undefined
      ? undefined
      : checkString(o.keyFilename, 'keyFilename', 'a path to a service-account JSON key', ctx);
  let credentials: GcsBackendOptions['credentials'];
  if (o.credentials !== undefined) {
    if (typeof o.credentials !== 'object' || o.credentials === null || Array.isArray(o.credentials)) {
      throw secretConfigError('credentials', o.credentials, 'an object with client_email and private_key strings', ctx);
    }
    const c = o.credentials as unknown as Record<string, unknown>;
    if (typeof c.client_email !== 'string' || typeof c.private_key !== 'string') {
      throw secretConfigError('credentials', c, 'an object with client_email and private_key strings', ctx);
    }
    credentials = { client_email: c.client_email, private_key: c.private_key };
    secrets.push(c.private_key);
  }
  let apiEndpoint: string | undefined;
  if (o.apiEndpoint !== undefined) apiEndpoint = checkEndpointUrl(o.apiEndpoint, 'apiEndpoint', 'http://127.0.0.1:4443', ctx);
  const chunkSize =
    o.chunkSize === undefined
      ? 8 * 1024 * 1024
      : checkInteger(o.chunkSize, 'chunkSize', `a positive multiple of ${CHUNK_UNIT} (256 KiB)`, { ...ctx, min: CHUNK_UNIT });
  if (chunkSize % CHUNK_UNIT !== 0)
    throw configError('chunkSize', o.chunkSize, `a positive multiple of ${CHUNK_UNIT} (256 KiB)`, ctx);
  const deleteConcurrency =
    o.deleteConcurrency === undefined
      ? 16
      : checkInteger(o.deleteConcurrency, 'deleteConcurrency', 'an integer >= 1', { ...ctx, min: 1 });
  const retry = parseRetryPolicy(o.retry, BACKEND_NAME);
  const storageOptions: StorageOptions | undefined = o.storage
    ? undefined
    : {
        ...(projectId ? { projectId } : {}),
        ...(keyFilename ? { keyFilename } : {}),
        ...(credentials ? { credentials } : {}),
        ...(apiEndpoint ? { apiEndpoint } : {}),
        // savepoint's retry helper owns retries (one policy for every backend).
        retryOptions: { autoRetry: false, maxRetries: 0 },
      };
  const requestTimeoutMs = parseRequestTimeout(o.requestTimeoutMs, BACKEND_NAME);
  const concurrency =
    o.concurrency === undefined ? 4 : checkInteger(o.concurrency, 'concurrency', 'an integer >= 1', { ...ctx, min: 1 });
  return { retry, concurrency, requestTimeoutMs, chunkSize, deleteConcurrency, secrets, storage: o.storage, storageOptions };
}

/** A key file's contents rather than its path: JSON, or a PEM block. */
function looksLikeKeyContents(value: string): boolean {
  return /^\s*\{/.test(value) || value.includes('PRIVATE KEY') || value.includes('"private_key"') || value.includes('\n');
}
