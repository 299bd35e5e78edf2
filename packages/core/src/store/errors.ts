import { redact } from './redact.js';
// The one error hierarchy every savepoint package throws. Callers branch on
// `instanceof` or on `code`; `backend` says which store answered; `cause` keeps
// the SDK's original error for debugging (never shown with credentials: see redact.ts).

export type SavepointErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_PATH'
  | 'CONFIG'
  | 'PERMISSION_DENIED'
  | 'TRANSIENT'
  | 'ABORTED'
  | 'INCOMPLETE_DELETE'
  | 'CORRUPT_CHECKPOINT'
  | 'NOT_OWNED'
  | 'LEASE_HELD'
  | 'PRECONDITION_FAILED'
  | 'UNSUPPORTED'
  | 'BACKEND';

export interface SavepointErrorOptions {
  backend?: string | undefined;
  cause?: unknown;
}

/**
 * The class names of an error's hierarchy, stored on every instance under a global
 * symbol: two copies of core in one dependency tree (a normal npm outcome) each have
 * their own classes, and `instanceof` checks this list, so an error thrown by one copy
 * is still an instance of the other copy's classes.
 */
const KINDS = Symbol.for('savepoint.error.kinds');

export class SavepointError extends Error {
  override readonly name: string = 'SavepointError';
  readonly code: SavepointErrorCode;
  /** Name of the backend that raised it (`s3`, `gcs`, `azure`, `local`, ...), or `core`. */
  readonly backend: string;
  declare readonly [KINDS]: readonly string[];

  constructor(code: SavepointErrorCode, message: string, options: SavepointErrorOptions = {}) {
    const backend = options.backend ?? 'core';
    super(message.startsWith('[') ? message : `[${backend}] ${message}`, { cause: options.cause });
    this.code = code;
    this.backend = backend;
    const kinds: string[] = [];
    for (let klass = new.target; klass && klass !== (Error as unknown); klass = Object.getPrototypeOf(klass)) {
      kinds.push(klass.name);
    }
    // Configurable: an error rebuilt from another thread (errorFromWire) takes the kinds it was sent.
    Object.defineProperty(this, KINDS, { value: Object.freeze(kinds), enumerable: false, configurable: true });
  }

  /** `instanceof` that also recognises errors from another copy of core (see KINDS). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // `this` is the class on the right of `instanceof` (a subclass inherits this method).
    // biome-ignore lint/complexity/noThisInStatic: the subclass, not SavepointError, is meant
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const kinds = (value as { [KINDS]?: unknown } | null | undefined)?.[KINDS];
    // biome-ignore lint/complexity/noThisInStatic: as above
    return Array.isArray(kinds) && kinds.includes(this.name);
  }

  /** Whether the shared retry helper may try the failed operation again. */
  get transient(): boolean {
    return false;
  }
}

/** `get`, `stat` or a read stream found no object at the path. */
export class NotFoundError extends SavepointError {
  override readonly name = 'NotFoundError';
  readonly path: string;
  constructor(path: string, options: SavepointErrorOptions & { message?: string } = {}) {
    super('NOT_FOUND', options.message ?? `not found: ${path}`, options);
    this.path = path;
  }
}

/** A path that is empty, holds a NUL byte, or has a `..`/`.` segment that could escape its root. */
export class InvalidPathError extends SavepointError {
  override readonly name = 'InvalidPathError';
  readonly path: string;
  constructor(path: string, reason: string, options: SavepointErrorOptions = {}) {
    // A path can carry a credential (a SAS query string): never print one.
    const shown = redact(path);
    super('INVALID_PATH', `invalid path ${JSON.stringify(shown)}: ${reason}`, options);
    this.path = shown;
  }
}

/** A bad option: thrown at construction, naming the option, the bad value and what is accepted. */
export class ConfigError extends SavepointError {
  override readonly name = 'ConfigError';
  readonly option: string | undefined;
  constructor(message: string, options: SavepointErrorOptions & { option?: string } = {}) {
    super('CONFIG', message, options);
    this.option = options.option;
  }
}

/** The store refused the credentials or the operation (403/401). Never retried. */
export class PermissionDeniedError extends SavepointError {
  override readonly name = 'PermissionDeniedError';
  constructor(message: string, options: SavepointErrorOptions = {}) {
    super('PERMISSION_DENIED', message, options);
  }
}

/** Throttling, 5xx, or a dropped connection: worth another try with backoff. */
export class TransientError extends SavepointError {
  override readonly name: string = 'TransientError';
  constructor(message: string, options: SavepointErrorOptions = {}) {
    super('TRANSIENT', message, options);
  }
  override get transient(): boolean {
    return true;
  }
}

/** A request went `requestTimeoutMs` without progress. Transient: retried within the budget, then raised. */
export class TimeoutError extends TransientError {
  override readonly name: string = 'TimeoutError';
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options: SavepointErrorOptions = {}) {
    super(message, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends SavepointError {
  override readonly name = 'AbortedError';
  constructor(message = 'operation aborted', options: SavepointErrorOptions = {}) {
    super('ABORTED', message, options);
  }
}

/** `rmtree` could not delete every key under its prefix, even after retries. */
export class IncompleteDeleteError extends SavepointError {
  override readonly name = 'IncompleteDeleteError';
  readonly remaining: readonly string[];
  constructor(path: string, remaining: readonly string[], options: SavepointErrorOptions = {}) {
    const sample = remaining.slice(0, 5).join(', ');
    super(
      'INCOMPLETE_DELETE',
      `rmtree ${path}: ${remaining.length} object(s) could not be deleted (${sample}${remaining.length > 5 ? ', ...' : ''}); run it again, nothing was reported as deleted that survived`,
      options,
    );
    this.remaining = remaining;
  }
}

/** A checkpoint that cannot be decoded, or a directory checkpoint that does not match its manifest. */
export class CorruptCheckpointError extends SavepointError {
  override readonly name = 'CorruptCheckpointError';
  constructor(message: string, options: SavepointErrorOptions = {}) {
    super('CORRUPT_CHECKPOINT', message, options);
  }
}

/** A path read back from a store (a pointer, runtime info) that is not this run's: loading or deleting it is refused. */
export class ForeignPathError extends SavepointError {
  override readonly name = 'ForeignPathError';
  readonly path: string;
  constructor(path: string, message: string, options: SavepointErrorOptions = {}) {
    super('NOT_OWNED', message, options);
    this.path = path;
  }
}

/** Another writer holds the run's lease: a second trainer, or a prune, on a run being written. */
export class LeaseHeldError extends SavepointError {
  override readonly name = 'LeaseHeldError';
  readonly holder: Record<string, unknown> | undefined;
  constructor(message: string, holder?: Record<string, unknown>, options: SavepointErrorOptions = {}) {
    super('LEASE_HELD', message, options);
    this.holder = holder;
  }
}

/**
 * A conditional write (`put` or `remove` with `ifMatch`) found the object at another
 * version than the caller's, or missing: another writer got there first. Nothing was
 * written. Never retried: the caller reads the object again and decides.
 */
export class PreconditionFailedError extends SavepointError {
  override readonly name = 'PreconditionFailedError';
  readonly path: string;
  /** The version the caller expected (what it passed as `ifMatch`). */
  readonly expected: string;
  constructor(path: string, expected: string, options: SavepointErrorOptions & { message?: string; operation?: string } = {}) {
    super(
      'PRECONDITION_FAILED',
      options.message ??
        `${options.operation ?? 'put'} ${path}: the object is no longer version ${expected} (another writer replaced or deleted it); nothing was written, read it again before writing`,
      options,
    );
    this.path = path;
    this.expected = expected;
  }
}

/**
 * The store cannot do this at all (a signed URL on local disk): declared in its
 * `capabilities`, never retried, the same answer every time.
 */
export class UnsupportedError extends SavepointError {
  override readonly name = 'UnsupportedError';
  readonly operation: string;
  constructor(operation: string, message: string, options: SavepointErrorOptions = {}) {
    super('UNSUPPORTED', message, options);
    this.operation = operation;
  }
}

/** Any other store failure, with the SDK error as `cause`. */
export class BackendError extends SavepointError {
  override readonly name = 'BackendError';
  constructor(message: string, options: SavepointErrorOptions = {}) {
    super('BACKEND', message, options);
  }
}

export function isTransient(error: unknown): boolean {
  return error instanceof SavepointError && error.transient;
}

/** Node and undici codes of a dropped, refused or reset connection. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'REQUEST_SEND_ERROR',
]);

/**
 * A failure of the connection rather than an answer: worth another try. The one list
 * every backend's classifier uses (each still maps its own SDK's codes). Covers errors
 * raised inside a response body (a reset after the headers arrived).
 */
export function isNetworkError(error: unknown): boolean {
  const e = error as { code?: unknown; cause?: { code?: unknown }; message?: unknown } | undefined;
  for (const code of [e?.code, e?.cause?.code]) if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  return /socket hang up|ECONNRESET|EPIPE|premature close|other side closed|^aborted$|^terminated$/i.test(
    String(e?.message ?? ''),
  );
}

/** Whether `error` is a savepoint error (from any copy of core), optionally with this `code`. */
export function isSavepointError(error: unknown, code?: SavepointErrorCode): error is SavepointError {
  return error instanceof SavepointError && (code === undefined || error.code === code);
}

/** Whether `error` says nothing is at the path (`NotFoundError` from any copy of core). */
export function isNotFound(error: unknown): error is NotFoundError {
  return error instanceof NotFoundError;
}

/** An error as it crosses a thread boundary (a worker's `postMessage` keeps no class). */
export interface ErrorOnTheWire {
  name: string;
  message: string;
  code?: string | undefined;
  backend?: string | undefined;
  kinds?: readonly string[] | undefined;
}

/** What a worker sends of an error it raised. */
export function errorToWire(error: unknown): ErrorOnTheWire {
  if (error instanceof SavepointError) {
    return { name: error.name, message: error.message, code: error.code, backend: error.backend, kinds: [...error[KINDS]] };
  }
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
}

/**
 * The error a worker raised, rebuilt in this thread: the same message and code, and
 * `instanceof` every class of its hierarchy (through the kinds list, as for an error
 * of another copy of core), so `LeaseHeldError` from the save worker is one here too.
 */
export function errorFromWire(wire: ErrorOnTheWire): Error {
  if (wire.code === undefined) {
    const error = new Error(wire.message);
    error.name = wire.name;
    return error;
  }
  const error = new SavepointError(wire.code as SavepointErrorCode, wire.message, { backend: wire.backend });
  Object.defineProperty(error, 'name', { value: wire.name });
  Object.defineProperty(error, KINDS, { value: Object.freeze([...(wire.kinds ?? ['SavepointError'])]), enumerable: false });
  return error;
}
