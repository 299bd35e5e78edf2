// The one backoff every retry in the kit waits by: the request retry (p-retry, below),
// the adapter's resumed reads and its rmtree delete rounds, and S3's multipart
// middleware. One policy (`backendArgs.retry`, defaults below), one delay function
// (jittered exponential) and one abortable wait, so a policy means the same pause
// wherever a backend retries. Only what the backend's error mapper classed as
// transient is retried.
import pRetry from 'p-retry';
import { onAbort } from '../store/abort-listeners.js';
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
      // p-retry counts the attempts and decides when to stop; the pause between them is
      // waitBeforeRetry's (p-retry's own wait is zero), so this loop backs off exactly as
      // the kit's other loops do. With no wait of its own, p-retry only checks the signal
      // (it adds no listener): the caller's signal, shared by many calls, keeps one.
      minTimeout: 0,
      signal,
      shouldRetry: async ({ error, retriesConsumed }) => {
        if (!classify(error)) return false;
        // p-retry throws the signal's reason right after this when the wait was aborted.
        await waitBeforeRetry(policy, retriesConsumed + 1, signal);
        return true;
      },
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && classify(error)) options.onRetry?.({ attempt: attemptNumber, retriesLeft, error });
      },
    });
  } catch (error) {
    if (signal?.aborted && !(error instanceof AbortedError)) {
      throw new AbortedError('operation aborted', { backend, cause: signal.reason });
    }
    throw error;
  }
}

/**
 * The backoff before retry number `attempt` (1-based) under `policy`: `minDelayMs`
 * grown by `factor` per retry, times a random 1 to 2 (so clients throttled together do
 * not come back together), capped at `maxDelayMs`.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const base = policy.minDelayMs * policy.factor ** Math.max(0, attempt - 1);
  return Math.min(policy.maxDelayMs, Math.round(base * (1 + Math.random())));
}

/**
 * Waits out the backoff before retry number `attempt` (1-based). Resolves early, and
 * without an error, when `signal` aborts: each caller then fails with its own error for
 * the abort (which operation, which path).
 */
export function waitBeforeRetry(policy: RetryPolicy, attempt: number, signal: AbortSignal | undefined): Promise<void> {
  return abortableSleep(retryDelayMs(policy, attempt), signal);
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    // One shared listener per signal (onAbort): a caller's signal may cover many waits at once.
    const unsubscribe = signal ? onAbort(signal, done) : undefined;
    function done() {
      clearTimeout(timer);
      unsubscribe?.();
      resolve();
    }
  });
}
