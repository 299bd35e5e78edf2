// Turns a path and the user's backend settings into a store. Settings come from
// --backend-args or SAVEPOINT_BACKEND_ARGS (JSON), with the backends' own keys;
// they may also be keyed by backend name ({"s3": {...}, "gcs": {...}}) so that a
// copy between two clouds configures each side.
import { registerAzureBackend } from '@savepoint/backend-azure';
import { registerGcsBackend } from '@savepoint/backend-gcs';
import { registerLocalBackend } from '@savepoint/backend-local';
import { registerS3Backend } from '@savepoint/backend-s3';
import { type BackendArgs, ConfigError, getBackend, type StorageBackend } from '@savepoint/core';
import { storeArgsFor } from '@savepoint/core/store';

export function registerAllBackends(): void {
  registerLocalBackend();
  registerS3Backend();
  registerGcsBackend();
  registerAzureBackend();
}

export function parseBackendArgs(raw: string | undefined, source: string): Record<string, unknown> {
  if (raw === undefined || raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    // The parser's message quotes the text around the error, which may be part of a secret: keep only the position.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new ConfigError(
      `${source} is not valid JSON${position ? ` (error at character ${position})` : ''}; give an object such as '{"region":"us-east-1"}'`,
      { option: source },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${source} must be a JSON object, such as '{"region":"us-east-1"}'`, { option: source });
  }
  return parsed as Record<string, unknown>;
}

/** The store for `path`, configured with the part of `args` that belongs to its backend (see storeArgsFor). */
export function storeFor(path: string, args: Record<string, unknown>): StorageBackend {
  return getBackend(path, storeArgsFor(path, args as BackendArgs));
}
