// The GCS store: gs://bucket/key. Small bodies go in one request; streams of
// unknown length go through a resumable upload with CRC32C validation, which
// creates the object only when the last chunk lands.
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type File, Storage } from '@google-cloud/storage';
import {
  AbortedError,
  bufferIfSmall,
  dirPrefix,
  type GetOptions,
  IncompleteDeleteError,
  InvalidPathError,
  joinObjectPath,
  type ListEntry,
  type ListOptions,
  NotFoundError,
  type ObjectStat,
  type PutBody,
  type PutOptions,
  parseObjectUri,
  type RmtreeOptions,
  registerBackend,
  type SignalOptions,
  type StorageBackend,
  withRetry,
} from '@savepoint/core';
import { BACKEND_NAME, isTransientGcsError, mapGcsError } from './gcs-errors.js';
import { type GcsBackendOptions, type ResolvedGcsOptions, resolveGcsOptions } from './gcs-options.js';

const SCHEMES = ['gs'] as const;
const DELETE_ROUNDS = 4;

interface ListPage {
  items?: { name?: string; size?: string | number; updated?: string }[];
  prefixes?: string[];
  nextPageToken?: string;
}

export class GcsBackend implements StorageBackend {
  readonly name = BACKEND_NAME;
  readonly storage: Storage;
  readonly #options: ResolvedGcsOptions;
  /** Same account and endpoint, with the client's own retries on: only for resumable uploads. */
  readonly #uploadStorage: Storage;

  constructor(options: GcsBackendOptions = {}) {
    this.#options = resolveGcsOptions(options);
    this.storage = this.#options.storage ?? new Storage(this.#options.storageOptions);
    const { retry } = this.#options;
    this.#uploadStorage = this.#options.storage
      ? this.storage
      : new Storage({
          ...this.#options.storageOptions,
          retryOptions: {
            autoRetry: retry.retries > 0,
            maxRetries: retry.retries,
            retryDelayMultiplier: retry.factor,
            // The client starts at 1 s between tries and refuses a lower ceiling.
            maxRetryDelay: Math.max(1, retry.maxDelayMs / 1000),
            retryableErrorFn: isTransientGcsError,
          },
        });
  }

  #resumable(path: string): File {
    const { bucket, key } = this.#loc(path);
    return this.#uploadStorage.bucket(bucket).file(key);
  }

  #loc(path: string) {
    return parseObjectUri(path, SCHEMES, BACKEND_NAME);
  }

  #file(path: string, operation: string): File {
    const { bucket, key } = this.#loc(path);
    if (key === '')
      throw new InvalidPathError(path, `${operation} needs an object key, not just a bucket`, { backend: BACKEND_NAME });
    return this.storage.bucket(bucket).file(key);
  }

  /** Runs one request with the retry policy, mapping every failure in one place. */
  async #call<T>(path: string, operation: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      policy: this.#options.retry,
      backend: BACKEND_NAME,
      signal,
      mapError: (error) => mapGcsError(error, path, operation, this.#options.secrets),
    });
  }

  joinPath(base: string, ...parts: string[]): string {
    return joinObjectPath(base, parts, BACKEND_NAME);
  }

  async exists(path: string, options: SignalOptions = {}): Promise<boolean> {
    return (await this.isFile(path, options)) || (await this.isDir(path, options));
  }

  async isFile(path: string, options: SignalOptions = {}): Promise<boolean> {
    if (this.#loc(path).key === '') return false;
    try {
      await this.stat(path, options);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async #listPage(bucket: string, query: Record<string, unknown>, path: string, signal?: AbortSignal): Promise<ListPage> {
    return this.#call(path, 'list', signal, async () => {
      const [, , response] = await this.storage.bucket(bucket).getFiles({ ...query, autoPaginate: false });
      return (response ?? {}) as ListPage;
    });
  }

  async isDir(path: string, options: SignalOptions = {}): Promise<boolean> {
    const { bucket, key } = this.#loc(path);
    try {
      const page = await this.#listPage(bucket, { prefix: dirPrefix(key), maxResults: 1 }, path, options.signal);
      return (page.items?.length ?? 0) > 0 || (page.prefixes?.length ?? 0) > 0;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async stat(path: string, options: SignalOptions = {}): Promise<ObjectStat> {
    const file = this.#file(path, 'stat');
    const [metadata] = await this.#call(path, 'stat', options.signal, () => file.getMetadata());
    return { path, size: Number(metadata.size ?? 0), lastModified: metadata.updated ? new Date(metadata.updated) : undefined };
  }

  async put(path: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const file = this.#file(path, 'put');
    const { signal } = options;
    if (signal?.aborted)
      throw new AbortedError(`put ${path}: aborted before it started`, { backend: BACKEND_NAME, cause: signal.reason });
    const { bytes, stream } = await bufferIfSmall(body, this.#options.chunkSize);
    if (bytes) {
      // A buffer can be re-sent, so a single-request upload is retried as a whole.
      await this.#call(path, 'put', signal, () =>
        file.save(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
          resumable: false,
          validation: 'crc32c',
          contentType: options.contentType,
        }),
      );
      return;
    }
    // A stream cannot be replayed by withRetry: the resumable upload retries its own
    // chunks (from where the server says it stopped), on a client configured with our policy.
    const sink = this.#resumable(path).createWriteStream({
      resumable: true,
      chunkSize: this.#options.chunkSize,
      validation: 'crc32c',
      contentType: options.contentType,
    });
    try {
      await pipeline(Readable.from(stream), sink as Writable, { signal });
    } catch (error) {
      if (signal?.aborted) throw new AbortedError(`put ${path}: aborted`, { backend: BACKEND_NAME, cause: signal.reason });
      if (error instanceof Error && 'backend' in error) throw error;
      throw mapGcsError(error, path, 'put', this.#options.secrets);
    }
  }

  async putIfAbsent(path: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    const file = this.#file(path, 'putIfAbsent');
    const { signal } = options;
    if (signal?.aborted)
      throw new AbortedError(`putIfAbsent ${path}: aborted before it started`, { backend: BACKEND_NAME, cause: signal.reason });
    const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return this.#call(path, 'putIfAbsent', signal, async () => {
      try {
        // Generation 0 means "no live object": GCS answers 412 when one exists.
        await file.save(bytes, {
          resumable: false,
          validation: 'crc32c',
          contentType: options.contentType,
          preconditionOpts: { ifGenerationMatch: 0 },
        });
        return true;
      } catch (error) {
        if ((error as { code?: unknown }).code === 412) return false;
        throw error;
      }
    });
  }

  #checkRange(path: string, range: GetOptions['range']) {
    if (range && (!Number.isInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start))) {
      throw new InvalidPathError(path, `bad byte range ${JSON.stringify(range)}: need 0 <= start <= end`, {
        backend: BACKEND_NAME,
      });
    }
  }

  async get(path: string, options: GetOptions = {}): Promise<Uint8Array> {
    const file = this.#file(path, 'get');
    const { range } = options;
    this.#checkRange(path, range);
    if (range) {
      // Clamp against the real size: the client rejects a range past the end.
      const { size } = await this.stat(path, options);
      const end = Math.min(range.end ?? size, size);
      if (range.start >= end) return new Uint8Array(0);
      const [data] = await this.#call(path, 'get', options.signal, () =>
        file.download({ start: range.start, end: end - 1, validation: false }),
      );
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    const [data] = await this.#call(path, 'get', options.signal, () => file.download({ validation: 'crc32c' }));
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  async getStream(path: string, options: GetOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const file = this.#file(path, 'getStream');
    this.#checkRange(path, options.range);
    // Stat first: a read stream reports a missing object only after it starts.
    const { size } = await this.stat(path, options);
    const start = options.range?.start ?? 0;
    const end = Math.min(options.range?.end ?? size, size);
    if (start >= end) return Readable.from([]);
    // The client validates CRC32C only on whole-object reads.
    const stream = options.range
      ? file.createReadStream({ start, end: end - 1, validation: false })
      : file.createReadStream({ validation: 'crc32c' });
    const secrets = this.#options.secrets;
    return (async function* () {
      try {
        for await (const chunk of stream) yield chunk as Uint8Array;
      } catch (error) {
        throw mapGcsError(error, path, 'getStream', secrets);
      }
    })();
  }

  async *list(path: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    const { bucket, key } = this.#loc(path);
    const prefix = dirPrefix(key);
    let pageToken: string | undefined;
    do {
      let page: ListPage;
      try {
        page = await this.#listPage(
          bucket,
          { prefix, delimiter: options.recursive ? undefined : '/', pageToken, maxResults: 1000 },
          path,
          options.signal,
        );
      } catch (error) {
        if (error instanceof NotFoundError) return;
        throw error;
      }
      const entries: ListEntry[] = [];
      for (const p of page.prefixes ?? [])
        entries.push({ path: `gs://${bucket}/${p.slice(0, -1)}`, name: p.slice(prefix.length, -1), type: 'dir' });
      for (const item of page.items ?? []) {
        if (!item.name || item.name.endsWith('/')) continue;
        entries.push({
          path: `gs://${bucket}/${item.name}`,
          name: item.name.slice(item.name.lastIndexOf('/') + 1),
          type: 'file',
          size: Number(item.size ?? 0),
          lastModified: item.updated ? new Date(item.updated) : undefined,
        });
      }
      entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      yield* entries;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  async remove(path: string, options: SignalOptions = {}): Promise<void> {
    const file = this.#file(path, 'remove');
    try {
      await this.#call(path, 'remove', options.signal, () => file.delete());
    } catch (error) {
      if (error instanceof NotFoundError) return;
      throw error;
    }
  }

  async rmtree(path: string, options: RmtreeOptions = {}): Promise<void> {
    const { key } = this.#loc(path);
    if (key === '' && !options.allowRoot) {
      throw new InvalidPathError(path, 'refusing to rmtree a whole bucket; pass { allowRoot: true } if you mean it', {
        backend: BACKEND_NAME,
      });
    }
    let pending: string[] = [];
    for await (const entry of this.list(path, { recursive: true, signal: options.signal })) pending.push(entry.path);
    for (let round = 0; round < DELETE_ROUNDS && pending.length > 0; round++) {
      const failed: string[] = [];
      let next = 0;
      // The Node client has no batch delete: bounded concurrency over single deletes.
      await Promise.all(
        Array.from({ length: Math.min(this.#options.deleteConcurrency, pending.length) }, async () => {
          while (next < pending.length) {
            const target = pending[next++] as string;
            try {
              await this.remove(target, options);
            } catch (error) {
              if (error instanceof AbortedError) throw error;
              failed.push(target);
            }
          }
        }),
      );
      pending = failed;
    }
    if (pending.length > 0) throw new IncompleteDeleteError(path, pending, { backend: BACKEND_NAME });
  }

  async copy(source: string, destination: string, options: SignalOptions = {}): Promise<void> {
    const src = this.#file(source, 'copy');
    const dst = this.#file(destination, 'copy');
    await this.#call(source, 'copy', options.signal, () => src.copy(dst));
  }
}

/** Registers this backend for `gs://` URIs. Idempotent. */
export function registerGcsBackend(): void {
  registerBackend(BACKEND_NAME, GCS_REGISTRATION, { replace: true });
}

const GCS_REGISTRATION = {
  schemes: SCHEMES,
  create: (args: Record<string, unknown>) => new GcsBackend(args as GcsBackendOptions),
};
