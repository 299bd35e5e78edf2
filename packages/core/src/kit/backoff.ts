// The one retry helper every network backend uses: jittered exponential backoff
// (p-retry), retrying only what the backend's error mapper classed as transient,
// stopped by an AbortSignal, and configured through `backendArgs.retry`.
import pRetry from 'p-retry';
import { callSignal } from '../store/abort-listeners.js';
import { AbortedError, isTransient } from '../store/errors.js';
import { checkInteger, checkKnownKeys, checkRecord, configError } from '../store/validate.js';

export interface RetryPolicy {
  /** Further attempts after the first. 0 disables retrying. */
  retries: number;
  /** Delay before the first retry, before jitter. */
  minDelayMs: number;
  /** Upper bound of one delay. */
  maxDelayMs: number;
  /** Growth of the delay per attempt. */
  factor: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  retries: 5,
  minDelayMs: 100,
  maxDelayMs: 5_000,
  factor: 2,
});

const RETRY_KEYS = ['retries', 'minDelayMs', 'maxDelayMs', 'factor'] as const;

/** Reads `backendArgs.retry` (`{ retries, minDelayMs, maxDelayMs, factor }`), every field optional. */
export function parseRetryPolicy(value: unknown, backend: string): RetryPolicy {
  const raw = checkRecord(value, 'retry', { backend });
  if (!raw) return { ...DEFAULT_RETRY_POLICY };
  checkKnownKeys(raw, RETRY_KEYS, 'retry', { backend });
  const policy = { ...DEFAULT_RETRY_POLICY };
  if (raw.retries !== undefined) {
    policy.retries = checkInteger(raw.retries, 'retry.retries', 'an integer >= 0', { backend, min: 0 });
  }
  if (raw.minDelayMs !== undefined) {
    policy.minDelayMs = checkInteger(raw.minDelayMs, 'retry.minDelayMs', 'an integer >= 0', { backend, min: 0 });
  }
  if (raw.maxDelayMs !== undefined) {
    policy.maxDelayMs = checkInteger(raw.maxDelayMs, 'retry.maxDelayMs', 'an integer >= minDelayMs', {
      backend,
      min: policy.minDelayMs,
    });
  }
  if (raw.factor !== undefined) {
    if (typeof raw.factor !== 'number' || !(raw.factor >= 1) || !Number.isFinite(raw.factor)) {
      throw configError('retry.factor', raw.factor, 'a finite number >= 1', { backend });
    }
    policy.factor = raw.factor;
  }
  return policy;
}

export interface RetryInfo {
  attempt: number;
  retriesLeft: number;
  error: unknown;
}

export interface WithRetryOptions {
  policy: RetryPolicy;
  signal?: AbortSignal | undefined;
  backend: string;
  /** Turns each failure into the contract's error before it is classified (a backend's error mapper). */
  mapError?: ((error: unknown) => unknown) | undefined;
  /** Which failures are worth another try; defaults to transient `SavepointError`s. */
  isTransient?: ((error: unknown) => boolean) | undefined;
  /** Called before each retry; backends log here (already redacted messages only). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

/** Runs `operation`, retrying it while it throws a transient `SavepointError`. */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, options: WithRetryOptions): Promise<T> {
  const { policy, signal, backend } = options;
  const classify = options.isTransient ?? isTransient;
  if (signal?.aborted) throw new AbortedError('operation aborted before it started', { backend, cause: signal.reason });
  // p-retry listens on the signal while it waits; a signal of this call alone keeps a
  // caller's signal, shared by many calls, at one listener.
  const local = signal ? callSignal(signal) : undefined;
  try {
    const attempt = options.mapError
      ? async (n: number) => {
          try {
            return await operation(n);
          } catch (error) {
            throw options.mapError?.(error) ?? error;
          }
        }
      : operation;
    return await pRetry(attempt, {
      retries: policy.retries,
      factor: policy.factor,
      minTimeout: policy.minDelayMs,
      maxTimeout: policy.maxDelayMs,
      randomize: true,
      signal: local?.signal,
      shouldRetry: ({ error }) => classify(error),
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && classify(error)) options.onRetry?.({ attempt: attemptNumber, retriesLeft, error });
      },
    });
  } catch (error) {
    if (signal?.aborted && !(error instanceof AbortedError)) {
      throw new AbortedError('operation aborted', { backend, cause: signal.reason });
    }
    throw error;
  } finally {
    local?.release();
  }
}

/** The backoff before retry number `attempt` (1-based) under `policy`, with the same jitter as p-retry. */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const base = policy.minDelayMs * policy.factor ** Math.max(0, attempt - 1);
  return Math.min(policy.maxDelayMs, Math.round(base * (1 + Math.random())));
}
