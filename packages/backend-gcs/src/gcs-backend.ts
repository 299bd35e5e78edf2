// The GCS store: gs://bucket/key, as SDK glue under core's object-store adapter
// (which owns retries, abort, timeouts, paging and error mapping). Small bodies go
// in one request; streams of unknown length go through a resumable upload with
// CRC32C validation, which creates the object only when the last chunk lands.
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type File, IdempotencyStrategy, Storage } from '@google-cloud/storage';
import {
  type ObjectHead,
  type ObjectListing,
  type ObjectLocation,
  type ObjectRequest,
  ObjectStoreBackend,
  type ObjectStorePrimitives,
  parseObjectUri,
  registerBackend,
  type StreamWrite,
  untilAborted,
} from '@savepoint/core';
import { BACKEND_NAME, isTransientGcsError, mapGcsError } from './gcs-errors.js';
import { type GcsBackendOptions, type ResolvedGcsOptions, resolveGcsOptions } from './gcs-options.js';

const SCHEMES = ['gs'] as const;

interface GcsListResponse {
  items?: { name?: string; size?: string | number; updated?: string }[];
  prefixes?: string[];
  nextPageToken?: string;
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The GCS side of the adapter: one method per primitive, nothing else. */
class GcsPrimitives implements ObjectStorePrimitives {
  readonly name = BACKEND_NAME;
  readonly deleteBatchSize = 1; // the Node client has no batch delete
  readonly singleRequestBytes: number;

  constructor(
    private readonly storage: Storage,
    /** Same account and endpoint with the client's own retries on: resumable uploads resume their session. */
    private readonly uploadStorage: Storage,
    private readonly options: ResolvedGcsOptions,
  ) {
    this.singleRequestBytes = options.chunkSize;
  }

  #file(location: ObjectLocation, generation?: string): File {
    return this.storage.bucket(location.bucket).file(location.key, generation ? { generation } : {});
  }

  locate(path: string): ObjectLocation {
    return parseObjectUri(path, SCHEMES, BACKEND_NAME);
  }

  pathOf(like: string, key: string): string {
    return `gs://${this.locate(like).bucket}/${key}`;
  }

  async head(location: ObjectLocation, request: ObjectRequest): Promise<ObjectHead> {
    const [metadata] = await untilAborted(this.#file(location).getMetadata(), request.signal);
    return {
      size: Number(metadata.size ?? 0),
      lastModified: metadata.updated ? new Date(metadata.updated) : undefined,
      version: metadata.generation === undefined ? undefined : String(metadata.generation),
    };
  }

  async readRange(
    location: ObjectLocation,
    range: { start: number; end: number; size: number; version?: string | undefined },
    request: ObjectRequest,
  ): Promise<AsyncIterable<Uint8Array>> {
    // The client validates CRC32C only on whole-object reads.
    const whole = range.start === 0 && range.end === range.size;
    const stream = this.#file(location, range.version).createReadStream(
      whole ? { validation: 'crc32c' } : { start: range.start, end: range.end - 1, validation: false },
    );
    request.signal.addEventListener('abort', () => stream.destroy(request.signal.reason), { once: true });
    return stream as AsyncIterable<Uint8Array>;
  }

  async writeBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & { contentType?: string | undefined }) {
    await untilAborted(
      this.#file(location).save(toBuffer(bytes), { resumable: false, validation: 'crc32c', contentType: request.contentType }),
      request.signal,
    );
  }

  async writeStream(location: ObjectLocation, body: AsyncIterable<Uint8Array>, write: StreamWrite): Promise<void> {
    // A resumable upload: the client retries each chunk under our policy and resumes its
    // session from where the server says it stopped (configured in the constructor).
    const sink = this.uploadStorage.bucket(location.bucket).file(location.key).createWriteStream({
      resumable: true,
      chunkSize: this.options.chunkSize,
      validation: 'crc32c',
      contentType: write.contentType,
    });
    await pipeline(Readable.from(body), sink as Writable, write.signal ? { signal: write.signal } : {});
  }

  async createBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & { contentType?: string | undefined }) {
    try {
      // Generation 0 means "no live object": GCS answers 412 when one exists.
      await untilAborted(
        this.#file(location).save(toBuffer(bytes), {
          resumable: false,
          validation: 'crc32c',
          contentType: request.contentType,
          preconditionOpts: { ifGenerationMatch: 0 },
        }),
        request.signal,
      );
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 412) return false;
      throw error;
    }
  }

  async listPage(
    bucket: ObjectLocation,
    page: { prefix: string; delimiter: '/' | undefined; token: string | undefined; limit: number },
    request: ObjectRequest,
  ): Promise<ObjectListing> {
    const [, , raw] = await untilAborted(
      this.storage.bucket(bucket.bucket).getFiles({
        prefix: page.prefix,
        delimiter: page.delimiter,
        pageToken: page.token,
        maxResults: page.limit,
        autoPaginate: false,
      }),
      request.signal,
    );
    const response = (raw ?? {}) as GcsListResponse;
    return {
      folders: response.prefixes ?? [],
      files: (response.items ?? []).flatMap((item) =>
        item.name
          ? [{ key: item.name, size: Number(item.size ?? 0), lastModified: item.updated ? new Date(item.updated) : undefined }]
          : [],
      ),
      next: response.nextPageToken,
    };
  }

  async deleteMany(bucket: ObjectLocation, keys: string[], request: ObjectRequest): Promise<string[]> {
    for (const key of keys) {
      await untilAborted(this.#file({ bucket: bucket.bucket, key }).delete({ ignoreNotFound: true }), request.signal);
    }
    return [];
  }

  async copyObject(source: ObjectLocation, destination: ObjectLocation, request: ObjectRequest): Promise<void> {
    await untilAborted(this.#file(source).copy(this.#file(destination)), request.signal);
  }

  classify(error: unknown, path: string, operation: string) {
    return mapGcsError(error, path, operation, this.options.secrets);
  }
}

export class GcsBackend extends ObjectStoreBackend {
  readonly storage: Storage;

  constructor(options: GcsBackendOptions = {}) {
    const resolved = resolveGcsOptions(options);
    const storage = resolved.storage ?? new Storage(resolved.storageOptions);
    const { retry } = resolved;
    const uploadStorage = resolved.storage
      ? storage
      : new Storage({
          ...resolved.storageOptions,
          retryOptions: {
            autoRetry: retry.retries > 0,
            maxRetries: retry.retries,
            retryDelayMultiplier: retry.factor,
            // The client starts at 1 s between tries and refuses a lower ceiling.
            maxRetryDelay: Math.max(1, retry.maxDelayMs / 1000),
            // Rewriting a whole object is idempotent: without this the client retries an
            // upload without preconditions never, and one 503 fails a 20 MiB save.
            idempotencyStrategy: IdempotencyStrategy.RetryAlways,
            retryableErrorFn: isTransientGcsError,
          },
        });
    super(new GcsPrimitives(storage, uploadStorage, resolved), {
      retry,
      requestTimeoutMs: resolved.requestTimeoutMs,
      deleteConcurrency: resolved.deleteConcurrency,
    });
    this.storage = storage;
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
