// The adapter's read path, on its own because it is the one loop that outlives a
// request: it runs as long as the consumer reads. One GET per read (its headers give
// the size and version), and a body that, cut in the middle, is read on from the last
// byte received, pinned to the version first seen, within the retry budget: a reset
// never restarts a 10 GiB download from zero. The adapter lends it the rules every
// request shares (settings, error mapping, head), so a read fails as any request does.
import type { GetOptions } from '../store/contract.js';
import {
  AbortedError,
  BackendError,
  InvalidPathError,
  isTransient,
  NotFoundError,
  SavepointError,
  TransientError,
} from '../store/errors.js';
import type { ObjectLocation } from '../store/object-path.js';
import { type RetryPolicy, waitBeforeRetry } from './backoff.js';
import type { ObjectHead, ObjectRead, ObjectStorePrimitives, ReadRange } from './primitives.js';
import { rangeHeader } from './primitives.js';
import { ProgressTimer } from './progress-timer.js';

/** What a read borrows from the adapter: the rules it shares with every other request. */
export interface RequestRules {
  readonly store: ObjectStorePrimitives;
  readonly settings: { readonly retry: RetryPolicy; readonly requestTimeoutMs: number };
  head(path: string, operation: string, signal: AbortSignal | undefined): Promise<ObjectHead>;
  /** The contract's error for a failed attempt (abort and timeout first, then the cloud's classifier). */
  mapFailure(error: unknown, path: string, operation: string, signal: AbortSignal | undefined, timer?: ProgressTimer): unknown;
  aborted(path: string, operation: string, signal: AbortSignal): AbortedError;
}

/** A read ready to stream: the byte count it will yield (the range clamped to the object) and its chunks. */
export interface OpenedRead {
  length: number;
  chunks: AsyncIterable<Uint8Array>;
}

/** Failures in a row of one read: every byte received resets it, so a long read is not cut by failures hours apart. */
interface ReadFailures {
  failures: number;
}

/** A read whose end is known: the object's size has clamped it. */
type BoundedRange = ReadRange & { end: number };

export class ResumableReader {
  readonly #rules: RequestRules;

  constructor(rules: RequestRules) {
    this.#rules = rules;
  }

  /**
   * Opens a read of `location` (or a range of it). The first GET answers "missing"
   * before the first chunk, and its headers give the size and version: one request per
   * read, not a head and then a GET.
   */
  async open(path: string, location: ObjectLocation, options: GetOptions): Promise<OpenedRead> {
    checkRange(path, options.range, this.#rules.store.name);
    const { signal } = options;
    const start = options.range?.start ?? 0;
    const wanted = options.range?.end;
    if (wanted !== undefined && wanted <= start) {
      // No GET can ask for zero bytes: a head says whether the object is there.
      await this.#rules.head(path, 'get', signal);
      return { length: 0, chunks: noChunks() };
    }
    const state: ReadFailures = { failures: 0 };
    const { opened, timer } = await this.#openAt(path, location, { start, end: wanted, version: undefined }, signal, state);
    if (!opened) {
      // 416: the object is there, and the range starts at or past its end.
      timer.dispose();
      return { length: 0, chunks: noChunks() };
    }
    let { size, version } = opened;
    try {
      if (size === undefined) {
        // A whole answer without a length (chunked): the head gives it, for such servers only.
        const head = await this.#rules.head(path, 'get', signal);
        version ??= head.version;
        size = head.size;
      }
      // The size is a stranger's header: it bounds the read and sizes get()'s buffer.
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new BackendError(`get ${path}: the store answered an invalid object size (${size})`, {
          backend: this.#rules.store.name,
        });
      }
    } catch (error) {
      timer.dispose();
      await closeBody(opened.body);
      throw error;
    }
    const end = Math.min(wanted ?? size, size);
    if (end <= start) {
      timer.dispose();
      await closeBody(opened.body);
      return { length: 0, chunks: noChunks() };
    }
    return {
      length: end - start,
      chunks: this.#resumableRead(path, location, { start, end, version }, signal, state, { body: opened.body, timer }),
    };
  }

  /**
   * One GET from `range.start`, its transient failures retried within the budget. The
   * timer it returns keeps timing the body; the caller disposes of it.
   */
  async #openAt(
    path: string,
    location: ObjectLocation,
    range: ReadRange,
    signal: AbortSignal | undefined,
    state: ReadFailures,
  ): Promise<{ opened: ObjectRead | undefined; timer: ProgressTimer }> {
    while (true) {
      if (signal?.aborted) throw this.#rules.aborted(path, 'get', signal);
      const timer = new ProgressTimer(this.#rules.settings.requestTimeoutMs, signal);
      try {
        const opened = await this.#rules.store.read(location, range, timer);
        if (opened?.size === undefined && opened && rangeHeader(range) !== undefined) {
          await closeBody(opened.body);
          throw rangeIgnoredError();
        }
        return { opened, timer };
      } catch (error) {
        timer.dispose();
        await this.#retryReadOrThrow(error, path, signal, timer, state);
      }
    }
  }

  /** Waits out the backoff when a read's failure is transient and the budget allows; throws the mapped error otherwise. */
  async #retryReadOrThrow(
    error: unknown,
    path: string,
    signal: AbortSignal | undefined,
    timer: ProgressTimer,
    state: ReadFailures,
  ): Promise<void> {
    const { retry } = this.#rules.settings;
    const mapped = this.#rules.mapFailure(error, path, 'get', signal, timer);
    if (!isTransient(mapped) || state.failures >= retry.retries) throw mapped;
    state.failures++;
    await waitBeforeRetry(retry, state.failures, signal);
    if (signal?.aborted) throw this.#rules.aborted(path, 'get', signal);
  }

  /**
   * A resumed read that failed for good: when the object is no longer the version the
   * read began on (replaced or deleted meanwhile: the store answered 412, or 404 for a
   * generation), says so, instead of a bare precondition or not-found error.
   */
  async #explainChanged(
    error: unknown,
    path: string,
    range: BoundedRange,
    position: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    if (!(error instanceof SavepointError) || error.transient || error instanceof AbortedError || !range.version) return error;
    const now = await this.#rules.head(path, 'get', signal).then(
      (head) => head.version,
      (headError: unknown) => (headError instanceof NotFoundError ? null : range.version),
    );
    if (now === range.version) return error;
    return new BackendError(
      `get ${path}: the object was ${now === null ? 'deleted' : 'replaced'} while it was being read (after byte ${position} of ${range.end}); read it again`,
      { backend: this.#rules.store.name, cause: error },
    );
  }

  /** The error for a body that failed as it ended, after every byte had arrived. */
  #unverified(error: unknown, path: string, signal: AbortSignal | undefined): SavepointError {
    if (signal?.aborted) return this.#rules.aborted(path, 'get', signal);
    return markUnverified(
      new TransientError(
        `get ${path}: the body failed its end-of-read check after every byte had arrived (the bytes do not match the checksum the store keeps, or the connection broke); read it again`,
        { backend: this.#rules.store.name, cause: error },
      ),
    );
  }

  async *#resumableRead(
    path: string,
    location: ObjectLocation,
    range: BoundedRange,
    signal: AbortSignal | undefined,
    state: ReadFailures,
    first: { body: AsyncIterable<Uint8Array>; timer: ProgressTimer },
  ): AsyncIterable<Uint8Array> {
    let position = range.start;
    let current: { body: AsyncIterable<Uint8Array> | undefined; timer: ProgressTimer } | undefined = first;
    try {
      while (position < range.end) {
        // After a failure mid-body: on from the last byte received, of the version first read.
        if (!current) {
          const { opened, timer } = await this.#openAt(path, location, { ...range, start: position }, signal, state).catch(
            async (error: unknown) => {
              throw await this.#explainChanged(error, path, range, position, signal);
            },
          );
          current = { body: opened?.body, timer };
        }
        const { body, timer } = current;
        let iterator: AsyncIterator<Uint8Array> | undefined;
        let failed = false;
        let failure: unknown;
        try {
          // No body (a 416): the object shrank under a pinned read; the early end below retries, then fails.
          iterator = (body ?? noChunks())[Symbol.asyncIterator]();
          while (true) {
            timer.touch();
            const next = await iterator.next();
            if (next.done) break;
            // Only the network's side is timed: while the consumer works, the clock stops.
            timer.pause();
            const chunk =
              next.value.byteLength > range.end - position ? next.value.subarray(0, range.end - position) : next.value;
            if (position + chunk.byteLength >= range.end) {
              // The last bytes are held until the body has ended: a check the SDK or the
              // backend runs at the end of a body (S3's ChecksumMode, Azure's Content-MD5)
              // then fails the read before the consumer has every byte. Not resumed: the
              // bytes already yielded cannot be taken back.
              timer.touch();
              try {
                await iterator.next();
              } catch (error) {
                throw new UnverifiedBody(this.#unverified(error, path, signal));
              }
            }
            position += chunk.byteLength;
            state.failures = 0;
            yield chunk;
            if (position >= range.end) break;
          }
          if (position < range.end) {
            throw this.#rules.store.classify(
              Object.assign(new Error(`stream ended at byte ${position} of ${range.end}`), { code: 'ECONNRESET' }),
              path,
              'get',
            );
          }
        } catch (error) {
          if (error instanceof UnverifiedBody) throw error.reason;
          failed = true;
          failure = error;
        } finally {
          // Also when the consumer stops early: the response is released.
          await iterator?.return?.().catch(() => {});
        }
        if (failed) {
          timer.dispose();
          current = undefined;
          await this.#retryReadOrThrow(failure, path, signal, timer, state);
        }
      }
    } finally {
      current?.timer.dispose();
    }
  }
}

function checkRange(path: string, range: GetOptions['range'], backend: string): void {
  if (
    range &&
    (!Number.isInteger(range.start) ||
      range.start < 0 ||
      (range.end !== undefined && (!Number.isInteger(range.end) || range.end < range.start)))
  ) {
    throw new InvalidPathError(path, `bad byte range ${JSON.stringify(range)}: need 0 <= start <= end`, { backend });
  }
}

/** A ranged read answered with the object from byte 0 (no Content-Range): refused, never read as the range. */
function rangeIgnoredError(): Error {
  return Object.assign(new Error('the server ignored the Range header (no Content-Range in its answer)'), {
    code: 'ERR_RANGE_IGNORED',
  });
}

function noChunks(): AsyncIterable<Uint8Array> {
  return (async function* () {})();
}

/** Releases a response body that will not be read (its socket goes back to the pool). */
export async function closeBody(body: AsyncIterable<Uint8Array> | undefined): Promise<void> {
  const iterator = body?.[Symbol.asyncIterator]();
  await iterator?.return?.().catch(() => {});
}

/** The errors of reads whose every byte arrived but failed the body's end-of-read check. */
const unverifiedReads = new WeakSet<object>();
function markUnverified<E extends SavepointError>(error: E): E {
  unverifiedReads.add(error);
  return error;
}
/**
 * True for a read that failed its end-of-read check after every byte had arrived: what
 * was read is not the object, and reading it again from the start may give the object.
 */
export function failedEndOfReadCheck(error: unknown): boolean {
  return typeof error === 'object' && error !== null && unverifiedReads.has(error);
}

/** Carries the error of a body's end-of-read check past the resume logic (see #resumableRead). */
class UnverifiedBody extends Error {
  constructor(readonly reason: SavepointError) {
    super(reason.message);
  }
}
