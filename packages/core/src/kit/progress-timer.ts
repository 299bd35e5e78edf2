// The per-request timeout: a request is cancelled when it makes no progress for
// `requestTimeoutMs` (not when it is merely long), so a large upload or download on a
// slow link is never cut while bytes still move.
import { onAbort } from '../store/abort-listeners.js';
import { checkInteger } from '../store/validate.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Reads `requestTimeoutMs` from backendArgs. */
export function parseRequestTimeout(value: unknown, backend: string): number {
  if (value === undefined) return DEFAULT_REQUEST_TIMEOUT_MS;
  return checkInteger(value, 'requestTimeoutMs', 'an integer >= 1 (milliseconds a request may go without progress)', {
    backend,
    min: 1,
  });
}

/**
 * An abort signal that fires on the caller's abort, or after `ms` without a call to
 * `touch()`. `touch()` runs once per chunk of every download, so it only records the
 * time; one timer checks it and re-arms for the time left, instead of a clearTimeout and
 * setTimeout per chunk.
 */
export class ProgressTimer {
  readonly #controller = new AbortController();
  readonly #ms: number;
  readonly #unsubscribe: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastProgress = 0;
  #paused = false;
  #disposed = false;
  timedOut = false;

  constructor(ms: number, parent: AbortSignal | undefined) {
    this.#ms = ms;
    if (parent?.aborted) this.#controller.abort(parent.reason);
    else if (parent) this.#unsubscribe = onAbort(parent, () => this.#controller.abort(parent.reason));
    this.touch();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  touch(): void {
    this.#lastProgress = performance.now();
    this.#paused = false;
    if (!this.#timer && !this.#disposed) this.#arm(this.#ms);
  }

  /** Stops the clock without firing (while the consumer, not the network, is the slow side). */
  pause(): void {
    this.#paused = true;
  }

  dispose(): void {
    this.#disposed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
  }

  #arm(delayMs: number): void {
    // Unreferenced: the request it watches keeps the process alive on its own, and a
    // stream opened but never read must not hold the process open until the timeout.
    this.#timer = setTimeout(() => this.#check(), delayMs);
    this.#timer.unref?.();
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#paused || this.#disposed) return;
    const idle = performance.now() - this.#lastProgress;
    if (idle < this.#ms) {
      this.#arm(this.#ms - idle);
      return;
    }
    this.timedOut = true;
    this.#controller.abort(new Error(`no progress for ${this.#ms} ms`));
  }
}
