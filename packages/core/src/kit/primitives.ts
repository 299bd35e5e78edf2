// What a cloud supplies to the object-store adapter: a small set of required
// primitives (head, read, write, conditional create, list one page, delete many,
// copy, classify an error) and the shapes they exchange. Everything the clouds share
// is the adapter's (adapter.ts), written once.
import type { ObjectMetadata, SignedUrlOptions } from '../store/contract.js';
import type { SavepointError } from '../store/errors.js';
import type { ObjectLocation } from '../store/object-path.js';

/** What one request attempt gets: a signal that fires on the caller's abort or on the request timeout. */
export interface ObjectRequest {
  signal: AbortSignal;
}

export interface ObjectHead {
  size: number;
  lastModified?: Date | undefined;
  /** ETag or generation: resumed reads are pinned to it, and `stat` gives it for compare-and-swap. */
  version?: string | undefined;
  /** As the store answered: the adapter keeps only what a put could have stored (call-options.ts). */
  contentType?: string | undefined;
  /** User metadata as the store answered (hostile: the adapter checks it). */
  metadata?: Record<string, unknown> | undefined;
}

/** What a write stores beside the bytes: already checked by the adapter. */
export interface WriteAttributes {
  contentType?: string | undefined;
  metadata?: ObjectMetadata | undefined;
}

/** Where a read starts and stops, and the version it keeps to. */
export interface ReadRange {
  start: number;
  /** Exclusive; undefined reads to the end of the object. `{ start: 0, end: undefined }` is the whole object. */
  end: number | undefined;
  /** ETag or generation of the object's first response: a resumed read must read the same version. */
  version: string | undefined;
}

/** What a read's response carries: the object's size and version come with its bytes, so no head is needed first. */
export interface ObjectRead {
  /**
   * The whole object's size: a whole read's Content-Length, or the total of a ranged
   * read's Content-Range (only that: never a header that a server ignoring the Range
   * would send too). Undefined when the answer does not say: for a whole read (a chunked
   * answer) the adapter asks `head`; a ranged answer without it is refused.
   */
  size: number | undefined;
  version: string | undefined;
  /** The bytes from `start` to `end` (or to the end of the object). */
  body: AsyncIterable<Uint8Array>;
}

/** The HTTP Range header for a read: undefined for the whole object (no header, as a plain download). */
export function rangeHeader(range: ReadRange): string | undefined {
  if (range.start === 0 && range.end === undefined) return undefined;
  return `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}`;
}

/**
 * The object's size from a ranged response's `Content-Range: bytes a-b/size`.
 * Undefined when the header is missing or has no total: a server that ignored the Range
 * header and sent the object from byte 0, which must not be read as the range.
 */
export function sizeFromContentRange(contentRange: string | null | undefined): number | undefined {
  const total = /^bytes\s+(?:\d+-\d+|\*)\/(\d+)\s*$/i.exec(contentRange ?? '')?.[1];
  return total === undefined ? undefined : Number(total);
}

export interface ListPage {
  prefix: string;
  delimiter: '/' | undefined;
  token: string | undefined;
  limit: number;
  startAfter?: string | undefined;
}

export interface ObjectListing {
  files: { key: string; size?: number | undefined; lastModified?: Date | undefined }[];
  /** Sub-folder prefixes, each ending in `/`. */
  folders: string[];
  next?: string | undefined;
}

/** Runs one request of a multi-request write under the adapter's retry, timeout and abort. */
export type PartRunner = <T>(operation: string, request: (request: ObjectRequest) => Promise<T>) => Promise<T>;

export interface StreamWrite extends WriteAttributes {
  signal?: AbortSignal | undefined;
  /** Every request the write makes (each part, block or chunk, and the commit) goes through this. */
  part: PartRunner;
  /**
   * Call when the store has taken `bytes` more of the body (a part acknowledged; the
   * SDK's own progress event where it has one): the request timeout measures time
   * without progress, and the caller's `onProgress` hears of it.
   */
  progress(bytes: number): void;
  /** The caller's chunks stay unchanged until the write resolves (`PutOptions.stableChunks`): parts may be views of them. */
  stableChunks?: boolean | undefined;
}

/**
 * What a cloud supplies. Every member is required; errors are thrown as the SDK
 * raised them and `classify` maps them. A missing object must classify as NotFoundError.
 */
export interface ObjectStorePrimitives {
  readonly name: string;
  /** Bytes up to which a body is sent in one request (and so retried whole). */
  readonly singleRequestBytes: number;
  /** Keys one `deleteMany` call accepts. */
  readonly deleteBatchSize: number;
  /** Splits a path into bucket (or container) and key; refuses what the store cannot address. */
  locate(path: string): ObjectLocation;
  /** The path of `key` in the same bucket as `like` (a store may keep the account URL of `like`). */
  pathOf(like: string, key: string): string;
  head(location: ObjectLocation, request: ObjectRequest): Promise<ObjectHead>;
  /**
   * One GET: the whole object without a Range header, otherwise bytes from `start` (to
   * `end`), of `version` when given. Resolves undefined when the range starts at or past
   * the end of an existing object (HTTP 416).
   */
  read(location: ObjectLocation, range: ReadRange, request: ObjectRequest): Promise<ObjectRead | undefined>;
  /** Writes `bytes` atomically in one request. */
  writeBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes): Promise<void>;
  /** Writes a stream of unknown length atomically; nothing is visible unless it all lands. */
  writeStream(location: ObjectLocation, body: AsyncIterable<Uint8Array>, write: StreamWrite): Promise<void>;
  /** Writes `bytes` only if no object is there, in one conditional request: true if it created it. */
  createBytes(location: ObjectLocation, bytes: Uint8Array, request: ObjectRequest & WriteAttributes): Promise<boolean>;
  /**
   * Replaces the object with `bytes` only if it is still `version` (S3 and Azure
   * `If-Match`, GCS `ifGenerationMatch`), in one request: false when the store answers
   * that it is another version or missing (412, or 404).
   */
  replaceBytes(
    location: ObjectLocation,
    bytes: Uint8Array,
    version: string,
    request: ObjectRequest & WriteAttributes,
  ): Promise<boolean>;
  /**
   * Deletes the object only if it is still `version`, in one request: false when the store
   * refuses (412). A 404 is true; after a false the adapter asks whether anything is there.
   */
  removeVersion(location: ObjectLocation, version: string, request: ObjectRequest): Promise<boolean>;
  /**
   * One page of keys below `prefix`. `startAfter` is a hint (only with no `token`): a
   * store that can start there (S3 `StartAfter`, GCS `startOffset`) may skip the keys at
   * or before it; the adapter filters them anyway, so a store without it ignores it.
   */
  listPage(bucket: ObjectLocation, page: ListPage, request: ObjectRequest): Promise<ObjectListing>;
  /** Deletes up to `deleteBatchSize` keys; resolves the keys that failed. A missing key counts as deleted. */
  deleteMany(bucket: ObjectLocation, keys: string[], request: ObjectRequest): Promise<string[]>;
  copyObject(source: ObjectLocation, destination: ObjectLocation, request: ObjectRequest): Promise<void>;
  /**
   * A URL for a plain GET (`read`) or PUT (`write`) of the object, signed locally with
   * the backend's credentials (options already checked). A credential kind that cannot
   * sign throws `ConfigError` saying which one can.
   */
  signUrl(location: ObjectLocation, options: SignedUrlOptions): Promise<string>;
  /** The contract's error for a raw SDK error (credentials redacted). */
  classify(error: unknown, path: string, operation: string): SavepointError;
}
