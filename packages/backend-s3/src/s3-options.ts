// Parses `backendArgs` for S3, using the SDK's own option names, and builds the client.
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import {
  checkBoolean,
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
import { NativeCrc32c } from './s3-checksum.js';
import { BACKEND_NAME } from './s3-errors.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3BackendOptions {
  /** An already-built client: its own region, credentials and retry settings are used as they are. */
  client?: S3Client;
  region?: string;
  /** For S3-compatible servers: `http://127.0.0.1:9000`. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Static credentials; without them the SDK's default provider chain is used. */
  credentials?: S3Credentials;
  /** A named profile from the shared AWS config files. */
  profile?: string;
  /** savepoint's retry policy (`{ retries, minDelayMs, maxDelayMs, factor }`), applied to every HTTP request. */
  retry?: Partial<RetryPolicy>;
  /** Multipart part size in bytes (>= 5 MiB). An upload holds at most (queueSize + 1) x partSize of parts. */
  partSize?: number;
  /** Parts uploaded at once. */
  queueSize?: number;
  /** DeleteObjects batches in flight at once during rmtree. */
  deleteConcurrency?: number;
  /**
   * Objects larger than this are copied part by part (UploadPartCopy) instead of by one
   * CopyObject. Default 5 GiB, the most S3 copies in one request; lower it for an
   * S3-compatible store with a lower limit. At least 5 MiB.
   */
  multipartCopyBytes?: number;
  /** Milliseconds a request may go without progress before it is cancelled and retried (default 60000). */
  requestTimeoutMs?: number;
}

export interface ResolvedS3Options {
  retry: RetryPolicy;
  partSize: number;
  queueSize: number;
  deleteConcurrency: number;
  multipartCopyBytes: number;
  requestTimeoutMs: number;
  secrets: (string | undefined)[];
  clientConfig: S3ClientConfig | undefined;
  client: S3Client | undefined;
}

export const S3_OPTION_NAMES = [
  'client',
  'region',
  'endpoint',
  'forcePathStyle',
  'credentials',
  'profile',
  'retry',
  'requestTimeoutMs',
  'partSize',
  'queueSize',
  'deleteConcurrency',
  'multipartCopyBytes',
];
const MIN_PART = 5 * 1024 * 1024;
/** The largest object S3 copies in one CopyObject request. */
export const MAX_SINGLE_COPY = 5 * 1024 ** 3;
const COPY_ACCEPTED = `an integer from ${MIN_PART} (5 MiB) to ${MAX_SINGLE_COPY} (5 GiB)`;
const ctx = { backend: BACKEND_NAME };

export function resolveS3Options(options: S3BackendOptions): ResolvedS3Options {
  const raw = checkRecord(options, 'backendArgs', ctx) ?? {};
  checkKnownKeys(raw, S3_OPTION_NAMES, 's3 backend', ctx);
  const o = raw as S3BackendOptions;
  if (o.client !== undefined && !(hasMethods(o.client, ['send', 'destroy']) && hasMethods(o.client.middlewareStack, ['add'])))
    throw configError(
      'client',
      o.client,
      'an S3Client from @aws-sdk/client-s3 (any 3.x version: send, destroy, middlewareStack)',
      ctx,
    );
  const secrets: (string | undefined)[] = [];
  let credentials: S3Credentials | undefined;
  if (o.credentials !== undefined) {
    if (typeof o.credentials !== 'object' || o.credentials === null || Array.isArray(o.credentials)) {
      // A string here is often "<id>:<secret>": describe it, never echo it.
      throw secretConfigError('credentials', o.credentials, 'an object { accessKeyId, secretAccessKey, sessionToken? }', ctx);
    }
    const c = o.credentials as unknown as Record<string, unknown>;
    // The SDK tags credential objects it has used with `$source`; such a reused object is fine.
    checkKnownKeys(
      Object.fromEntries(Object.entries(c).filter(([k]) => !k.startsWith('$'))),
      ['accessKeyId', 'secretAccessKey', 'sessionToken'],
      's3 credentials',
      ctx,
    );
    // Never echo a credential value back in an error: describe the field only.
    if (typeof c.accessKeyId !== 'string' || c.accessKeyId === '')
      throw secretConfigError('credentials.accessKeyId', c.accessKeyId, 'a non-empty string', ctx);
    if (typeof c.secretAccessKey !== 'string' || c.secretAccessKey === '') {
      throw secretConfigError('credentials.secretAccessKey', c.secretAccessKey, 'a non-empty string', ctx);
    }
    if (c.sessionToken !== undefined && typeof c.sessionToken !== 'string') {
      throw secretConfigError('credentials.sessionToken', c.sessionToken, 'a string', ctx);
    }
    credentials = {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken as string | undefined,
    };
    secrets.push(credentials.accessKeyId, credentials.secretAccessKey, credentials.sessionToken);
  }
  const region =
    o.region === undefined ? undefined : checkString(o.region, 'region', 'an AWS region name such as "us-east-1"', ctx);
  let endpoint: string | undefined;
  if (o.endpoint !== undefined) endpoint = checkEndpointUrl(o.endpoint, 'endpoint', 'http://127.0.0.1:9000', ctx);
  const forcePathStyle = o.forcePathStyle === undefined ? undefined : checkBoolean(o.forcePathStyle, 'forcePathStyle', ctx);
  const profile =
    o.profile === undefined ? undefined : checkString(o.profile, 'profile', 'a profile name from ~/.aws/config', ctx);
  const partSize =
    o.partSize === undefined
      ? 8 * 1024 * 1024
      : checkInteger(o.partSize, 'partSize', `an integer >= ${MIN_PART} (5 MiB, S3's minimum part)`, { ...ctx, min: MIN_PART });
  const queueSize = o.queueSize === undefined ? 4 : checkInteger(o.queueSize, 'queueSize', 'an integer >= 1', { ...ctx, min: 1 });
  const deleteConcurrency =
    o.deleteConcurrency === undefined
      ? 4
      : checkInteger(o.deleteConcurrency, 'deleteConcurrency', 'an integer >= 1', { ...ctx, min: 1 });
  const multipartCopyBytes =
    o.multipartCopyBytes === undefined
      ? MAX_SINGLE_COPY
      : checkInteger(o.multipartCopyBytes, 'multipartCopyBytes', COPY_ACCEPTED, { ...ctx, min: MIN_PART });
  if (multipartCopyBytes > MAX_SINGLE_COPY) throw configError('multipartCopyBytes', o.multipartCopyBytes, COPY_ACCEPTED, ctx);
  const retry = parseRetryPolicy(o.retry, BACKEND_NAME);
  const requestTimeoutMs = parseRequestTimeout(o.requestTimeoutMs, BACKEND_NAME);
  const clientConfig: S3ClientConfig | undefined = o.client
    ? undefined
    : {
        region: region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        ...(endpoint ? { endpoint } : {}),
        ...(forcePathStyle !== undefined ? { forcePathStyle } : {}),
        ...(credentials ? { credentials } : {}),
        ...(profile ? { profile } : {}),
        // savepoint owns retries (one policy for every backend).
        maxAttempts: 1,
        // Downloads' checksums checked natively (s3-checksum.ts says why).
        ...(NativeCrc32c ? { checksumAlgorithms: { CRC32C: NativeCrc32c } } : {}),
        // A socket idle this long fails the request (also inside multipart uploads).
        requestHandler: { requestTimeout: requestTimeoutMs, connectionTimeout: requestTimeoutMs },
      };
  return {
    retry,
    requestTimeoutMs,
    partSize,
    queueSize,
    deleteConcurrency,
    multipartCopyBytes,
    secrets,
    clientConfig,
    client: o.client,
  };
}
