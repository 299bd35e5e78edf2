// The Azure Blob store: az://container/key and https://<account>.blob.core.windows.net/<container>/<key>.
// Streams are staged as blocks with bounded concurrency and committed last, so a
// failed upload leaves no blob; rmtree uses BlobBatch and reads every sub-response.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DefaultAzureCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import {
  AbortedError,
  bufferIfSmall,
  ConfigError,
  dirPrefix,
  fixedSizeParts,
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
import { BACKEND_NAME, mapAzureError } from './azure-errors.js';
import { type AzureBackendOptions, type ResolvedAzureOptions, resolveAzureOptions } from './azure-options.js';

/** A BlobBatch holds at most 256 sub-requests. */
const BATCH_LIMIT = 256;
const DELETE_ROUNDS = 4;
const HTTPS_HOST = /^https:\/\/([a-z0-9]+)\.blob\.core\.windows\.net\/(.*)$/i;

interface Location {
  container: string;
  key: string;
  /** What list() puts before `container/key`: `az://` or `https://acct.blob.core.windows.net/`. */
  base: string;
  account: string | undefined;
}

export class AzureBackend implements StorageBackend {
  readonly name = BACKEND_NAME;
  readonly #options: ResolvedAzureOptions;
  readonly #perAccount = new Map<string, BlobServiceClient>();

  constructor(options: AzureBackendOptions = {}) {
    this.#options = resolveAzureOptions(options);
  }

  #loc(path: string): Location {
    const https = HTTPS_HOST.exec(typeof path === 'string' ? path : '');
    if (https) {
      const account = (https[1] as string).toLowerCase();
      const { bucket, key } = parseObjectUri(`az://${https[2]}`, ['az'], BACKEND_NAME);
      return { container: bucket, key, base: `https://${account}.blob.core.windows.net/`, account };
    }
    const { bucket, key } = parseObjectUri(path, ['az'], BACKEND_NAME);
    return { container: bucket, key, base: 'az://', account: undefined };
  }

  #container(loc: Location, path: string): ContainerClient {
    const { containerClient, serviceClient, accountName } = this.#options;
    if (loc.account && accountName && loc.account !== accountName.toLowerCase()) {
      throw new InvalidPathError(
        path,
        `this backend is configured for account "${accountName}", the URL names "${loc.account}"`,
        {
          backend: BACKEND_NAME,
        },
      );
    }
    if (containerClient) {
      if (containerClient.containerName !== loc.container) {
        throw new InvalidPathError(path, `this backend serves container "${containerClient.containerName}" only`, {
          backend: BACKEND_NAME,
        });
      }
      return containerClient;
    }
    if (serviceClient) return serviceClient.getContainerClient(loc.container);
    if (!loc.account) {
      throw new ConfigError(
        `no Azure account for ${path}: give backendArgs connectionString, accountName (+ accountKey or sasToken) or url, or set AZURE_STORAGE_CONNECTION_STRING`,
        { option: 'accountName', backend: BACKEND_NAME },
      );
    }
    let client = this.#perAccount.get(loc.account);
    if (!client) {
      client = new BlobServiceClient(`https://${loc.account}.blob.core.windows.net`, new DefaultAzureCredential(), {
        retryOptions: { maxTries: 1 },
      });
      this.#perAccount.set(loc.account, client);
    }
    return client.getContainerClient(loc.container);
  }

  #blob(path: string, operation: string) {
    const loc = this.#loc(path);
    if (loc.key === '')
      throw new InvalidPathError(path, `${operation} needs a blob name, not just a container`, { backend: BACKEND_NAME });
    return this.#container(loc, path).getBlockBlobClient(loc.key);
  }

  async #call<T>(path: string, operation: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, {
      policy: this.#options.retry,
      backend: BACKEND_NAME,
      signal,
      mapError: (error) => mapAzureError(error, path, operation, this.#options.secrets),
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

  async isDir(path: string, options: SignalOptions = {}): Promise<boolean> {
    const loc = this.#loc(path);
    const container = this.#container(loc, path);
    try {
      const page = await this.#call(path, 'isDir', options.signal, async () => {
        const result = await container
          .listBlobsFlat({ prefix: dirPrefix(loc.key) })
          .byPage({ maxPageSize: 1 })
          .next();
        return result.value;
      });
      return (page?.segment?.blobItems?.length ?? 0) > 0;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async stat(path: string, options: SignalOptions = {}): Promise<ObjectStat> {
    const blob = this.#blob(path, 'stat');
    const props = await this.#call(path, 'stat', options.signal, () => blob.getProperties({ abortSignal: options.signal }));
    return { path, size: props.contentLength ?? 0, lastModified: props.lastModified };
  }

  async putIfAbsent(path: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    const blob = this.#blob(path, 'putIfAbsent');
    const { signal } = options;
    if (signal?.aborted)
      throw new AbortedError(`putIfAbsent ${path}: aborted before it started`, { backend: BACKEND_NAME, cause: signal.reason });
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const headers = options.contentType ? { blobHTTPHeaders: { blobContentType: options.contentType } } : {};
    return this.#call(path, 'putIfAbsent', signal, async () => {
      try {
        // If-None-Match: * — Azure answers 409 BlobAlreadyExists (or 412) when a blob is there.
        await blob.upload(bytes, bytes.byteLength, { abortSignal: signal, conditions: { ifNoneMatch: '*' }, ...headers });
        return true;
      } catch (error) {
        const status = (error as { statusCode?: unknown }).statusCode;
        if (status === 409 || status === 412) return false;
        throw error;
      }
    });
  }

  async put(path: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const blob = this.#blob(path, 'put');
    const { signal } = options;
    if (signal?.aborted)
      throw new AbortedError(`put ${path}: aborted before it started`, { backend: BACKEND_NAME, cause: signal.reason });
    const headers = options.contentType ? { blobHTTPHeaders: { blobContentType: options.contentType } } : {};
    const { bytes, stream } = await bufferIfSmall(body, this.#options.blockSize);
    if (bytes) {
      await this.#call(path, 'put', signal, () => blob.upload(bytes, bytes.byteLength, { abortSignal: signal, ...headers }));
      return;
    }
    // Stage blocks with bounded concurrency, then commit the list: until the commit,
    // readers see the old blob (or none), and uncommitted blocks are never visible.
    const uploadId = randomBytes(8).toString('hex');
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    try {
      let index = 0;
      for await (const part of fixedSizeParts(stream, this.#options.blockSize)) {
        if (failure) break;
        if (signal?.aborted) throw new AbortedError(`put ${path}: aborted`, { backend: BACKEND_NAME, cause: signal.reason });
        const id = Buffer.from(`${uploadId}-${String(index++).padStart(6, '0')}`).toString('base64');
        ids.push(id);
        const task = this.#call(path, 'put', signal, () =>
          blob.stageBlock(id, part, part.byteLength, { abortSignal: signal }).then(() => {}),
        )
          .catch((error) => {
            failure ??= error;
          })
          .finally(() => inFlight.delete(task));
        inFlight.add(task);
        if (inFlight.size >= this.#options.concurrency) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      await this.#call(path, 'put', signal, () => blob.commitBlockList(ids, { abortSignal: signal, ...headers }));
    } catch (error) {
      await Promise.allSettled(inFlight);
      if (signal?.aborted && !(error instanceof AbortedError)) {
        throw new AbortedError(`put ${path}: aborted`, { backend: BACKEND_NAME, cause: signal.reason });
      }
      throw error;
    }
  }

  async #download(path: string, options: GetOptions) {
    const blob = this.#blob(path, 'get');
    const range = options.range;
    if (range && (!Number.isInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start))) {
      throw new InvalidPathError(path, `bad byte range ${JSON.stringify(range)}: need 0 <= start <= end`, {
        backend: BACKEND_NAME,
      });
    }
    if (range && (range.end === range.start || range.start > 0)) {
      // Clamp against the real size: a range past the end is an error on Azure.
      const { size } = await this.stat(path, options);
      const end = Math.min(range.end ?? size, size);
      if (range.start >= end) return undefined;
      return this.#call(path, 'get', options.signal, () =>
        blob.download(range.start, end - range.start, { abortSignal: options.signal }),
      );
    }
    const count = range?.end === undefined ? undefined : range.end - range.start;
    return this.#call(path, 'get', options.signal, () =>
      blob.download(range?.start ?? 0, count, { abortSignal: options.signal }),
    );
  }

  async get(path: string, options: GetOptions = {}): Promise<Uint8Array> {
    const stream = await this.getStream(path, options);
    const parts: Buffer[] = [];
    try {
      for await (const chunk of stream) parts.push(Buffer.from(chunk));
    } catch (error) {
      throw mapAzureError(error, path, 'get', this.#options.secrets);
    }
    const all = Buffer.concat(parts);
    return new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
  }

  async getStream(path: string, options: GetOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const response = await this.#download(path, options);
    return (response?.readableStreamBody as AsyncIterable<Uint8Array> | undefined) ?? Readable.from([]);
  }

  async *list(path: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    const loc = this.#loc(path);
    const container = this.#container(loc, path);
    const prefix = dirPrefix(loc.key);
    const root = `${loc.base}${loc.container}/`;
    const pages = options.recursive
      ? container.listBlobsFlat({ prefix }).byPage({ maxPageSize: 1000 })
      : container.listBlobsByHierarchy('/', { prefix }).byPage({ maxPageSize: 1000 });
    while (true) {
      let result: IteratorResult<unknown>;
      try {
        result = await this.#call(path, 'list', options.signal, () => pages.next());
      } catch (error) {
        if (error instanceof NotFoundError) return;
        throw error;
      }
      if (result.done) return;
      const segment = (result.value as { segment: { blobItems?: BlobItemLike[]; blobPrefixes?: { name: string }[] } }).segment;
      const entries: ListEntry[] = [];
      for (const p of segment.blobPrefixes ?? [])
        entries.push({ path: `${root}${p.name.slice(0, -1)}`, name: p.name.slice(prefix.length, -1), type: 'dir' });
      for (const item of segment.blobItems ?? []) {
        if (item.name.endsWith('/')) continue;
        entries.push({
          path: `${root}${item.name}`,
          name: item.name.slice(item.name.lastIndexOf('/') + 1),
          type: 'file',
          size: item.properties.contentLength,
          lastModified: item.properties.lastModified,
        });
      }
      entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      yield* entries;
    }
  }

  async remove(path: string, options: SignalOptions = {}): Promise<void> {
    const blob = this.#blob(path, 'remove');
    await this.#call(path, 'remove', options.signal, () => blob.deleteIfExists({ abortSignal: options.signal }));
  }

  async rmtree(path: string, options: RmtreeOptions = {}): Promise<void> {
    const loc = this.#loc(path);
    if (loc.key === '' && !options.allowRoot) {
      throw new InvalidPathError(path, 'refusing to rmtree a whole container; pass { allowRoot: true } if you mean it', {
        backend: BACKEND_NAME,
      });
    }
    const container = this.#container(loc, path);
    const root = `${loc.base}${loc.container}/`;
    const names: string[] = [];
    for await (const entry of this.list(path, { recursive: true, signal: options.signal }))
      names.push(entry.path.slice(root.length));
    let pending = names;
    for (let round = 0; round < DELETE_ROUNDS && pending.length > 0; round++) {
      const batches: string[][] = [];
      for (let i = 0; i < pending.length; i += BATCH_LIMIT) batches.push(pending.slice(i, i + BATCH_LIMIT));
      const failed: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(this.#options.deleteConcurrency, batches.length) }, async () => {
          while (next < batches.length) {
            const batch = batches[next++] as string[];
            failed.push(...(await this.#deleteBatch(container, batch, path, options.signal)));
          }
        }),
      );
      pending = failed;
    }
    if (pending.length > 0)
      throw new IncompleteDeleteError(
        path,
        pending.map((n) => `${root}${n}`),
        { backend: BACKEND_NAME },
      );
  }

  /** One BlobBatch of deletes; returns the names whose sub-request failed (a 404 counts as deleted). */
  async #deleteBatch(container: ContainerClient, names: string[], path: string, signal?: AbortSignal): Promise<string[]> {
    const batchClient = container.getBlobBatchClient();
    let response: Awaited<ReturnType<typeof batchClient.deleteBlobs>>;
    try {
      response = await this.#call(path, 'rmtree', signal, () =>
        batchClient.deleteBlobs(
          names.map((n) => container.getBlobClient(n)),
          { abortSignal: signal },
        ),
      );
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      return names; // the whole batch failed: every name is retried next round
    }
    const failed: string[] = [];
    response.subResponses.forEach((sub, i) => {
      if (sub.status >= 300 && sub.status !== 404) failed.push(names[i] as string);
    });
    // A response with fewer sub-responses than requests hides failures: retry the rest.
    for (let i = response.subResponses.length; i < names.length; i++) failed.push(names[i] as string);
    return failed;
  }

  async copy(source: string, destination: string, options: SignalOptions = {}): Promise<void> {
    // Streams through this process: works across accounts and with every credential kind.
    const stream = await this.getStream(source, options);
    await this.put(destination, stream, options);
  }
}

interface BlobItemLike {
  name: string;
  properties: { contentLength?: number; lastModified?: Date };
}

/** Registers this backend for `az://` URIs and `https://<account>.blob.core.windows.net` URLs. Idempotent. */
export function registerAzureBackend(): void {
  registerBackend(BACKEND_NAME, AZURE_REGISTRATION, { replace: true });
}

const AZURE_REGISTRATION = {
  schemes: ['az', 'https'],
  create: (args: Record<string, unknown>) => new AzureBackend(args as AzureBackendOptions),
};
