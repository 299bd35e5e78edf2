// The GCS store: gs://bucket/key, as SDK glue under core's object-store adapter
// (which owns retries, abort, timeouts, paging and error mapping). Small bodies go
// in one request; streams of unknown length are uploaded as parts and composed into
// the object in one request, so it appears only when complete.
import { randomBytes } from 'node:crypto';
import { type File, Storage } from '@google-cloud/storage';
import {
  type ListPage,
  type ObjectHead,
  type ObjectListing,
  type ObjectLocation,
  type ObjectRead,
  type ObjectRequest,
  ObjectStoreBackend,
  type ObjectStorePrimitives,
  parseObjectUri,
  type ReadRange,
  type StreamWrite,
  stageParts,
  untilAborted,
  type WriteAttributes,
} from '@savepoint/core/kit';
import { ConfigError, registerBackend, type SignedUrlOptions } from '@savepoint/core/store';
import pMap from 'p-map';
import { crc32cOf } from './crc32c.js';
import { BACKEND_NAME, mapGcsError } from './gcs-errors.js';
import { readMedia } from './gcs-media-read.js';
import { type GcsBackendOptions, type ResolvedGcsOptions, resolveGcsOptions } from './gcs-options.js';

const SCHEMES = ['gs'] as const;
/** Where the parts of a streamed upload wait to be composed: at the bucket root, outside every run folder. */
export const UPLOADS_PREFIX = '.savepoint-uploads/';
/** Sources one compose request accepts. */
const COMPOSE_LIMIT = 32;

interface GcsListResponse {
  items?: { name?: string; size?: string | number; updated?: string }[];
  prefixes?: string[];
  nextPageToken?: string;
}

const statusOf = (error: unknown) => (error as { code?: unknown }).code;

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * The object resource of an upload: content type, user metadata, and the CRC32C of the
 * bytes, which GCS checks before it stores the object (a mismatch is a 400 and nothing
 * is written). `validation: 'crc32c'` also compares the stored checksum after the upload.
 */
function uploadOptions(bytes: Uint8Array, attributes: WriteAttributes) {
  return {
    resumable: false,
    validation: 'crc32c' as const,
    ...(attributes.contentType === undefined ? {} : { contentType: attributes.contentType }),
    metadata: {
      crc32c: crc32cOf(bytes),
      ...(attributes.metadata === undefined ? {} : { metadata: attributes.metadata }),
    },
  };
}

/**
 * One compose request naming the destination's content type and user metadata: the
 * client's `bucket.combine` sends only the content type, and a second request to add the
 * metadata would show the object without it for a moment.
 */
function composeInto(destination: File, sources: File[], attributes: WriteAttributes): Promise<void> {
  return new Promise((resolve, reject) => {
    destination.request(
      {
        method: 'POST',
        uri: '/compose',
        json: {
          destination: {
            ...(attributes.contentType === undefined ? {} : { contentType: attributes.contentType }),
            ...(attributes.metadata === undefined ? {} : { metadata: attributes.metadata }),
          },
          sourceObjects: sources.map((source) => ({ name: source.name })),
        },
      },
      (error) => (error ? reject(error) : resolve()),
    );
  });
}

/** The GCS side of the adapter: one method per primitive, nothing else. */
class GcsPrimitives implements ObjectStorePrimitives {
  readonly name = BACKEND_NAME;
  readonly deleteBatchSize = 1; // the Node client has no batch delete
  readonly singleRequestBytes: number;

  constructor(
    private readonly storage: Storage,
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

  async #isLive(location: ObjectLocation, request: ObjectRequest): Promise<boolean> {
    try {
      await untilAborted(this.#file(location).getMetadata(), request.signal);
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  async head(location: ObjectLocation, request: ObjectRequest): Promise<ObjectHead> {
    const [metadata] = await untilAborted(this.#file(location).getMetadata(), request.signal);
    return {
      size: Number(metadata.size ?? 0),
      lastModified: metadata.updated ? new Date(metadata.updated) : undefined,
      version: metadata.generation === undefined ? undefined : String(metadata.generation),
      contentType: metadata.contentType,
      metadata: metadata.metadata as Record<string, unknown> | undefined,
    };
  }

  read(location: ObjectLocation, range: ReadRange, request: ObjectRequest): Promise<ObjectRead | undefined> {
    return readMedia(this.storage, location, range, request.signal);
  }

  async writeBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes) {
    await untilAborted(this.#file(location).save(toBuffer(bytes), uploadOptions(bytes, request)), request.signal);
  }

  /**
   * A stream of unknown length: each part is uploaded as its own small object (one
   * request each, retried by the adapter, CRC32C-checked), then composed into the
   * destination in one request (rounds of 32, the compose limit), then the parts are
   * deleted. Compose creates the destination atomically, so readers see the old object
   * or the whole new one. (The client's resumable upload gives up on a single fault
   * mid-session: see docs/reliability.md.) Parts live under `.savepoint-uploads/` at
   * the bucket root, outside every run folder; a killed save leaves them there (a
   * lifecycle rule on that prefix removes them).
   */
  async writeStream(location: ObjectLocation, body: AsyncIterable<Uint8Array>, write: StreamWrite): Promise<void> {
    const bucket = this.storage.bucket(location.bucket);
    const prefix = `${UPLOADS_PREFIX}${randomBytes(8).toString('hex')}/`;
    const temporary: string[] = [];
    const partName = (index: number) => `${prefix}${String(index).padStart(6, '0')}`;
    try {
      const count = await stageParts(
        body,
        write,
        { partSize: this.options.chunkSize, concurrency: this.options.concurrency },
        (part, index, request) => {
          temporary.push(partName(index));
          return untilAborted(bucket.file(partName(index)).save(toBuffer(part), uploadOptions(part, {})), request.signal);
        },
      );
      let sources = Array.from({ length: count }, (_, index) => partName(index));
      for (let round = 0; sources.length > COMPOSE_LIMIT; round++) {
        const next: string[] = [];
        for (let i = 0; i < sources.length; i += COMPOSE_LIMIT) {
          const name = `${prefix}compose-${round}-${next.length}`;
          const group = sources.slice(i, i + COMPOSE_LIMIT).map((n) => bucket.file(n));
          await write.part('put', (request) => untilAborted(bucket.combine(group, bucket.file(name)), request.signal));
          next.push(name);
          temporary.push(name);
        }
        sources = next;
      }
      const destination = bucket.file(location.key);
      const group = sources.map((n) => bucket.file(n));
      await write.part('put', (request) => untilAborted(composeInto(destination, group, write), request.signal));
    } finally {
      // Best effort and bounded in time and in requests at once: a store that stopped
      // answering must not hold the failed save forever.
      const bound = AbortSignal.timeout(this.options.requestTimeoutMs);
      await pMap(
        new Set(temporary),
        (name) => untilAborted(bucket.file(name).delete({ ignoreNotFound: true }), bound).catch(() => {}),
        { concurrency: this.options.deleteConcurrency },
      );
    }
  }

  async createBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes) {
    try {
      // Generation 0 means "no live object": GCS answers 412 when one exists.
      await untilAborted(
        this.#file(location).save(toBuffer(bytes), {
          ...uploadOptions(bytes, request),
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

  async replaceBytes(
    location: ObjectLocation,
    bytes: Uint8Array,
    version: string,
    request: ObjectRequest & WriteAttributes,
  ): Promise<boolean> {
    try {
      // GCS answers 412 when the live generation is another one, or there is none.
      await untilAborted(
        this.#file(location).save(toBuffer(bytes), {
          ...uploadOptions(bytes, request),
          preconditionOpts: { ifGenerationMatch: version },
        }),
        request.signal,
      );
      return true;
    } catch (error) {
      if (statusOf(error) === 412) return false;
      throw error;
    }
  }

  async removeVersion(location: ObjectLocation, version: string, request: ObjectRequest): Promise<boolean> {
    // First an empty object written only over `version`: the decision "still that
    // version" is then taken by the server's precondition on a write, which every GCS
    // server honours. (fake-gcs-server, the emulator CI runs, ignores ifGenerationMatch
    // on DELETE: a bare conditional delete there removes whatever is live.) The delete
    // that follows names the generation just written, so on real GCS it never removes
    // a successor's object; on the emulator only a writer that read our empty object
    // within that one round trip can be lost.
    const file = this.#file(location);
    try {
      await untilAborted(
        file.save(Buffer.alloc(0), { resumable: false, preconditionOpts: { ifGenerationMatch: version } }),
        request.signal,
      );
    } catch (error) {
      if (statusOf(error) !== 412) throw error;
      // 412: another generation is live, or none is (gone already counts as removed, as in remove).
      return !(await this.#isLive(location, request));
    }
    // The upload's answer (kept on the File by the SDK) names the generation we wrote.
    const placeholder = String(file.metadata.generation);
    try {
      await untilAborted(this.#file(location).delete({ ifGenerationMatch: placeholder }), request.signal);
    } catch (error) {
      // 412/404: someone replaced or removed our placeholder after us; `version` is gone either way.
      if (statusOf(error) !== 404 && statusOf(error) !== 412) throw error;
    }
    return true;
  }

  async listPage(bucket: ObjectLocation, page: ListPage, request: ObjectRequest): Promise<ObjectListing> {
    // No startOffset: the adapter's filter does startAfter. With a delimiter, fake-gcs-server
    // (the emulator CI runs) answered a page after startOffset without entries real GCS lists,
    // and a hint that drops entries is worse than none.
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

  /**
   * A V4 signed URL, signed here with the service account's private key (credentials or
   * keyFilename); with Application Default Credentials that hold no key, the SDK asks
   * IAM signBlob. Against a custom endpoint (an emulator) the URL points at it.
   */
  async signUrl(location: ObjectLocation, options: SignedUrlOptions): Promise<string> {
    try {
      const [url] = await this.#file(location).getSignedUrl({
        version: 'v4',
        action: options.action,
        expires: Date.now() + options.expiresInMs,
      });
      return url;
    } catch (error) {
      if ((error as { name?: string }).name === 'SigningError' || /sign/i.test(String((error as Error).message))) {
        throw new ConfigError(
          `signedUrl gs://${location.bucket}/${location.key}: these credentials cannot sign (${(error as Error).name}); give backendArgs credentials or keyFilename of a service account`,
          { option: 'credentials', backend: BACKEND_NAME },
        );
      }
      throw error;
    }
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
    super(new GcsPrimitives(storage, resolved), {
      retry: resolved.retry,
      requestTimeoutMs: resolved.requestTimeoutMs,
      deleteConcurrency: resolved.deleteConcurrency,
    });
    this.storage = storage;
  }
}

/** Registers this backend for `gs://` URIs. Idempotent. */
export function registerGcsBackend(): void {
  // The source lets a worker thread (the lease renewer) register it again in its own registry.
  registerBackend(BACKEND_NAME, GCS_REGISTRATION, {
    replace: true,
    source: { module: import.meta.url, register: 'registerGcsBackend' },
  });
}

const GCS_REGISTRATION = {
  schemes: SCHEMES,
  create: (args: Record<string, unknown>) => new GcsBackend(args as GcsBackendOptions),
};
