// The one place that reads the S3 SDK's error shapes. Everything else in this
// package speaks the contract's errors.

import { isNetworkError, safeCause } from '@savepoint/core/kit';
import {
  BackendError,
  NotFoundError,
  PermissionDeniedError,
  redact,
  type SavepointError,
  TransientError,
} from '@savepoint/core/store';

export const BACKEND_NAME = 's3';

/** HeadObject answers a bare 404 named `NotFound`; GetObject answers `NoSuchKey`. */
const NOT_FOUND_CODES = new Set(['NotFound', 'NoSuchKey', 'NoSuchVersion']);
const DENIED_CODES = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'AllAccessDisabled',
  'AccountProblem',
]);
const TRANSIENT_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  // Another conditional write to the key is in flight: AWS asks for a retry, which then sees its outcome.
  'ConditionalRequestConflict',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

function shape(error: unknown): { name: string; status: number | undefined; code: string | undefined; message: string } {
  const e = (error ?? {}) as SdkErrorShape;
  return { name: e.Code ?? e.name ?? '', status: e.$metadata?.httpStatusCode, code: e.code, message: String(e.message ?? error) };
}

/** Throttling, 5xx and dropped connections: what the retry helper may try again. */
export function isTransientS3Error(error: unknown): boolean {
  const { name, status, message } = shape(error);
  if (TRANSIENT_CODES.has(name)) return true;
  if (status !== undefined && (status === 429 || status >= 500)) return true;
  return !status && (isNetworkError(error) || /network/i.test(message));
}

/** Maps an SDK error to the contract's errors, with every credential scrubbed. */
export function mapS3Error(
  error: unknown,
  path: string,
  operation: string,
  secrets: readonly (string | undefined)[],
): SavepointError {
  const { name, status, message } = shape(error);
  const options = { backend: BACKEND_NAME, cause: safeCause(error, secrets) };
  const detail = redact(`${name || 'Error'}${status ? ` (HTTP ${status})` : ''}: ${message}`, secrets);
  if (name === 'CredentialsProviderError') {
    return new PermissionDeniedError(
      `${operation} ${path}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass {"credentials": {"accessKeyId": ..., "secretAccessKey": ...}} in backendArgs`,
      options,
    );
  }
  if (NOT_FOUND_CODES.has(name) || (status === 404 && name !== 'NoSuchBucket')) {
    return new NotFoundError(path, { ...options, message: `${operation}: no object at ${path}` });
  }
  if (name === 'NoSuchBucket') {
    return new NotFoundError(path, {
      ...options,
      message: `${operation} ${path}: the bucket does not exist; create it or fix the URI`,
    });
  }
  if (DENIED_CODES.has(name) || status === 403 || status === 401) {
    return new PermissionDeniedError(
      `${operation} ${path}: access denied (${detail}); check the credentials and the bucket policy`,
      options,
    );
  }
  if (isTransientS3Error(error)) return new TransientError(`${operation} ${path}: ${detail}`, options);
  return new BackendError(`${operation} ${path}: ${detail}`, options);
}
