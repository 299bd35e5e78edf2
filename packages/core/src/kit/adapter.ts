// One adapter under every cloud backend. Each cloud supplies a small set of
// required primitives (head, read, write, conditional create, list one
// page, delete many, copy, classify an error); this module owns, once for all
// stores, what they must share: path parsing and guards, exists/isFile/isDir,
// paging and ordering, the retry policy on every request, abort signals passed
// down to the SDK, a per-request timeout, error mapping (also for errors raised
// inside streams), reads that resume from the last byte received (resumable-read.ts),
// and delete rounds with bounded concurrency and backoff.
import pMap from 'p-map';
import { onAbort } from '../store/abort-listeners.js';
import { bodyBytes } from '../store/bytes.js';
import {
  byListOrder,
  checkContentType,
  checkListPaging,
  checkMetadata,
  checkProgressListener,
  checkSignedUrlOptions,
  listSortKey,
  readContentType,
  readMetadata,
} from '../store/call-options.js';
import type {
  CopyOptions,
  GetOptions,
  ListEntry,
  ListOptions,
  ObjectStat,
  PutBody,
  PutOptions,
  RemoveOptions,
  RmtreeOptions,
  SignalOptions,
  SignedUrlOptions,
  StorageBackend,
  StoreCapabilities,
  TransferProgress,
} from '../store/contract.js';
import {
  AbortedError,
  BackendError,
  ConfigError,
  IncompleteDeleteError,
  InvalidPathError,
  isTransient,
  NotFoundError,
  PreconditionFailedError,
  TimeoutError,
} from '../store/errors.js';
import { dirPrefix, joinObjectPath, type ObjectLocation } from '../store/object-path.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, waitBeforeRetry, withRetry } from './backoff.js';
import { bufferIfSmall } from './parts.js';
import type { ObjectHead, ObjectListing, ObjectRequest, ObjectStorePrimitives, WriteAttributes } from './primitives.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, ProgressTimer } from './progress-timer.js';
import { closeBody, failedEndOfReadCheck, ResumableReader } from './resumable-read.js';

export interface ObjectStoreSettings {
  retry: RetryPolicy;
  /** The time one request may go without progress before it is cancelled and retried. */
  requestTimeoutMs: number;
  /** Delete requests in flight at once during rmtree. */
  deleteConcurrency: number;
}

/** Rounds of retrying the keys a delete round left. */
const DELETE_ROUNDS = 4;

/** Counts the chunks of a read into the caller's listener, and reports the whole at the end. */
export async function* countedChunks(
  chunks: AsyncIterable<Uint8Array>,
  onProgress: ((progress: TransferProgress) => void) | undefined,
  totalBytes: number | undefined,
): AsyncIterable<Uint8Array> {
  if (!onProgress) return yield* chunks;
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.byteLength;
    onProgress({ bytes, totalBytes });
    yield chunk;
  }
  if (bytes === 0) onProgress({ bytes, totalBytes });
}

/** A `StorageBackend` over a cloud's primitives. Cloud backends extend it with their options and client. */
export class ObjectStoreBackend implements StorageBackend {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  readonly #store: ObjectStorePrimitives;
  readonly #settings: ObjectStoreSettings;
  readonly #reader: ResumableReader;

  constructor(primitives: ObjectStorePrimitives, settings: Partial<ObjectStoreSettings> = {}) {
    this.#store = primitives;
    this.name = primitives.name;
    this.capabilities = Object.freeze({ signedUrl: true, metadata: true, partSizeBytes: primitives.singleRequestBytes });
    this.#settings = {
      retry: settings.retry ?? { ...DEFAULT_RETRY_POLICY },
      requestTimeoutMs: settings.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      deleteConcurrency: settings.deleteConcurrency ?? 8,
    };
    this.#reader = new ResumableReader({
      store: primitives,
      settings: this.#settings,
      head: (path, operation, signal) => this.#head(path, operation, signal),
      mapFailure: (error, path, operation, signal, timer) => this.#mapFailure(error, path, operation, signal, timer),
      aborted: (path, operation, signal) => this.#aborted(path, operation, signal),
    });
  }

  /**
   * One request under the shared rules: a fresh timeout per attempt, the caller's abort,
   * the error mapped by the cloud's classifier, transient failures retried with backoff.
   */
  async #request<T>(
    path: string,
    operation: string,
    signal: AbortSignal | undefined,
    run: (request: ObjectRequest) => Promise<T>,
  ): Promise<T> {
    const { requestTimeoutMs, retry } = this.#settings;
    return withRetry(
      async () => {
        if (signal?.aborted) throw this.#aborted(path, operation, signal);
        const timer = new ProgressTimer(requestTimeoutMs, signal);
        try {
          return await run({ signal: timer.signal });
        } catch (error) {
          throw this.#mapFailure(error, path, operation, signal, timer);
        } finally {
          timer.dispose();
        }
      },
      { policy: retry, backend: this.name, signal },
    );
  }

  #aborted(path: string, operation: string, signal: AbortSignal): AbortedError {
    return new AbortedError(`${operation} ${path}: aborted`, { backend: this.name, cause: signal.reason });
  }

  #mapFailure(error: unknown, path: string, operation: string, signal: AbortSignal | undefined, timer?: ProgressTimer): unknown {
    if (signal?.aborted) return this.#aborted(path, operation, signal);
    if (timer?.timedOut) {
      return new TimeoutError(
        `${operation} ${path}: no progress for ${this.#settings.requestTimeoutMs} ms (requestTimeoutMs); the server did not answer`,
        this.#settings.requestTimeoutMs,
        { backend: this.name },
      );
    }
    if (error instanceof AbortedError || error instanceof TimeoutError) return error;
    if (error && typeof error === 'object' && 'backend' in error && 'code' in error) return error;
    if ((error as { name?: unknown } | undefined)?.name === 'AbortError') {
      // Neither the caller nor our timeout aborted: the SDK gave up on a dropped connection
      // (Azure reports a reset mid-body this way). That is a network failure, worth a retry.
      return this.#store.classify(
        Object.assign(new Error('connection dropped'), { code: 'ECONNRESET', cause: error }),
        path,
        operation,
      );
    }
    return this.#store.classify(error, path, operation);
  }

  joinPath(base: string, ...parts: string[]): string {
    return joinObjectPath(base, parts, this.name);
  }

  #object(path: string, operation: string): ObjectLocation {
    const location = this.#store.locate(path);
    if (location.key === '') {
      throw new InvalidPathError(path, `${operation} needs an object key, not just a bucket or container`, {
        backend: this.name,
      });
    }
    return location;
  }

  async exists(path: string, options: SignalOptions = {}): Promise<boolean> {
    return (await this.isFile(path, options)) || (await this.isDir(path, options));
  }

  async isFile(path: string, options: SignalOptions = {}): Promise<boolean> {
    if (this.#store.locate(path).key === '') return false;
    try {
      await this.stat(path, options);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async isDir(path: string, options: SignalOptions = {}): Promise<boolean> {
    const location = this.#store.locate(path);
    try {
      const page = await this.#request(path, 'isDir', options.signal, (request) =>
        this.#store.listPage(
          location,
          { prefix: dirPrefix(location.key), delimiter: undefined, token: undefined, limit: 1 },
          request,
        ),
      );
      return page.files.length > 0 || page.folders.length > 0;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async #head(path: string, operation: string, signal: AbortSignal | undefined): Promise<ObjectHead> {
    const location = this.#store.locate(path);
    if (location.key === '') {
      throw new NotFoundError(path, { backend: this.name, message: `${operation}: ${path} is a bucket, not an object` });
    }
    return this.#request(path, operation, signal, (request) => this.#store.head(location, request));
  }

  async stat(path: string, options: SignalOptions = {}): Promise<ObjectStat> {
    const head = await this.#head(path, 'stat', options.signal);
    // Without a version no caller could compare-and-swap: refused, never guessed.
    if (!head.version)
      throw new BackendError(`stat ${path}: the store answered no version (ETag, generation)`, { backend: this.name });
    return {
      path,
      size: head.size,
      lastModified: head.lastModified,
      version: head.version,
      contentType: readContentType(head.contentType),
      metadata: readMetadata(head.metadata),
    };
  }

  #attributes(options: PutOptions): WriteAttributes {
    return {
      contentType: checkContentType(options.contentType, this.name),
      metadata: checkMetadata(options.metadata, this.name),
    };
  }

  async put(path: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const location = this.#object(path, 'put');
    const { signal, ifMatch } = options;
    const attributes = this.#attributes(options);
    const onProgress = checkProgressListener(options.onProgress, this.name);
    if (signal?.aborted) throw this.#aborted(path, 'put', signal);
    // A whole buffer is stable by the contract (the caller leaves it alone until put
    // resolves): its parts go up as views of it, as a stable stream's do.
    const stableChunks = options.stableChunks === true || typeof body === 'string' || body instanceof Uint8Array;
    const { bytes, stream } = await bufferIfSmall(body, this.#store.singleRequestBytes, { stableChunks });
    if (ifMatch !== undefined) {
      // Compare-and-swap is one conditional request: a multipart upload has no single moment to compare at.
      if (!bytes) {
        await closeBody(stream);
        throw new ConfigError(
          `put ${path} with ifMatch: the body is longer than one request (${this.#store.singleRequestBytes} bytes); a conditional put is for small records`,
          { option: 'ifMatch', backend: this.name },
        );
      }
      const replaced = await this.#request(path, 'put', signal, (request) =>
        this.#store.replaceBytes(location, bytes, ifMatch, { ...request, ...attributes }),
      );
      if (!replaced) throw new PreconditionFailedError(path, ifMatch, { backend: this.name });
      onProgress?.({ bytes: bytes.byteLength, totalBytes: bytes.byteLength });
      return;
    }
    if (bytes) {
      // One request: a buffer can be re-sent, so it is retried whole.
      await this.#request(path, 'put', signal, (request) =>
        this.#store.writeBytes(location, bytes, { ...request, ...attributes }),
      );
      onProgress?.({ bytes: bytes.byteLength, totalBytes: bytes.byteLength });
      return;
    }
    // A stream cannot be replayed: the cloud splits it into parts, and each part request
    // is retried on its own. The timeout measures time without taking a chunk of the body.
    const timer = new ProgressTimer(this.#settings.requestTimeoutMs, signal);
    let sent = 0;
    try {
      const tracked = (async function* () {
        // Each chunk as the caller gave it (see bufferIfSmall): copied by the writer's parts, or (stableChunks) sent as views.
        for await (const chunk of stream as AsyncIterable<Uint8Array>) {
          timer.touch();
          yield chunk;
        }
      })();
      await this.#store.writeStream(location, tracked, {
        ...attributes,
        stableChunks,
        signal: timer.signal,
        part: (operation, run) => this.#request(path, operation, timer.signal, run),
        progress: (bytes) => {
          timer.touch();
          sent += bytes;
          onProgress?.({ bytes: sent });
        },
      });
      onProgress?.({ bytes: sent, totalBytes: sent });
    } catch (error) {
      throw this.#mapFailure(error, path, 'put', signal, timer);
    } finally {
      timer.dispose();
    }
  }

  async putIfAbsent(path: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    const location = this.#object(path, 'putIfAbsent');
    const bytes = bodyBytes(body) as Uint8Array;
    const attributes = this.#attributes(options);
    // A retried create whose first attempt landed answers "exists": the lease reads its
    // own owner id back and knows it won (see lease.ts).
    return this.#request(path, 'putIfAbsent', options.signal, (request) =>
      this.#store.createBytes(location, bytes, { ...request, ...attributes }),
    );
  }

  /**
   * Reads the object (or a range) into one buffer sized from the head: chunks are copied
   * into it as they arrive, so peak memory is the object once, not its chunks plus a copy.
   */
  async get(path: string, options: GetOptions = {}): Promise<Uint8Array> {
    const onProgress = checkProgressListener(options.onProgress, this.name);
    try {
      return await this.#readWhole(path, options, onProgress);
    } catch (error) {
      // Every byte arrived but the body failed its end-of-read check (S3's ChecksumMode,
      // Azure's Content-MD5): the bytes changed on the way. A stream's consumer already
      // has them, so getStream fails; this buffer was never handed out, so it is read
      // once more from the start (progress is not reported twice).
      if (!failedEndOfReadCheck(error) || options.signal?.aborted) throw error;
      return await this.#readWhole(path, options, undefined);
    }
  }

  async #readWhole(path: string, options: GetOptions, onProgress: GetOptions['onProgress']): Promise<Uint8Array> {
    const { length, chunks } = await this.#reader.open(path, this.#object(path, 'get'), options);
    const out = new Uint8Array(length);
    let offset = 0;
    for await (const chunk of countedChunks(chunks, onProgress, length)) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }

  /**
   * Streams the object (or a range). A failure in the middle of the body is retried by
   * reading on from the last byte received, pinned to the version first seen, within the
   * retry budget: a reset never restarts a 10 GiB download from zero.
   */
  async getStream(path: string, options: GetOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const onProgress = checkProgressListener(options.onProgress, this.name);
    const { length, chunks } = await this.#reader.open(path, this.#object(path, 'get'), options);
    return countedChunks(chunks, onProgress, length);
  }

  async *list(path: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    const { limit, startAfter } = checkListPaging(options, this.name);
    const location = this.#store.locate(path);
    const prefix = dirPrefix(location.key);
    // Compared as keys of this bucket (a folder's with its `/`): a path of another bucket is refused by locate.
    const afterKey =
      startAfter === undefined
        ? undefined
        : `${this.#store.locate(startAfter).key}${startAfter.endsWith('/') ? '/' : ''}`.replace(/\/\/$/, '/');
    let left = limit ?? Number.POSITIVE_INFINITY;
    let token: string | undefined;
    do {
      let page: ObjectListing;
      try {
        // Full pages even under a small limit: fake-gcs-server drops folders from short
        // delimited pages, and the cut to `limit` is made here anyway.
        const pageLimit = 1000;
        page = await this.#request(path, 'list', options.signal, (request) =>
          this.#store.listPage(
            location,
            {
              prefix,
              delimiter: options.recursive ? undefined : '/',
              token,
              limit: pageLimit,
              startAfter: token === undefined ? afterKey : undefined,
            },
            request,
          ),
        );
      } catch (error) {
        if (error instanceof NotFoundError) return;
        throw error;
      }
      const entries: ListEntry[] = [];
      for (const folder of page.folders) {
        if (!folder.startsWith(prefix)) continue;
        entries.push({ path: this.#store.pathOf(path, folder.slice(0, -1)), name: folder.slice(prefix.length, -1), type: 'dir' });
      }
      for (const file of page.files) {
        // Folder markers made by consoles, and keys outside the prefix, are not files of this folder.
        if (file.key.endsWith('/') || !file.key.startsWith(prefix)) continue;
        entries.push({
          path: this.#store.pathOf(path, file.key),
          name: file.key.slice(file.key.lastIndexOf('/') + 1),
          type: 'file',
          size: file.size,
          lastModified: file.lastModified,
        });
      }
      entries.sort(byListOrder);
      for (const entry of entries) {
        // Every store is filtered here, so one that ignored the hint still starts after it.
        if (afterKey !== undefined && this.#sortKey(entry) <= afterKey) continue;
        if (left <= 0) return;
        left--;
        yield entry;
      }
      token = page.next;
    } while (token && left > 0);
  }

  /** An entry's place in the listing order, as a key of its bucket (see listSortKey). */
  #sortKey(entry: ListEntry): string {
    const key = this.#store.locate(entry.path).key;
    return listSortKey({ path: key, type: entry.type });
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    const location = this.#object(path, 'remove');
    const { ifMatch } = options;
    if (ifMatch !== undefined) {
      const removed = await this.#request(path, 'remove', options.signal, (request) =>
        this.#store.removeVersion(location, ifMatch, request),
      );
      // Some stores (Azure) refuse If-Match on a missing object with the same 412 as on another
      // version: a missing object is nothing of that version left, as the contract says.
      if (removed || !(await this.isFile(path, options))) return;
      throw new PreconditionFailedError(path, ifMatch, { backend: this.name, operation: 'remove' });
    }
    const failed = await this.#request(path, 'remove', options.signal, (request) =>
      this.#store.deleteMany(location, [location.key], request),
    );
    if (failed.length > 0) throw new IncompleteDeleteError(path, [path], { backend: this.name });
  }

  async rmtree(path: string, options: RmtreeOptions = {}): Promise<void> {
    const location = this.#store.locate(path);
    if (location.key === '' && !options.allowRoot) {
      throw new InvalidPathError(
        path,
        'refusing to rmtree a whole bucket or container; pass { allowRoot: true } if you mean it',
        {
          backend: this.name,
        },
      );
    }
    const prefix = dirPrefix(location.key);
    let pending: string[] = [];
    for await (const entry of this.list(path, { recursive: true, signal: options.signal })) {
      const key = this.#store.locate(entry.path).key;
      if (key.startsWith(prefix)) pending.push(key);
    }
    const { deleteBatchSize } = this.#store;
    const { deleteConcurrency, retry } = this.#settings;
    for (let round = 0; round < DELETE_ROUNDS && pending.length > 0; round++) {
      // Backoff between rounds: the keys left over are usually throttled ones.
      if (round > 0) await waitBeforeRetry(retry, round, options.signal);
      const batches: string[][] = [];
      for (let i = 0; i < pending.length; i += deleteBatchSize) batches.push(pending.slice(i, i + deleteBatchSize));
      const results = await pMap(
        batches,
        async (batch) => {
          try {
            return await this.#request(path, 'rmtree', options.signal, (request) =>
              this.#store.deleteMany(location, batch, request),
            );
          } catch (error) {
            if (error instanceof AbortedError || !isTransient(error)) throw error;
            return batch; // the whole request failed after its retries: every key goes to the next round
          }
        },
        { concurrency: deleteConcurrency, signal: options.signal },
      ).catch((error) => {
        if (options.signal?.aborted) throw this.#aborted(path, 'rmtree', options.signal);
        throw error;
      });
      pending = results.flat();
    }
    if (pending.length > 0) {
      throw new IncompleteDeleteError(
        path,
        pending.map((key) => this.#store.pathOf(path, key)),
        { backend: this.name },
      );
    }
  }

  /** Server-side: no byte passes here, so progress is the whole object once the copy landed. */
  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<void> {
    const onProgress = checkProgressListener(options.onProgress, this.name);
    const from = this.#object(source, 'copy');
    const to = this.#object(destination, 'copy');
    await this.#request(source, 'copy', options.signal, (request) => this.#store.copyObject(from, to, request));
    if (onProgress) {
      const { size } = await this.#head(destination, 'copy', options.signal);
      onProgress({ bytes: size, totalBytes: size });
    }
  }

  /**
   * No object store renames: a copy, then the source's delete. A failure after the copy
   * leaves both objects (the caller can move again); never neither.
   */
  async move(source: string, destination: string, options: CopyOptions = {}): Promise<void> {
    this.#object(source, 'move');
    this.#object(destination, 'move');
    if (source === destination) {
      // A copy onto itself then a delete would lose the object.
      await this.stat(source, options);
      return;
    }
    await this.copy(source, destination, options);
    await this.remove(source, { signal: options.signal });
  }

  async signedUrl(path: string, options: SignedUrlOptions): Promise<string> {
    const checked = checkSignedUrlOptions(options, this.name);
    const location = this.#object(path, 'signedUrl');
    try {
      return await this.#store.signUrl(location, checked);
    } catch (error) {
      throw this.#mapFailure(error, path, 'signedUrl', undefined);
    }
  }
}

/**
 * For SDK calls that take no AbortSignal: rejects with the signal's reason when it
 * fires (the request itself runs on in the background and its answer is dropped).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const unsubscribe = onAbort(signal, () => reject(signal.reason));
    promise.then(
      (value) => {
        unsubscribe();
        resolve(value);
      },
      (error) => {
        unsubscribe();
        reject(error);
      },
    );
  });
}
