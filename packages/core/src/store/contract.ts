// The store contract. Every backend (local disk, S3, GCS, Azure, third-party)
// implements this interface, and the policy engine uses nothing else, so a rule
// written once behaves the same on every store. `@savepoint/backend-test-suite`
// checks each rule below; a backend passes it or it is not a savepoint backend.

/** Bytes to store: a whole buffer, a string (written as UTF-8), or a stream of unknown length. */
export type PutBody = Uint8Array | string | AsyncIterable<Uint8Array>;

/**
 * A half-open byte range: `start` inclusive, `end` exclusive (defaults to the end of the
 * object). Clamped to the object: a range at or past its end reads no bytes (the object
 * must still exist).
 */
export interface ByteRange {
  start: number;
  end?: number | undefined;
}

export interface SignalOptions {
  /** Aborting rejects the call with `AbortedError`; an aborted `put` leaves nothing visible. */
  signal?: AbortSignal | undefined;
}

/** How far a transfer is: bytes moved so far, and the whole when it is known. */
export interface TransferProgress {
  bytes: number;
  totalBytes?: number | undefined;
}

export interface ProgressOptions {
  /**
   * Called as bytes move (an upload's parts as the store acknowledges them, where the
   * SDK reports it: lib-storage's `httpUploadProgress`, each staged block or part; a
   * read's chunks as they arrive), never more often than once per part or chunk, and
   * once at the end with the whole. A listener that throws fails the call.
   */
  onProgress?: ((progress: TransferProgress) => void) | undefined;
}

/**
 * User metadata: at most 32 keys of `[a-z_][a-z0-9_]*` (the names S3, GCS and Azure all
 * keep as written) with printable ASCII values, 2 KiB in all (S3's limit). Anything else
 * fails the put with `ConfigError` before a request is made.
 */
export type ObjectMetadata = Record<string, string>;

export interface PutOptions extends SignalOptions, ProgressOptions {
  /** Stored with the object and returned by `stat` (`capabilities.metadata`). */
  contentType?: string | undefined;
  /** Stored with the object and returned by `stat` (`capabilities.metadata`; see `ObjectMetadata`). */
  metadata?: ObjectMetadata | undefined;
  /**
   * Compare-and-swap: replace the object only if it is still this version (what `stat`
   * returned). Otherwise the put rejects with `PreconditionFailedError` and writes
   * nothing, also when the object is missing. Of concurrent puts with the same
   * `ifMatch`, at most one succeeds. One request: the body must fit in one (the store's
   * single-request size; a longer stream is refused with `ConfigError`). A request
   * retried after a lost answer can report a failure for a write that landed: read
   * the object back to tell.
   */
  ifMatch?: string | undefined;
  /**
   * The body's chunks stay as they are until the put resolves (none is a buffer the
   * producer reuses): the store may send views of them instead of copying them into its
   * part buffers. Checkpoint saves set it (their chunks are views of the tensors, which
   * cannot change during a save: their hash is taken first). Without it, each chunk is
   * taken to be valid only until the next is read.
   */
  stableChunks?: boolean | undefined;
}

export interface RemoveOptions extends SignalOptions {
  /**
   * Delete only if the object is still this version; another version is left alone
   * and the call rejects with `PreconditionFailedError`. A missing object succeeds
   * (nothing of that version is left).
   */
  ifMatch?: string | undefined;
}

export interface GetOptions extends SignalOptions, ProgressOptions {
  range?: ByteRange | undefined;
}

export interface CopyOptions extends SignalOptions, ProgressOptions {}

export interface ListOptions extends SignalOptions {
  /** List every file below the folder instead of one level (files and sub-folders). */
  recursive?: boolean | undefined;
  /** At most this many entries (a positive integer). */
  limit?: number | undefined;
  /**
   * Only entries after this one in the listing's order: the last entry of the previous
   * page (or its path; a folder's path with a `/` after it). With `limit`, pages through a
   * folder of any size; a page is shorter than `limit` only at the end of the listing.
   */
  startAfter?: string | Pick<ListEntry, 'path' | 'type'> | undefined;
}

export interface SignedUrlOptions {
  /** `read`: a plain GET of the object. `write`: a plain PUT of the whole body. */
  action: 'read' | 'write';
  /** How long the URL works: a positive integer of milliseconds, at most 7 days (S3's and GCS's limit). */
  expiresInMs: number;
}

/**
 * What a backend declares about itself; the contract suite reads it, so a store is
 * tested at its own sizes and never for what it says it cannot do.
 */
export interface StoreCapabilities {
  /** `signedUrl` works; when false it rejects with `UnsupportedError`. */
  signedUrl: boolean;
  /** `put` keeps `contentType` and `metadata` and `stat` returns them; when false, a put with `metadata` rejects with `UnsupportedError`. */
  metadata: boolean;
  /**
   * Bytes of one part (block, chunk) of a streamed upload, and of the largest body sent
   * in one request; undefined on a store that writes a stream whole (local disk). The
   * suite's torn-write checks write several parts of this size.
   */
  partSizeBytes: number | undefined;
}

export interface RmtreeOptions extends SignalOptions {
  /**
   * `rmtree` of a store's root (a bucket, a container, `/`) or of an empty path is
   * refused with `InvalidPathError` unless this is set.
   */
  allowRoot?: boolean | undefined;
}

export interface ListEntry {
  /** Full path, usable with every other method (`s3://bucket/run/epoch_1.safetensors`). */
  path: string;
  /** Last path segment, without a trailing `/`. */
  name: string;
  type: 'file' | 'dir';
  /** Bytes, for files. */
  size?: number | undefined;
  lastModified?: Date | undefined;
}

export interface ObjectStat {
  path: string;
  size: number;
  lastModified?: Date | undefined;
  /**
   * Opaque, and different after every replace with other bytes (S3 and Azure ETag, GCS
   * generation; on local disk it changes on every write). What `ifMatch` compares.
   */
  version: string;
  /** What `put` stored (`capabilities.metadata`); undefined when none was given. */
  contentType?: string | undefined;
  /** What `put` stored, checked as `ObjectMetadata` when read back; `{}` when none. */
  metadata?: ObjectMetadata | undefined;
}

/**
 * A store of bytes addressed by path. Paths are full URIs for object stores
 * (`s3://bucket/key`, `gs://bucket/key`, `az://container/key`) and plain paths or
 * `file://` URIs on local disk.
 *
 * Rules that hold on every store:
 * - A directory on an object store is a key prefix ending in `/`. `isDir(p)` is true
 *   when some key starts with `p/`; there are no empty directories.
 * - Not found: `get`, `getStream` and `stat` reject with `NotFoundError`; `exists`,
 *   `isFile` and `isDir` resolve `false`; `remove` of a missing file and `rmtree` of a
 *   missing folder succeed.
 * - A `put` is all or nothing: a reader sees the old object or the whole new one, never
 *   a part. A failed or aborted `put` leaves nothing visible.
 * - Compare-and-swap: `stat` gives the object's `version`; `put` and `remove` with
 *   `ifMatch` act only on that version, in one conditional request (S3 and Azure
 *   `If-Match`, GCS `ifGenerationMatch`, a version claim on local disk), and reject with
 *   `PreconditionFailedError` otherwise. Of concurrent writers from one version, at most one wins.
 * - A path that is empty, holds a NUL byte or has a `..` segment is rejected with
 *   `InvalidPathError` before any request is made.
 * - Errors are `SavepointError`s; transient ones (throttling, 5xx, resets) were already
 *   retried by the backend's retry policy before they reach the caller.
 */
export interface StorageBackend {
  /** Short name used in messages and the registry: `local`, `s3`, `gcs`, `azure`. */
  readonly name: string;
  /** What this store can do, and its part size (see `StoreCapabilities`). */
  readonly capabilities: StoreCapabilities;

  /** Joins path segments with the store's separator (`/` on object stores). Does no I/O. */
  joinPath(base: string, ...parts: string[]): string;

  /** True when `path` is a file or a directory. */
  exists(path: string, options?: SignalOptions): Promise<boolean>;
  /** True when an object (file) is stored exactly at `path`. */
  isFile(path: string, options?: SignalOptions): Promise<boolean>;
  /** True when some object lives below `path/`. */
  isDir(path: string, options?: SignalOptions): Promise<boolean>;
  /** Size, modification time and version of the file at `path`; `NotFoundError` when missing. */
  stat(path: string, options?: SignalOptions): Promise<ObjectStat>;

  /** Writes `body` at `path`, replacing any object there, atomically; with `ifMatch`, only over that version. */
  put(path: string, body: PutBody, options?: PutOptions): Promise<void>;
  /**
   * Writes `body` at `path` only if nothing is stored there, in one conditional request
   * (S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`, Azure `If-None-Match: *`, an
   * exclusive link on local disk). Resolves `true` when it created the object and
   * `false` when one was already there; of two concurrent callers exactly one gets `true`.
   */
  putIfAbsent(path: string, body: Uint8Array | string, options?: PutOptions): Promise<boolean>;
  /** Reads the whole object, or `range` of it. */
  get(path: string, options?: GetOptions): Promise<Uint8Array>;
  /** Streams the object (or `range` of it) with bounded memory. Rejects before the first chunk when missing. */
  getStream(path: string, options?: GetOptions): Promise<AsyncIterable<Uint8Array>>;

  /**
   * Lists a folder: one level (files and sub-folders) or, with `recursive`, every file
   * below it. Pages by itself; ordered by path, a folder sorting as its path followed by `/`
   * (`b.txt` before the folder `b`: the order object stores keep). A missing folder lists nothing.
   */
  list(path: string, options?: ListOptions): AsyncIterable<ListEntry>;

  /**
   * A URL that lets a plain HTTP client read (GET) or write (PUT) the object at `path`
   * without credentials, for `expiresInMs`. Rejects with `UnsupportedError` where
   * `capabilities.signedUrl` is false. The URL is a credential: never log it.
   */
  signedUrl(path: string, options: SignedUrlOptions): Promise<string>;

  /** Deletes the file at `path`; succeeds when it is already gone. Never touches a folder. With `ifMatch`, only that version. */
  remove(path: string, options?: RemoveOptions): Promise<void>;
  /**
   * Deletes exactly the objects below `path/`: `run1` never touches `run10/...` or
   * `run1.txt`. Succeeds on a missing folder. Raises `IncompleteDeleteError` when any
   * object survives its retries.
   */
  rmtree(path: string, options?: RmtreeOptions): Promise<void>;
  /** Copies one file within this store. */
  copy(source: string, destination: string, options?: CopyOptions): Promise<void>;
  /**
   * Moves one file within this store: the destination gets the whole object (as `copy`),
   * then the source is gone. Object stores copy then delete, so a failure between the two
   * leaves both (never neither); a missing source is `NotFoundError` and writes nothing.
   */
  move(source: string, destination: string, options?: CopyOptions): Promise<void>;

  /**
   * Optional. Deletes what killed writes left below `path` that no listing shows
   * (local temp files, S3 unfinished multipart uploads). Called on resume while the
   * run's lease is held, so no live writer of this run can own them. Returns how many.
   */
  removeIncompleteWrites?(path: string, options?: SignalOptions): Promise<number>;

  /** Releases sockets and clients the backend created itself. Safe to call twice. */
  close?(): Promise<void>;
}
