// A third-party backend, written against the published contract only: objects live
// in a Map keyed by `bucket/key`. Small enough to read in one sitting; see
// docs/writing-a-backend.md for the walk-through.

import { bodyChunks, dirPrefix, joinObjectPath, parseObjectUri } from '@savepoint/core/kit';
import {
  AbortedError,
  byListOrder,
  type CopyOptions,
  checkContentType,
  checkListPaging,
  checkMetadata,
  checkProgressListener,
  checkSignedUrlOptions,
  type GetOptions,
  InvalidPathError,
  type ListEntry,
  type ListOptions,
  listSortKey,
  NotFoundError,
  type ObjectMetadata,
  type ObjectStat,
  PreconditionFailedError,
  type PutBody,
  type PutOptions,
  type RemoveOptions,
  type RmtreeOptions,
  registerBackend,
  type SignalOptions,
  type SignedUrlOptions,
  type StorageBackend,
  type StoreCapabilities,
  UnsupportedError,
} from '@savepoint/core/store';

export const BACKEND_NAME = 'memory';
const SCHEMES = ['mem'];

interface StoredObject {
  data: Uint8Array;
  lastModified: Date;
  /** A number no other write of this backend gets: what `ifMatch` compares. */
  version: string;
  contentType?: string | undefined;
  metadata?: ObjectMetadata | undefined;
}

export class MemoryBackend implements StorageBackend {
  readonly name = BACKEND_NAME;
  /** Metadata is kept beside the bytes; there is no HTTP server to sign URLs for; a stream is stored whole. */
  readonly capabilities: StoreCapabilities = { signedUrl: false, metadata: true, partSizeBytes: undefined };
  readonly #objects = new Map<string, StoredObject>();
  #writes = 0;

  #stored(data: Uint8Array, options: PutOptions = {}): StoredObject {
    return {
      data,
      lastModified: new Date(),
      version: String(++this.#writes),
      contentType: checkContentType(options.contentType, BACKEND_NAME),
      metadata: checkMetadata(options.metadata, BACKEND_NAME),
    };
  }

  /** Compare-and-swap: called in the same event-loop turn as the write it guards, so nothing slips in between. */
  #checkVersion(path: string, ifMatch: string | undefined, operation: string, missingIsFine: boolean) {
    if (ifMatch === undefined) return;
    const current = this.#objects.get(this.#key(path).full);
    if (current ? current.version === ifMatch : missingIsFine) return;
    throw new PreconditionFailedError(path, ifMatch, { backend: BACKEND_NAME, operation });
  }

  #key(path: string): { bucket: string; key: string; full: string } {
    const { bucket, key } = parseObjectUri(path, SCHEMES, BACKEND_NAME);
    return { bucket, key, full: `${bucket}/${key}` };
  }

  #checkSignal(signal: AbortSignal | undefined, path: string) {
    if (signal?.aborted) throw new AbortedError(`aborted: ${path}`, { backend: BACKEND_NAME, cause: signal.reason });
  }

  joinPath(base: string, ...parts: string[]): string {
    return joinObjectPath(base, parts, BACKEND_NAME);
  }

  async exists(path: string, options: SignalOptions = {}): Promise<boolean> {
    return (await this.isFile(path, options)) || (await this.isDir(path, options));
  }

  async isFile(path: string, options: SignalOptions = {}): Promise<boolean> {
    const { key, full } = this.#key(path);
    this.#checkSignal(options.signal, path);
    return key !== '' && this.#objects.has(full);
  }

  async isDir(path: string, options: SignalOptions = {}): Promise<boolean> {
    const { bucket, key } = this.#key(path);
    this.#checkSignal(options.signal, path);
    const prefix = `${bucket}/${dirPrefix(key)}`;
    for (const name of this.#objects.keys()) if (name.startsWith(prefix)) return true;
    return false;
  }

  async stat(path: string, options: SignalOptions = {}): Promise<ObjectStat> {
    this.#checkSignal(options.signal, path);
    const object = this.#objects.get(this.#key(path).full);
    if (!object) throw new NotFoundError(path, { backend: BACKEND_NAME });
    return {
      path,
      size: object.data.byteLength,
      lastModified: object.lastModified,
      version: object.version,
      contentType: object.contentType,
      metadata: { ...object.metadata },
    };
  }

  async put(path: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const { key, full } = this.#key(path);
    if (key === '') throw new InvalidPathError(path, 'a put needs a key', { backend: BACKEND_NAME });
    this.#checkSignal(options.signal, path);
    const onProgress = checkProgressListener(options.onProgress, BACKEND_NAME);
    this.#stored(new Uint8Array(0), options); // checks the metadata before reading the body
    // Collect first, store last: a failing stream never leaves a partial object.
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for await (const chunk of bodyChunks(body)) {
      this.#checkSignal(options.signal, path);
      parts.push(chunk.slice());
      bytes += chunk.byteLength;
      onProgress?.({ bytes });
    }
    this.#checkSignal(options.signal, path);
    this.#checkVersion(path, options.ifMatch, 'put', false);
    this.#objects.set(full, this.#stored(new Uint8Array(Buffer.concat(parts)), options));
    onProgress?.({ bytes, totalBytes: bytes });
  }

  async putIfAbsent(path: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    this.#checkSignal(options.signal, path);
    // One event-loop turn from check to set: nothing can slip in between.
    if (this.#objects.has(this.#key(path).full)) return false;
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body.slice();
    this.#objects.set(this.#key(path).full, this.#stored(bytes, options));
    return true;
  }

  async get(path: string, options: GetOptions = {}): Promise<Uint8Array> {
    const onProgress = checkProgressListener(options.onProgress, BACKEND_NAME);
    const data = this.#read(path, options);
    onProgress?.({ bytes: data.byteLength, totalBytes: data.byteLength });
    return data;
  }

  #read(path: string, options: GetOptions): Uint8Array {
    this.#checkSignal(options.signal, path);
    const object = this.#objects.get(this.#key(path).full);
    if (!object) throw new NotFoundError(path, { backend: BACKEND_NAME });
    const { range } = options;
    if (!range) return object.data.slice();
    if (!Number.isInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start)) {
      throw new InvalidPathError(path, `bad byte range ${JSON.stringify(range)}`, { backend: BACKEND_NAME });
    }
    return object.data.slice(range.start, range.end);
  }

  async getStream(path: string, options: GetOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const data = await this.get(path, options);
    return (async function* () {
      yield data;
    })();
  }

  async *list(path: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    const { bucket, key } = this.#key(path);
    this.#checkSignal(options.signal, path);
    const prefix = `${bucket}/${dirPrefix(key)}`;
    const entries = new Map<string, ListEntry>();
    for (const [name, object] of this.#objects) {
      if (!name.startsWith(prefix)) continue;
      const rest = name.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (options.recursive || slash < 0) {
        entries.set(name, {
          path: `mem://${name}`,
          name: rest.slice(rest.lastIndexOf('/') + 1),
          type: 'file',
          size: object.data.byteLength,
          lastModified: object.lastModified,
        });
      } else {
        const dir = `${prefix}${rest.slice(0, slash)}`;
        entries.set(`${dir}/`, { path: `mem://${dir}`, name: rest.slice(0, slash), type: 'dir' });
      }
    }
    const { limit, startAfter } = checkListPaging(options, BACKEND_NAME);
    const sorted = [...entries.values()].sort(byListOrder);
    const after = startAfter === undefined ? sorted : sorted.filter((entry) => listSortKey(entry) > startAfter);
    yield* after.slice(0, limit);
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    this.#checkSignal(options.signal, path);
    this.#checkVersion(path, options.ifMatch, 'remove', true);
    this.#objects.delete(this.#key(path).full);
  }

  async rmtree(path: string, options: RmtreeOptions = {}): Promise<void> {
    const { bucket, key } = this.#key(path);
    if (key === '' && !options.allowRoot) {
      throw new InvalidPathError(path, 'refusing to rmtree a whole bucket; pass { allowRoot: true }', { backend: BACKEND_NAME });
    }
    this.#checkSignal(options.signal, path);
    const prefix = `${bucket}/${dirPrefix(key)}`;
    for (const name of [...this.#objects.keys()]) if (name.startsWith(prefix)) this.#objects.delete(name);
  }

  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<void> {
    const object = this.#objects.get(this.#key(source).full);
    if (!object) throw new NotFoundError(source, { backend: BACKEND_NAME });
    await this.put(destination, object.data, { ...options, contentType: object.contentType, metadata: object.metadata });
  }

  async move(source: string, destination: string, options: CopyOptions = {}): Promise<void> {
    if (source === destination) {
      await this.stat(source, options);
      return;
    }
    await this.copy(source, destination, options);
    this.#objects.delete(this.#key(source).full);
  }

  async signedUrl(path: string, options: SignedUrlOptions): Promise<string> {
    checkSignedUrlOptions(options, BACKEND_NAME);
    throw new UnsupportedError('signedUrl', `signedUrl ${path}: a memory store has no server to sign for`, {
      backend: BACKEND_NAME,
    });
  }
}

/** Registers the example under `mem://`. */
export function registerMemoryBackend(): void {
  registerBackend(BACKEND_NAME, { schemes: SCHEMES, create: () => new MemoryBackend() }, { replace: true });
}
