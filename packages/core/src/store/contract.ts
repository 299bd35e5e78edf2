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

export interface PutOptions extends SignalOptions {
  contentType?: string | undefined;
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
}

export interface RemoveOptions extends SignalOptions {
  /**
   * Delete only if the object is still this version; another version is left alone
   * and the call rejects with `PreconditionFailedError`. A missing object succeeds
   * (nothing of that version is left).
   */
  ifMatch?: string | undefined;
}

export interface GetOptions extends SignalOptions {
  range?: ByteRange | undefined;
}

export interface ListOptions extends SignalOptions {
  /** List every file below the folder instead of one level (files and sub-folders). */
  recursive?: boolean | undefined;
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
   * below it. Pages by itself; order is lexicographic by path. A missing folder lists nothing.
   */
  list(path: string, options?: ListOptions): AsyncIterable<ListEntry>;

  /** Deletes the file at `path`; succeeds when it is already gone. Never touches a folder. With `ifMatch`, only that version. */
  remove(path: string, options?: RemoveOptions): Promise<void>;
  /**
   * Deletes exactly the objects below `path/`: `run1` never touches `run10/...` or
   * `run1.txt`. Succeeds on a missing folder. Raises `IncompleteDeleteError` when any
   * object survives its retries.
   */
  rmtree(path: string, options?: RmtreeOptions): Promise<void>;
  /** Copies one file within this store. */
  copy(source: string, destination: string, options?: SignalOptions): Promise<void>;

  /**
   * Optional. Deletes what killed writes left below `path` that no listing shows
   * (local temp files, S3 unfinished multipart uploads). Called on resume while the
   * run's lease is held, so no live writer of this run can own them. Returns how many.
   */
  removeIncompleteWrites?(path: string, options?: SignalOptions): Promise<number>;

  /** Releases sockets and clients the backend created itself. Safe to call twice. */
  close?(): Promise<void>;
}
