// The S3 store: s3://bucket/key on AWS or any S3-compatible server. Streaming
// uploads go through lib-storage's multipart Upload (bounded memory, aborted on
// failure); rmtree deletes in DeleteObjects batches and checks every per-key error.
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  AbortedError,
  bodyBytes,
  bodyChunks,
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
  SavepointError,
  type SignalOptions,
  type StorageBackend,
  withRetry,
} from '@savepoint/core';
import { BACKEND_NAME, isTransientS3Error, mapS3Error } from './s3-errors.js';
import { type ResolvedS3Options, resolveS3Options, type S3BackendOptions } from './s3-options.js';

const SCHEMES = ['s3'] as const;
/** DeleteObjects takes at most 1,000 keys. */
const DELETE_BATCH = 1000;
/** Rounds of retrying the keys a DeleteObjects response reported as failed. */
const DELETE_ROUNDS = 4;

export class S3Backend implements StorageBackend {
  readonly name = BACKEND_NAME;
  readonly client: S3Client;
  readonly #options: ResolvedS3Options;
  readonly #ownsClient: boolean;

  constructor(options: S3BackendOptions = {}) {
    this.#options = resolveS3Options(options);
    this.#ownsClient = !this.#options.client;
    this.client = this.#options.client ?? new S3Client(this.#options.clientConfig ?? {});
    if (this.#ownsClient) {
      // Retries every HTTP request (including each multipart part) with savepoint's policy.
      // It sits before signing, like the SDK's own retry middleware, so each attempt is re-signed.
      this.client.middlewareStack.add(
        (next) => (args) =>
          withRetry(() => next(args), { policy: this.#options.retry, backend: BACKEND_NAME, isTransient: isTransientS3Error }),
        { step: 'finalizeRequest', priority: 'high', name: 'savepointRetryMiddleware' },
      );
    }
  }

  #loc(path: string) {
    return parseObjectUri(path, SCHEMES, BACKEND_NAME);
  }

  #fail(error: unknown, path: string, operation: string, signal?: AbortSignal): Error {
    if (signal?.aborted)
      return new AbortedError(`${operation} ${path}: aborted`, { backend: BACKEND_NAME, cause: signal.reason });
    return mapS3Error(error, path, operation, this.#options.secrets);
  }

  joinPath(base: string, ...parts: string[]): string {
    return joinObjectPath(base, parts, BACKEND_NAME);
  }

  async exists(path: string, options: SignalOptions = {}): Promise<boolean> {
    return (await this.isFile(path, options)) || (await this.isDir(path, options));
  }

  async isFile(path: string, options: SignalOptions = {}): Promise<boolean> {
    try {
      await this.stat(path, options);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async isDir(path: string, options: SignalOptions = {}): Promise<boolean> {
    const { bucket, key } = this.#loc(path);
    try {
      const out = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: dirPrefix(key), MaxKeys: 1 }), {
        abortSignal: options.signal,
      });
      return (out.KeyCount ?? out.Contents?.length ?? 0) > 0;
    } catch (error) {
      const mapped = this.#fail(error, path, 'isDir', options.signal);
      if (mapped instanceof NotFoundError) return false;
      throw mapped;
    }
  }

  async stat(path: string, options: SignalOptions = {}): Promise<ObjectStat> {
    const { bucket, key } = this.#loc(path);
    if (key === '') throw new NotFoundError(path, { backend: BACKEND_NAME, message: `stat: ${path} is a bucket, not an object` });
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: options.signal });
      return { path, size: out.ContentLength ?? 0, lastModified: out.LastModified };
    } catch (error) {
      throw this.#fail(error, path, 'stat', options.signal);
    }
  }

  async put(path: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const { bucket, key } = this.#loc(path);
    if (key === '') throw new InvalidPathError(path, 'a put needs a key, not just a bucket', { backend: BACKEND_NAME });
    const { signal } = options;
    if (signal?.aborted)
      throw new AbortedError(`put ${path}: aborted before it started`, { backend: BACKEND_NAME, cause: signal.reason });
    const bytes = bodyBytes(body);
    try {
      if (bytes && bytes.byteLength <= this.#options.partSize) {
        await this.client.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentType: options.contentType }),
          { abortSignal: signal },
        );
        return;
      }
      // Unknown length: multipart through lib-storage. It buffers one part per queue slot,
      // sends a single PutObject when the whole body fits in one part, and aborts the
      // multipart upload on failure (leavePartsOnError: false), so nothing is left behind.
      const upload = new Upload({
        client: this.client,
        params: { Bucket: bucket, Key: key, Body: Readable.from(bodyChunks(body)), ContentType: options.contentType },
        partSize: this.#options.partSize,
        queueSize: this.#options.queueSize,
        leavePartsOnError: false,
        abortController: signal ? abortControllerFor(signal) : undefined,
      });
      await upload.done();
    } catch (error) {
      throw this.#fail(error, path, 'put', signal);
    }
  }

  async putIfAbsent(path: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    const { bucket, key } = this.#loc(path);
    if (key === '') throw new InvalidPathError(path, 'a put needs a key, not just a bucket', { backend: BACKEND_NAME });
    const { signal } = options;
    if (signal?.aborted)
      throw new AbortedError(`putIfAbsent ${path}: aborted before it started`, { backend: BACKEND_NAME, cause: signal.reason });
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: bodyBytes(body),
          ContentType: options.contentType,
          IfNoneMatch: '*',
        }),
        { abortSignal: signal },
      );
      return true;
    } catch (error) {
      // 412: an object is there. 409: another conditional write to this key is in flight, and it will win.
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) return false;
      throw this.#fail(error, path, 'putIfAbsent', signal);
    }
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

  async #getObject(path: string, options: GetOptions) {
    const { bucket, key } = this.#loc(path);
    if (key === '') throw new NotFoundError(path, { backend: BACKEND_NAME, message: `get: ${path} is a bucket, not an object` });
    const range = options.range;
    if (range && (!Number.isInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start))) {
      throw new InvalidPathError(path, `bad byte range ${JSON.stringify(range)}: need 0 <= start <= end`, {
        backend: BACKEND_NAME,
      });
    }
    if (range && range.end !== undefined && range.end === range.start) {
      await this.stat(path, options);
      return undefined;
    }
    try {
      return await this.client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}` : undefined,
        }),
        { abortSignal: options.signal },
      );
    } catch (error) {
      // A range that starts at or past the end of the object reads nothing.
      if ((error as { name?: string }).name === 'InvalidRange') return undefined;
      throw this.#fail(error, path, 'get', options.signal);
    }
  }

  async get(path: string, options: GetOptions = {}): Promise<Uint8Array> {
    const out = await this.#getObject(path, options);
    if (!out?.Body) return new Uint8Array(0);
    try {
      return await out.Body.transformToByteArray();
    } catch (error) {
      throw this.#fail(error, path, 'get', options.signal);
    }
  }

  async getStream(path: string, options: GetOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const out = await this.#getObject(path, options);
    if (!out?.Body) return Readable.from([]);
    return out.Body as unknown as AsyncIterable<Uint8Array>;
  }

  async *#pages(
    bucket: string,
    prefix: string,
    delimiter: string | undefined,
    signal?: AbortSignal,
  ): AsyncIterable<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }),
        { abortSignal: signal },
      );
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async *list(path: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    const { bucket, key } = this.#loc(path);
    const prefix = dirPrefix(key);
    const base = `s3://${bucket}`;
    try {
      for await (const page of this.#pages(bucket, prefix, options.recursive ? undefined : '/', options.signal)) {
        const entries: ListEntry[] = [];
        for (const p of page.CommonPrefixes ?? []) {
          if (!p.Prefix) continue;
          const name = p.Prefix.slice(prefix.length, -1);
          entries.push({ path: `${base}/${p.Prefix.slice(0, -1)}`, name, type: 'dir' });
        }
        for (const object of page.Contents ?? []) {
          if (!object.Key || object.Key.endsWith('/')) continue; // folder markers made by consoles
          entries.push({
            path: `${base}/${object.Key}`,
            name: object.Key.slice(object.Key.lastIndexOf('/') + 1),
            type: 'file',
            size: object.Size,
            lastModified: object.LastModified,
          });
        }
        entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
        yield* entries;
      }
    } catch (error) {
      const mapped = this.#fail(error, path, 'list', options.signal);
      if (mapped instanceof NotFoundError) return;
      throw mapped;
    }
  }

  async remove(path: string, options: SignalOptions = {}): Promise<void> {
    const { bucket, key } = this.#loc(path);
    if (key === '') throw new InvalidPathError(path, 'remove needs a key; use rmtree for folders', { backend: BACKEND_NAME });
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: options.signal });
    } catch (error) {
      const mapped = this.#fail(error, path, 'remove', options.signal);
      if (mapped instanceof NotFoundError) return;
      throw mapped;
    }
  }

  async rmtree(path: string, options: RmtreeOptions = {}): Promise<void> {
    const { bucket, key } = this.#loc(path);
    if (key === '' && !options.allowRoot) {
      throw new InvalidPathError(path, 'refusing to rmtree a whole bucket; pass { allowRoot: true } if you mean it', {
        backend: BACKEND_NAME,
      });
    }
    const prefix = dirPrefix(key);
    const inFlight = new Set<Promise<void>>();
    const survivors: string[] = [];
    try {
      for await (const page of this.#pages(bucket, prefix, undefined, options.signal)) {
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key?.startsWith(prefix) ? [o.Key] : []));
        for (let i = 0; i < keys.length; i += DELETE_BATCH) {
          const batch = keys.slice(i, i + DELETE_BATCH);
          const task = this.#deleteBatch(bucket, batch, options.signal).then((left) => {
            survivors.push(...left);
          });
          const tracked = task.finally(() => inFlight.delete(tracked));
          inFlight.add(tracked);
          if (inFlight.size >= this.#options.deleteConcurrency) await Promise.race(inFlight);
        }
      }
      await Promise.all(inFlight);
    } catch (error) {
      await Promise.allSettled(inFlight);
      const mapped = error instanceof SavepointError ? error : this.#fail(error, path, 'rmtree', options.signal);
      if (mapped instanceof NotFoundError) return;
      throw mapped;
    }
    if (survivors.length > 0) {
      throw new IncompleteDeleteError(
        path,
        survivors.map((k) => `s3://${bucket}/${k}`),
        { backend: BACKEND_NAME },
      );
    }
  }

  /** Deletes up to 1,000 keys, retrying the keys the response reports as failed. Returns the keys that survived. */
  async #deleteBatch(bucket: string, keys: string[], signal?: AbortSignal): Promise<string[]> {
    let pending = keys;
    for (let round = 0; round < DELETE_ROUNDS && pending.length > 0; round++) {
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** round));
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: pending.map((Key) => ({ Key })), Quiet: true } }),
        { abortSignal: signal },
      );
      // Per-key errors come back in a 200 response: reading them is the only way to know.
      pending = (out.Errors ?? []).flatMap((e) => (e.Key && e.Code !== 'NoSuchKey' ? [e.Key] : []));
    }
    return pending;
  }

  async copy(source: string, destination: string, options: SignalOptions = {}): Promise<void> {
    const src = this.#loc(source);
    const dst = this.#loc(destination);
    if (src.key === '' || dst.key === '')
      throw new InvalidPathError(`${source} -> ${destination}`, 'copy needs keys', { backend: BACKEND_NAME });
    try {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: dst.bucket,
          Key: dst.key,
          CopySource: `${src.bucket}/${encodeURIComponent(src.key).replace(/%2F/g, '/')}`,
        }),
        { abortSignal: options.signal },
      );
    } catch (error) {
      throw this.#fail(error, source, 'copy', options.signal);
    }
  }

  async close(): Promise<void> {
    if (this.#ownsClient) this.client.destroy();
  }
}

function abortControllerFor(signal: AbortSignal): AbortController {
  const controller = new AbortController();
  if (signal.aborted) controller.abort(signal.reason);
  else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  return controller;
}

/** Registers this backend for `s3://` URIs. Idempotent. */
export function registerS3Backend(): void {
  registerBackend(BACKEND_NAME, S3_REGISTRATION, { replace: true });
}

const S3_REGISTRATION = { schemes: SCHEMES, create: (args: Record<string, unknown>) => new S3Backend(args as S3BackendOptions) };
