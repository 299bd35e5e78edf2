// The S3 store: s3://bucket/key on AWS or any S3-compatible server, as SDK glue
// under core's object-store adapter (which owns retries, abort, timeouts, paging
// and error mapping). Streams go up as multipart uploads of the kit's staged parts
// (bounded memory, aborted on failure); rmtree deletes in DeleteObjects batches and reads
// every per-key error.
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import {
  dirPrefix,
  type ListPage,
  type ObjectHead,
  type ObjectListing,
  type ObjectLocation,
  type ObjectRead,
  type ObjectRequest,
  ObjectStoreBackend,
  type ObjectStorePrimitives,
  parseObjectUri,
  partBytes,
  type ReadRange,
  rangeHeader,
  type StreamWrite,
  settledMap,
  sizeFromContentRange,
  stageParts,
  type WriteAttributes,
} from '@savepoint/core/kit';
import {
  AbortedError,
  ConfigError,
  NotFoundError,
  registerBackend,
  type SignalOptions,
  type SignedUrlOptions,
} from '@savepoint/core/store';
import { checksumOf, nativeChecksum, unsignedPayload } from './s3-checksum.js';
import { BACKEND_NAME, mapS3Error } from './s3-errors.js';
import { type ResolvedS3Options, resolveS3Options, type S3BackendOptions } from './s3-options.js';

const SCHEMES = ['s3'] as const;
/** DeleteObjects takes at most 1,000 keys. */
const DELETE_BATCH = 1000;
/** S3's limit on the parts of one multipart upload. */
const MAX_PARTS = 10_000;

/**
 * Every upload (each request of a multipart one too) carries a CRC32C of its bytes,
 * which S3 checks before it stores them; whole reads ask for the stored checksum
 * (ChecksumMode) and the SDK compares it with the bytes received.
 */
const CHECKSUM = { ChecksumAlgorithm: 'CRC32C' } as const;

/** Content type and user metadata as PutObject and CreateMultipartUpload take them. */
const attributesOf = (write: WriteAttributes) => ({
  ...(write.contentType === undefined ? {} : { ContentType: write.contentType }),
  ...(write.metadata === undefined ? {} : { Metadata: write.metadata }),
});

const statusOf = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** False for the answers that mean "not that version" (412, or 404: no object); anything else is thrown on. */
function refusedCondition(error: unknown): false {
  const status = statusOf(error);
  const missingBucket =
    (error as { name?: string; Code?: string }).Code === 'NoSuchBucket' || (error as Error).name === 'NoSuchBucket';
  if (status === 412 || (status === 404 && !missingBucket)) return false;
  throw error;
}

/** The S3 side of the adapter: one method per primitive, nothing else. */
class S3Primitives implements ObjectStorePrimitives {
  readonly name = BACKEND_NAME;
  readonly deleteBatchSize = DELETE_BATCH;
  readonly singleRequestBytes: number;

  constructor(
    private readonly client: S3Client,
    private readonly options: ResolvedS3Options,
  ) {
    this.singleRequestBytes = options.partSize;
  }

  locate(path: string): ObjectLocation {
    return parseObjectUri(path, SCHEMES, BACKEND_NAME);
  }

  pathOf(like: string, key: string): string {
    return `s3://${this.locate(like).bucket}/${key}`;
  }

  async head(location: ObjectLocation, request: ObjectRequest): Promise<ObjectHead> {
    const out = await this.client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }), {
      abortSignal: request.signal,
    });
    return {
      size: out.ContentLength ?? 0,
      lastModified: out.LastModified,
      version: out.ETag,
      contentType: out.ContentType,
      metadata: out.Metadata,
    };
  }

  async read(location: ObjectLocation, range: ReadRange, request: ObjectRequest): Promise<ObjectRead | undefined> {
    const ranged = rangeHeader(range);
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(
        new GetObjectCommand({
          Bucket: location.bucket,
          Key: location.key,
          Range: ranged,
          IfMatch: range.version,
          // A range has no stored checksum to compare; a whole read has.
          ...(ranged ? {} : { ChecksumMode: 'ENABLED' as const }),
        }),
        { abortSignal: request.signal },
      );
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) return undefined;
      throw error;
    }
    return {
      size: ranged ? sizeFromContentRange(out.ContentRange) : out.ContentLength,
      version: out.ETag,
      body: (out.Body as AsyncIterable<Uint8Array> | undefined) ?? Readable.from([]),
    };
  }

  /** One PutObject of `bytes` with its attributes and CRC32C, and a condition if any (`If-None-Match`, `If-Match`). */
  #putObject(
    location: ObjectLocation,
    bytes: Uint8Array,
    request: ObjectRequest & WriteAttributes,
    condition: { IfNoneMatch: '*' } | { IfMatch: string } | Record<string, never> = {},
  ) {
    const command = new PutObjectCommand({
      Bucket: location.bucket,
      Key: location.key,
      Body: bytes,
      ...attributesOf(request),
      ...checksumOf(bytes),
      ...condition,
    });
    // Data goes unsigned (its CRC32C covers it); a conditional record keeps its payload signed.
    return this.client.send(Object.keys(condition).length === 0 ? unsignedPayload(command) : command, {
      abortSignal: request.signal,
    });
  }

  async writeBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes) {
    await this.#putObject(location, bytes, request);
  }

  /**
   * A multipart upload (the adapter only sends streams longer than one part): the kit's
   * `stageParts` cuts the stream into parts in reused buffers and sends each as an
   * UploadPart under the adapter's retry and timeout, `queueSize` at once, so an upload
   * holds at most (queueSize + 1) x partSize. (lib-storage's Upload concatenated every
   * part into a fresh buffer: a 128 MiB upload held 158 MiB against 32 MiB of parts.)
   * Nothing is visible until CompleteMultipartUpload; on failure the upload is aborted,
   * so its parts are freed.
   */
  async writeStream(location: ObjectLocation, body: AsyncIterable<Uint8Array>, write: StreamWrite): Promise<void> {
    const { bucket: Bucket, key: Key } = location;
    const { UploadId } = await write.part('put', (request) =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket, Key, ...attributesOf(write), ...CHECKSUM }), {
        abortSignal: request.signal,
      }),
    );
    try {
      // Each part's CRC32C goes back in the complete request, which S3 checks against the parts it holds.
      const parts: { ETag: string | undefined; PartNumber: number; ChecksumCRC32C?: string | undefined }[] = [];
      await stageParts(
        body,
        write,
        // Views of a stable body go up as they are (no part buffers); the SDK cannot checksum views itself.
        { partSize: this.options.partSize, concurrency: this.options.queueSize, views: nativeChecksum },
        async (part, index, request) => {
          if (index >= MAX_PARTS) {
            throw new ConfigError(
              `put s3://${Bucket}/${Key}: the stream is longer than ${MAX_PARTS} parts of partSize ${this.options.partSize} bytes; raise partSize`,
              { option: 'partSize', backend: BACKEND_NAME },
            );
          }
          const answer = await this.client.send(
            unsignedPayload(
              new UploadPartCommand({
                Bucket,
                Key,
                UploadId,
                PartNumber: index + 1,
                // A new stream of the views for every try (the adapter retries the part).
                Body: part instanceof Uint8Array ? part : Readable.from(part, { objectMode: false }),
                ContentLength: partBytes(part),
                ...checksumOf(part),
              }),
            ),
            { abortSignal: request.signal },
          );
          parts[index] = { ETag: answer.ETag, PartNumber: index + 1, ChecksumCRC32C: answer.ChecksumCRC32C };
        },
      );
      await write.part('put', (request) =>
        this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }), {
          abortSignal: request.signal,
        }),
      );
    } catch (error) {
      // The parts sent so far are freed (none is still on the wire: stageParts settles them
      // first); the object was never visible. A second try covers a dropped connection; what
      // still survives is removed by the next save's cleanup of unfinished writes.
      const abort = () => this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
      await abort().catch(() => abort().catch(() => {}));
      throw error;
    }
  }

  async createBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes) {
    try {
      await this.#putObject(location, bytes, request, { IfNoneMatch: '*' });
      return true;
    } catch (error) {
      // 412: an object is there. 409: another conditional write to this key is in flight, and it will win.
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) return false;
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
      await this.#putObject(location, bytes, request, { IfMatch: version });
      return true;
    } catch (error) {
      // 412: another ETag is there. 404: nothing is. (409, a conditional write in flight, is retried: see s3-errors.ts.)
      return refusedCondition(error);
    }
  }

  async removeVersion(location: ObjectLocation, version: string, request: ObjectRequest): Promise<boolean> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: location.bucket, Key: location.key, IfMatch: version }), {
        abortSignal: request.signal,
      });
      return true;
    } catch (error) {
      // A missing object counts as deleted, as in remove; only another version is a refusal.
      if (statusOf(error) === 404) return true;
      if (statusOf(error) === 412) return false;
      throw error;
    }
  }

  async listPage(location: ObjectLocation, page: ListPage, request: ObjectRequest): Promise<ObjectListing> {
    const out = await this.client.send(
      new ListObjectsV2Command({
        Bucket: location.bucket,
        Prefix: page.prefix,
        Delimiter: page.delimiter,
        ContinuationToken: page.token,
        MaxKeys: page.limit,
        // Only below the prefix: a startAfter before it would list from the prefix anyway.
        StartAfter: page.token === undefined && page.startAfter?.startsWith(page.prefix) ? page.startAfter : undefined,
      }),
      { abortSignal: request.signal },
    );
    return {
      folders: (out.CommonPrefixes ?? []).flatMap((p) => (p.Prefix ? [p.Prefix] : [])),
      files: (out.Contents ?? []).flatMap((o) => (o.Key ? [{ key: o.Key, size: o.Size, lastModified: o.LastModified }] : [])),
      next: out.IsTruncated ? out.NextContinuationToken : undefined,
    };
  }

  async deleteMany(location: ObjectLocation, keys: string[], request: ObjectRequest): Promise<string[]> {
    if (keys.length === 1) {
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: location.bucket, Key: keys[0] }), {
          abortSignal: request.signal,
        });
      } catch (error) {
        if (!(mapS3Error(error, keys[0] as string, 'remove', []) instanceof NotFoundError)) throw error;
      }
      return [];
    }
    const out = await this.client.send(
      new DeleteObjectsCommand({ Bucket: location.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      { abortSignal: request.signal },
    );
    // Per-key errors come back in a 200 response: reading them is the only way to know.
    return (out.Errors ?? []).flatMap((e) => (e.Key && e.Code !== 'NoSuchKey' ? [e.Key] : []));
  }

  async copyObject(source: ObjectLocation, destination: ObjectLocation, request: ObjectRequest): Promise<void> {
    const copySource = `${source.bucket}/${encodeURIComponent(source.key).replace(/%2F/g, '/')}`;
    const head = await this.client.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.key }), {
      abortSignal: request.signal,
    });
    const size = head.ContentLength ?? 0;
    if (size <= this.options.multipartCopyBytes) {
      await this.client.send(
        new CopyObjectCommand({ Bucket: destination.bucket, Key: destination.key, CopySource: copySource }),
        {
          abortSignal: request.signal,
        },
      );
      return;
    }
    // Past one CopyObject's limit: a multipart upload whose parts the server copies from
    // the source (UploadPartCopy), at most 10,000 of them; nothing passes through here.
    // The copy names the source's ETag, so a source replaced meanwhile fails the copy.
    const partBytes = Math.max(this.options.partSize, Math.ceil(size / 10_000));
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({
        Bucket: destination.bucket,
        Key: destination.key,
        ContentType: head.ContentType,
        Metadata: head.Metadata,
      }),
      { abortSignal: request.signal },
    );
    try {
      const parts: { ETag: string | undefined; PartNumber: number }[] = [];
      const ranges = Array.from({ length: Math.ceil(size / partBytes) }, (_, i) => ({
        number: i + 1,
        start: i * partBytes,
        end: Math.min(size, (i + 1) * partBytes) - 1,
      }));
      // Every part copy settles before the abort below, which would not free a part landing after it.
      await settledMap(
        ranges,
        async ({ number, start, end }) => {
          const answer = await this.client.send(
            new UploadPartCopyCommand({
              Bucket: destination.bucket,
              Key: destination.key,
              UploadId,
              PartNumber: number,
              CopySource: copySource,
              CopySourceRange: `bytes=${start}-${end}`,
              CopySourceIfMatch: head.ETag,
            }),
            { abortSignal: request.signal },
          );
          parts[number - 1] = { ETag: answer.CopyPartResult?.ETag, PartNumber: number };
        },
        this.options.queueSize,
      );
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: destination.bucket,
          Key: destination.key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
        { abortSignal: request.signal },
      );
    } catch (error) {
      // The parts copied so far are freed; the destination was never visible.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: destination.bucket, Key: destination.key, UploadId }))
        .catch(() => {});
      throw error;
    }
  }

  /** Signed here with the client's credentials (SigV4, query-string auth): no request is made. */
  async signUrl(location: ObjectLocation, options: SignedUrlOptions): Promise<string> {
    const target = { Bucket: location.bucket, Key: location.key };
    const command = options.action === 'read' ? new GetObjectCommand(target) : new PutObjectCommand(target);
    // Loaded on first use: every process that imports the backend (the CLI, a worker) would pay for it at start.
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    return getSignedUrl(this.client, command, { expiresIn: Math.ceil(options.expiresInMs / 1000) });
  }

  classify(error: unknown, path: string, operation: string) {
    return mapS3Error(error, path, operation, this.options.secrets);
  }
}

export class S3Backend extends ObjectStoreBackend {
  readonly client: S3Client;
  readonly #options: ResolvedS3Options;
  readonly #ownsClient: boolean;

  constructor(options: S3BackendOptions = {}) {
    const resolved = resolveS3Options(options);
    const client = resolved.client ?? new S3Client(resolved.clientConfig ?? {});
    super(new S3Primitives(client, resolved), {
      retry: resolved.retry,
      requestTimeoutMs: resolved.requestTimeoutMs,
      deleteConcurrency: resolved.deleteConcurrency,
    });
    this.client = client;
    this.#options = resolved;
    this.#ownsClient = !resolved.client;
  }

  #fail(error: unknown, path: string, operation: string, signal?: AbortSignal): Error {
    if (signal?.aborted)
      return new AbortedError(`${operation} ${path}: aborted`, { backend: BACKEND_NAME, cause: signal.reason });
    return mapS3Error(error, path, operation, this.#options.secrets);
  }

  #loc(path: string) {
    return parseObjectUri(path, SCHEMES, BACKEND_NAME);
  }

  /** Aborts the multipart uploads that killed saves left below `path` (they are invisible, but billed). */
  async removeIncompleteWrites(path: string, options: SignalOptions = {}): Promise<number> {
    const { bucket, key } = this.#loc(path);
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: bucket,
            Prefix: dirPrefix(key),
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
          { abortSignal: options.signal },
        );
        for (const upload of page.Uploads ?? []) {
          if (!upload.Key || !upload.UploadId) continue;
          await this.client.send(
            new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
            {
              abortSignal: options.signal,
            },
          );
          removed++;
        }
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
      } while (keyMarker !== undefined);
    } catch (error) {
      const mapped = this.#fail(error, path, 'removeIncompleteWrites', options.signal);
      if (mapped instanceof NotFoundError) return removed;
      throw mapped;
    }
    return removed;
  }

  async close(): Promise<void> {
    if (this.#ownsClient) this.client.destroy();
  }
}

/** Registers this backend for `s3://` URIs. Idempotent. */
export function registerS3Backend(): void {
  // The source lets a worker thread (the lease renewer) register it again in its own registry.
  registerBackend(BACKEND_NAME, S3_REGISTRATION, {
    replace: true,
    source: { module: import.meta.url, register: 'registerS3Backend' },
  });
}

const S3_REGISTRATION = { schemes: SCHEMES, create: (args: Record<string, unknown>) => new S3Backend(args as S3BackendOptions) };
