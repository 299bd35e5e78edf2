// The Azure Blob store: az://container/key and https://<account>.blob.core.windows.net/<container>/<key>.
// Streams are staged as blocks with bounded concurrency and committed last, so a
// failed upload leaves no blob; rmtree uses BlobBatch and reads every sub-response.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DefaultAzureCredential } from '@azure/identity';
import {
  type BlobDownloadResponseParsed,
  BlobSASPermissions,
  BlobServiceClient,
  type ContainerClient,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import {
  type ListPage,
  type ObjectHead,
  type ObjectListing,
  type ObjectLocation,
  type ObjectRead,
  type ObjectRequest,
  ObjectStoreBackend,
  type ObjectStorePrimitives,
  type PartViews,
  parseObjectUri,
  partBytes,
  partChunks,
  type ReadRange,
  rangeHeader,
  type StreamWrite,
  sizeFromContentRange,
  stageParts,
  type WriteAttributes,
} from '@savepoint/core/kit';
import { ConfigError, InvalidPathError, registerBackend, type SignedUrlOptions } from '@savepoint/core/store';
import { azureErrorCode, BACKEND_NAME, mapAzureError } from './azure-errors.js';
import { type AzureBackendOptions, type ResolvedAzureOptions, resolveAzureOptions } from './azure-options.js';

/** A BlobBatch holds at most 256 sub-requests. */
const BATCH_LIMIT = 256;
const HTTPS_HOST = /^https:\/\/([a-z0-9]+)\.blob\.core\.windows\.net\/(.*)$/i;

interface Location extends ObjectLocation {
  /** What list() puts before `container/key`: `az://` or `https://acct.blob.core.windows.net/`. */
  base: string;
  account: string | undefined;
  /** The path as given, for messages. */
  source: string;
}

/** The MD5 of a buffer, or of views in order (a part sent without being copied together). */
const md5 = (bytes: Uint8Array | PartViews) => {
  const hash = createHash('md5');
  for (const view of partChunks(bytes)) hash.update(view);
  return hash.digest();
};

/**
 * What every write sends beside the bytes: the content type and metadata, and the
 * blob's MD5, stored with it so whole downloads can be compared (`md5` given only when
 * the whole blob's bytes are known). A single-request upload also sends it as the
 * request's Content-MD5, which Azure checks before it stores anything.
 */
function headers(attributes: WriteAttributes, blobMd5?: Uint8Array) {
  return {
    blobHTTPHeaders: {
      ...(attributes.contentType === undefined ? {} : { blobContentType: attributes.contentType }),
      ...(blobMd5 === undefined ? {} : { blobContentMD5: blobMd5 }),
    },
    ...(attributes.metadata === undefined ? {} : { metadata: attributes.metadata }),
  };
}

/** A whole download's bytes against the MD5 the blob was stored with: a mismatch fails the read (a TransientError: read it again). */
async function* checkedMd5(body: AsyncIterable<Uint8Array>, expected: Uint8Array): AsyncIterable<Uint8Array> {
  const hash = createHash('md5');
  for await (const chunk of body) {
    hash.update(chunk);
    yield chunk;
  }
  if (!hash.digest().equals(expected)) {
    // Classified as a network failure: the bytes were damaged on the way, a retry reads them again.
    throw Object.assign(new Error("the downloaded bytes do not match the blob's Content-MD5"), { code: 'ECONNRESET' });
  }
}

/** The Azure side of the adapter: one method per primitive, nothing else. */
class AzurePrimitives implements ObjectStorePrimitives {
  readonly name = BACKEND_NAME;
  readonly deleteBatchSize = BATCH_LIMIT;
  readonly singleRequestBytes: number;
  readonly #perAccount = new Map<string, BlobServiceClient>();

  constructor(private readonly options: ResolvedAzureOptions) {
    this.singleRequestBytes = options.blockSize;
  }

  locate(path: string): Location {
    if (typeof path === 'string' && path.includes('?')) {
      // A SAS URL used as a path would put its signature into blob names, the pointer and logs.
      throw new InvalidPathError(
        path,
        'it has a query string (a SAS token?); give the path without it and pass the token as backendArgs.sasToken',
        { backend: BACKEND_NAME },
      );
    }
    const https = HTTPS_HOST.exec(typeof path === 'string' ? path : '');
    if (https) {
      const account = (https[1] as string).toLowerCase();
      const { bucket, key } = parseObjectUri(`az://${https[2]}`, ['az'], BACKEND_NAME);
      return { bucket, key, base: `https://${account}.blob.core.windows.net/`, account, source: path };
    }
    const { bucket, key } = parseObjectUri(path, ['az'], BACKEND_NAME);
    return { bucket, key, base: 'az://', account: undefined, source: path };
  }

  pathOf(like: string, key: string): string {
    const loc = this.locate(like);
    return `${loc.base}${loc.bucket}/${key}`;
  }

  #container(location: ObjectLocation): ContainerClient {
    const loc = location as Location;
    const path = loc.source;
    const { containerClient, serviceClient, accountName } = this.options;
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
      if (containerClient.containerName !== loc.bucket) {
        throw new InvalidPathError(path, `this backend serves container "${containerClient.containerName}" only`, {
          backend: BACKEND_NAME,
        });
      }
      return containerClient;
    }
    if (serviceClient) return serviceClient.getContainerClient(loc.bucket);
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
    return client.getContainerClient(loc.bucket);
  }

  #blob(location: ObjectLocation) {
    return this.#container(location).getBlockBlobClient(location.key);
  }

  async head(location: ObjectLocation, request: ObjectRequest): Promise<ObjectHead> {
    const props = await this.#blob(location).getProperties({ abortSignal: request.signal });
    return {
      size: props.contentLength ?? 0,
      lastModified: props.lastModified,
      version: props.etag,
      contentType: props.contentType,
      metadata: props.metadata,
    };
  }

  async read(location: ObjectLocation, range: ReadRange, request: ObjectRequest): Promise<ObjectRead | undefined> {
    // The whole blob is asked for without a range (offset 0, no count), as a plain download would.
    const ranged = rangeHeader(range) !== undefined;
    let response: BlobDownloadResponseParsed;
    try {
      response = await this.#blob(location).download(range.start, range.end === undefined ? undefined : range.end - range.start, {
        abortSignal: request.signal,
        conditions: range.version ? { ifMatch: range.version } : undefined,
        // The adapter resumes a cut read under the one retry policy; the SDK's own re-reads would add a second.
        maxRetryRequests: 0,
      });
    } catch (error) {
      if ((error as { statusCode?: unknown }).statusCode === 416) return undefined;
      throw error;
    }
    const body = (response.readableStreamBody as AsyncIterable<Uint8Array> | undefined) ?? Readable.from([]);
    return {
      size: ranged ? sizeFromContentRange(response.contentRange) : response.contentLength,
      version: response.etag,
      // Only a whole read carries the blob's MD5 (a range's Content-MD5 would be of the range, and is not asked for).
      body:
        !ranged && (response.contentMD5 ?? response.blobContentMD5)
          ? checkedMd5(body, (response.contentMD5 ?? response.blobContentMD5) as Uint8Array)
          : body,
    };
  }

  async writeBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes) {
    const digest = md5(bytes);
    await this.#blob(location).upload(bytes, bytes.byteLength, {
      abortSignal: request.signal,
      ...headers(request, digest),
      transactionalContentMD5: digest,
    } as never);
  }

  /**
   * Stages blocks with bounded concurrency, each under the adapter's retry and timeout,
   * then commits the list: until the commit readers see the old blob (or none), and
   * uncommitted blocks are never visible (Azure drops them after a week).
   */
  async writeStream(location: ObjectLocation, body: AsyncIterable<Uint8Array>, write: StreamWrite): Promise<void> {
    const blob = this.#blob(location);
    const uploadId = randomBytes(8).toString('hex');
    const blockId = (index: number) => Buffer.from(`${uploadId}-${String(index).padStart(6, '0')}`).toString('base64');
    // The whole blob's MD5, taken in order as the body passes (blocks are staged out of order).
    const whole = createHash('md5');
    const hashed = (async function* () {
      for await (const chunk of body) {
        whole.update(chunk);
        yield chunk;
      }
    })();
    const count = await stageParts(
      hashed,
      write,
      // Views of a stable body are staged as they are: no block buffers beside the caller's memory.
      { partSize: this.options.blockSize, concurrency: this.options.concurrency, views: true },
      // Each block carries its own Content-MD5, which Azure checks before it keeps the block.
      (part, index, request) =>
        blob.stageBlock(
          blockId(index),
          // Views as a stream made afresh for each send (the SDK's own retries too).
          part instanceof Uint8Array ? part : () => Readable.from(part, { objectMode: false }),
          partBytes(part),
          { abortSignal: request.signal, transactionalContentMD5: md5(part) },
        ),
    );
    const ids = Array.from({ length: count }, (_, index) => blockId(index));
    const digest = whole.digest();
    await write.part('put', (request) => blob.commitBlockList(ids, { abortSignal: request.signal, ...headers(write, digest) }));
  }

  async createBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes) {
    try {
      // If-None-Match: * — Azure answers 409 BlobAlreadyExists (or 412) when a blob is there.
      const digest = md5(bytes);
      await this.#blob(location).upload(bytes, bytes.byteLength, {
        abortSignal: request.signal,
        conditions: { ifNoneMatch: '*' },
        ...headers(request, digest),
        transactionalContentMD5: digest,
      });
      return true;
    } catch (error) {
      const status = (error as { statusCode?: unknown }).statusCode;
      if (status === 409 || status === 412) return false;
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
      const digest = md5(bytes);
      await this.#blob(location).upload(bytes, bytes.byteLength, {
        abortSignal: request.signal,
        conditions: { ifMatch: version },
        ...headers(request, digest),
        transactionalContentMD5: digest,
      });
      return true;
    } catch (error) {
      // 412 ConditionNotMet: another ETag. 404 BlobNotFound: no blob (a missing container is thrown on).
      const status = (error as { statusCode?: unknown }).statusCode;
      if (status === 412 || (status === 404 && azureErrorCode(error) !== 'ContainerNotFound')) return false;
      throw error;
    }
  }

  async removeVersion(location: ObjectLocation, version: string, request: ObjectRequest): Promise<boolean> {
    try {
      await this.#blob(location).delete({ abortSignal: request.signal, conditions: { ifMatch: version } });
      return true;
    } catch (error) {
      // A missing blob counts as deleted, as in remove; only another ETag is a refusal.
      const status = (error as { statusCode?: unknown }).statusCode;
      if (status === 404) return true;
      if (status === 412) return false;
      throw error;
    }
  }

  /** Azure lists have no start-after: `page.startAfter` is left to the adapter's filter. */
  async listPage(location: ObjectLocation, page: ListPage, request: ObjectRequest): Promise<ObjectListing> {
    const container = this.#container(location);
    const pages = page.delimiter
      ? container
          .listBlobsByHierarchy(page.delimiter, { prefix: page.prefix, abortSignal: request.signal })
          .byPage({ continuationToken: page.token, maxPageSize: page.limit })
      : container
          .listBlobsFlat({ prefix: page.prefix, abortSignal: request.signal })
          .byPage({ continuationToken: page.token, maxPageSize: page.limit });
    const result = await pages.next();
    if (result.done) return { files: [], folders: [] };
    const value = result.value as {
      continuationToken?: string;
      segment: { blobItems?: BlobItemLike[]; blobPrefixes?: { name: string }[] };
    };
    return {
      folders: (value.segment.blobPrefixes ?? []).map((p) => p.name),
      files: (value.segment.blobItems ?? []).map((item) => ({
        key: item.name,
        size: item.properties.contentLength,
        lastModified: item.properties.lastModified,
      })),
      next: value.continuationToken || undefined,
    };
  }

  /** One BlobBatch of deletes (or one delete); resolves the names whose sub-request failed. A 404 counts as deleted. */
  async deleteMany(location: ObjectLocation, keys: string[], request: ObjectRequest): Promise<string[]> {
    const container = this.#container(location);
    if (keys.length === 1) {
      await container.getBlockBlobClient(keys[0] as string).deleteIfExists({ abortSignal: request.signal });
      return [];
    }
    const response = await container.getBlobBatchClient().deleteBlobs(
      keys.map((key) => container.getBlobClient(key)),
      { abortSignal: request.signal },
    );
    const failed: string[] = [];
    response.subResponses.forEach((sub, i) => {
      if (sub.status >= 300 && sub.status !== 404) failed.push(keys[i] as string);
    });
    // A response with fewer sub-responses than requests hides failures: retry the rest.
    for (let i = response.subResponses.length; i < keys.length; i++) failed.push(keys[i] as string);
    return failed;
  }

  /** Streams through this process: works across accounts and with every credential kind. */
  async copyObject(source: ObjectLocation, destination: ObjectLocation, request: ObjectRequest): Promise<void> {
    const response = await this.#blob(source).download(0, undefined, { abortSignal: request.signal });
    const body = response.readableStreamBody;
    if (!body) throw Object.assign(new Error('empty download'), { code: 'ECONNRESET' });
    // The source's content type, metadata and stored MD5 come along, as S3 and GCS copies keep them.
    await this.#blob(destination).uploadStream(
      body as NodeJS.ReadableStream as never,
      this.options.blockSize,
      this.options.concurrency,
      {
        abortSignal: request.signal,
        blobHTTPHeaders: {
          ...(response.contentType === undefined ? {} : { blobContentType: response.contentType }),
          ...(response.blobContentMD5 === undefined ? {} : { blobContentMD5: response.blobContentMD5 }),
        },
        ...(response.metadata === undefined ? {} : { metadata: response.metadata }),
      },
    );
  }

  /**
   * A service SAS, signed here with the account key; a backend built on a SAS token or a
   * token credential holds no key, and is told so (a user delegation SAS is not made).
   */
  async signUrl(location: ObjectLocation, options: SignedUrlOptions): Promise<string> {
    const blob = this.#blob(location);
    if (!(blob.credential instanceof StorageSharedKeyCredential)) {
      throw new ConfigError(
        `signedUrl ${(location as Location).source}: this backend holds no account key to sign with; give backendArgs connectionString with AccountKey, or accountName and accountKey`,
        { option: 'accountKey', backend: BACKEND_NAME },
      );
    }
    return blob.generateSasUrl({
      permissions: BlobSASPermissions.parse(options.action === 'read' ? 'r' : 'cw'),
      expiresOn: new Date(Date.now() + options.expiresInMs),
    });
  }

  classify(error: unknown, path: string, operation: string) {
    return mapAzureError(error, path, operation, this.options.secrets);
  }
}

export class AzureBackend extends ObjectStoreBackend {
  constructor(options: AzureBackendOptions = {}) {
    const resolved = resolveAzureOptions(options);
    super(new AzurePrimitives(resolved), {
      retry: resolved.retry,
      requestTimeoutMs: resolved.requestTimeoutMs,
      deleteConcurrency: resolved.deleteConcurrency,
    });
  }
}

interface BlobItemLike {
  name: string;
  properties: { contentLength?: number; lastModified?: Date };
}

/** Registers this backend for `az://` URIs and `https://<account>.blob.core.windows.net` URLs. Idempotent. */
export function registerAzureBackend(): void {
  // The source lets a worker thread (the lease renewer) register it again in its own registry.
  registerBackend(BACKEND_NAME, AZURE_REGISTRATION, {
    replace: true,
    source: { module: import.meta.url, register: 'registerAzureBackend' },
  });
}

const AZURE_REGISTRATION = {
  schemes: ['az', 'https'],
  create: (args: Record<string, unknown>) => new AzureBackend(args as AzureBackendOptions),
};
