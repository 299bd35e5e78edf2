// The one place that reads @google-cloud/storage's error shapes.

import { isNetworkError, safeCause } from '@savepoint/core/kit';
import {
  BackendError,
  NotFoundError,
  PermissionDeniedError,
  redact,
  type SavepointError,
  TransientError,
} from '@savepoint/core/store';

export const BACKEND_NAME = 'gcs';

function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } } | undefined;
  for (const candidate of [e?.code, e?.status, e?.response?.status]) {
    if (typeof candidate === 'number') return candidate;
    if (typeof candidate === 'string' && /^\d{3}$/.test(candidate)) return Number(candidate);
  }
  return undefined;
}

/** 429, 5xx and dropped connections (a pooled socket closed by the server shows up as "socket hang up"). */
export function isTransientGcsError(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  return isNetworkError(error) || /network/i.test(String((error as Error)?.message ?? ''));
}

export function isGcsNotFound(error: unknown): boolean {
  return statusOf(error) === 404;
}

export function mapGcsError(
  error: unknown,
  path: string,
  operation: string,
  secrets: readonly (string | undefined)[],
): SavepointError {
  const status = statusOf(error);
  const options = { backend: BACKEND_NAME, cause: safeCause(error, secrets) };
  const detail = redact(`${status ? `HTTP ${status}: ` : ''}${String((error as Error)?.message ?? error)}`, secrets);
  if (status === 404) {
    // A write cannot miss its object: a 404 there means the bucket is missing.
    const bucketMissing = operation === 'put' || (/bucket/i.test(detail) && !/object|no such key/i.test(detail));
    return new NotFoundError(path, {
      ...options,
      message: bucketMissing
        ? `${operation} ${path}: the bucket does not exist; create it or fix the URI`
        : `${operation}: no object at ${path}`,
    });
  }
  if (status === 401 || status === 403) {
    return new PermissionDeniedError(
      `${operation} ${path}: access denied (${detail}); check the credentials and the bucket's IAM`,
      options,
    );
  }
  if (isTransientGcsError(error)) return new TransientError(`${operation} ${path}: ${detail}`, options);
  return new BackendError(`${operation} ${path}: ${detail}`, options);
}
