// The one place that reads @azure/storage-blob's error shapes. Not-found has two:
// getProperties gives a 404 RestError with an empty `code` and
// `details.errorCode: 'BlobNotFound'`; download gives `code: 'BlobNotFound'`.

import { isNetworkError, safeCause } from '@savepoint/core/kit';
import {
  BackendError,
  NotFoundError,
  PermissionDeniedError,
  redact,
  type SavepointError,
  TransientError,
} from '@savepoint/core/store';

export const BACKEND_NAME = 'azure';

const TRANSIENT_CODES = new Set(['ServerBusy', 'InternalError', 'OperationTimedOut']);

interface RestErrorShape {
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { errorCode?: string };
}

export function azureErrorCode(error: unknown): string | undefined {
  const e = (error ?? {}) as RestErrorShape;
  return e.details?.errorCode || e.code || undefined;
}

export function isTransientAzureError(error: unknown): boolean {
  const e = (error ?? {}) as RestErrorShape;
  const code = azureErrorCode(error);
  if (code && TRANSIENT_CODES.has(code)) return true;
  if (isNetworkError(error)) return true;
  if (e.statusCode !== undefined) return e.statusCode === 408 || e.statusCode === 429 || e.statusCode >= 500;
  return false;
}

export function isAzureNotFound(error: unknown): boolean {
  return (error as RestErrorShape)?.statusCode === 404;
}

export function mapAzureError(
  error: unknown,
  path: string,
  operation: string,
  secrets: readonly (string | undefined)[],
): SavepointError {
  const e = (error ?? {}) as RestErrorShape;
  const code = azureErrorCode(error);
  const options = { backend: BACKEND_NAME, cause: safeCause(error, secrets) };
  // Azure messages can quote the request URL, SAS included: redact before use.
  const detail = redact(
    `${code ?? 'Error'}${e.statusCode ? ` (HTTP ${e.statusCode})` : ''}: ${String(e.message ?? error).split('\n')[0]}`,
    secrets,
  );
  if (code === 'ContainerNotFound') {
    return new NotFoundError(path, {
      ...options,
      message: `${operation} ${path}: the container does not exist; create it or fix the URI`,
    });
  }
  if (e.statusCode === 404 || code === 'BlobNotFound')
    return new NotFoundError(path, { ...options, message: `${operation}: no blob at ${path}` });
  if (e.statusCode === 401 || e.statusCode === 403) {
    return new PermissionDeniedError(
      `${operation} ${path}: access denied (${detail}); check the account key, SAS or role assignment`,
      options,
    );
  }
  if (isTransientAzureError(error)) return new TransientError(`${operation} ${path}: ${detail}`, options);
  return new BackendError(`${operation} ${path}: ${detail}`, options);
}
