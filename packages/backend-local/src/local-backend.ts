// The local-disk store. Writes are atomic (temp file in the same folder, fsync,
// rename, fsync of the folder) so that a crash never leaves a half-written
// checkpoint or pointer under its real name.
import { randomBytes } from 'node:crypto';
import { type Dirent, constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bodyChunks,
  checkKnownKeys,
  checkString,
  countedChunks,
  isTempName,
  TEMP_TOKEN_LENGTH,
  tempNameFor,
} from '@savepoint/core/kit';
import {
  AbortedError,
  BackendError,
  type CopyOptions,
  checkListPaging,
  checkProgressListener,
  checkSignedUrlOptions,
  type GetOptions,
  InvalidPathError,
  type ListEntry,
  type ListOptions,
  LOCAL_BACKEND_NAME,
  listSortKey,
  NotFoundError,
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
import { describeRefusal, fileVersion, isClaimName, isDeadClaim, swapIfMatch } from './local-cas.js';
import {
  checkSignal,
  clampRange,
  fsyncDir,
  hasFiles,
  isNotFound,
  linkedReadStream,
  makeFolderFor,
  mapFsError,
  tempVanished,
} from './local-fs.js';

export const BACKEND_NAME = LOCAL_BACKEND_NAME;
export const LOCAL_OPTION_NAMES = ['root'];

export interface LocalBackendOptions {
  /**
   * Optional folder that every path must stay inside. Relative paths resolve against
   * it. Without it, relative paths resolve against the working directory.
   */
  root?: string;
}

/** Writes tried when another process deletes the temp file before it is moved in (only for a body that can be sent again). */
const TEMP_ATTEMPTS = 3;
/** The most bytes one read call asks for (Node reads at most 2 GiB per call). */
const READ_PART_BYTES = 1024 * 1024 * 1024;

/** A write's own temp file vanished before it was moved in (see tempVanished): nothing was written. */
class TempVanished extends Error {
  constructor(
    readonly temp: string,
    override readonly cause: unknown,
  ) {
    super(`temp file ${temp} vanished`);
  }
}

/** A disk has no HTTP server to sign for and no place for metadata beside a file's bytes. */
const LOCAL_CAPABILITIES: StoreCapabilities = Object.freeze({ signedUrl: false, metadata: false, partSizeBytes: undefined });

export class LocalBackend implements StorageBackend {
  readonly name = BACKEND_NAME;
  readonly capabilities = LOCAL_CAPABILITIES;
  readonly #root: string | undefined;

  constructor(options: LocalBackendOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidPathError(String(options), 'LocalBackend options must be an object');
    }
    checkKnownKeys(options as Record<string, unknown>, LOCAL_OPTION_NAMES, 'local backend', { backend: BACKEND_NAME });
    this.#root =
      options.root === undefined
        ? undefined
        : nodePath.resolve(checkString(options.root, 'root', 'a folder path', { backend: BACKEND_NAME }));
  }

  /** Resolves a plain path or `file://` URI to an absolute path, refusing escapes. */
  #resolve(path: string): string {
    if (typeof path !== 'string' || path.length === 0) {
      throw new InvalidPathError(String(path), 'the path is empty', { backend: BACKEND_NAME });
    }
    if (path.includes('\0')) throw new InvalidPathError(path, 'it contains a NUL byte', { backend: BACKEND_NAME });
    let fsPath = path;
    if (/^file:\/\//i.test(path)) {
      try {
        fsPath = fileURLToPath(path);
      } catch (error) {
        throw new InvalidPathError(path, `not a valid file:// URL (${(error as Error).message})`, { backend: BACKEND_NAME });
      }
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
      throw new InvalidPathError(path, 'the local backend serves plain paths and file:// URLs', { backend: BACKEND_NAME });
    }
    if (fsPath.split(/[\\/]/).includes('..')) {
      throw new InvalidPathError(path, '".." segments are not allowed (they could escape the root)', { backend: BACKEND_NAME });
    }
    const resolved = this.#root ? nodePath.resolve(this.#root, fsPath) : nodePath.resolve(fsPath);
    if (this.#root && resolved !== this.#root && !resolved.startsWith(this.#root + nodePath.sep)) {
      throw new InvalidPathError(path, `it is outside the backend's root ${this.#root}`, { backend: BACKEND_NAME });
    }
    return resolved;
  }

  joinPath(base: string, ...parts: string[]): string {
    for (const part of parts) {
      if (part.split(/[\\/]/).includes('..')) {
        throw new InvalidPathError(part, '".." segments are not allowed (they could escape the root)', { backend: BACKEND_NAME });
      }
    }
    if (/^file:\/\//i.test(base)) {
      return parts.reduce((acc, part) => (part ? `${acc.replace(/\/+$/, '')}/${part.replace(/^\/+/, '')}` : acc), base);
    }
    return nodePath.join(base, ...parts);
  }

  async exists(path: string, options: SignalOptions = {}): Promise<boolean> {
    return (await this.isFile(path, options)) || (await this.isDir(path, options));
  }

  async isFile(path: string, options: SignalOptions = {}): Promise<boolean> {
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    try {
      return (await fs.stat(abs)).isFile();
    } catch (error) {
      if (isNotFound(error)) return false;
      throw mapFsError(error, path, 'isFile');
    }
  }

  async isDir(path: string, options: SignalOptions = {}): Promise<boolean> {
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    try {
      return await hasFiles(abs);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw mapFsError(error, path, 'isDir');
    }
  }

  async stat(path: string, options: SignalOptions = {}): Promise<ObjectStat> {
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    try {
      const st = await fs.stat(abs, { bigint: true });
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      return { path, size: Number(st.size), lastModified: st.mtime, version: fileVersion(st) };
    } catch (error) {
      throw mapFsError(error, path, 'stat');
    }
  }

  async put(path: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    this.#refuseMetadata(path, options);
    await this.#write(path, body, options, options.ifMatch === undefined ? 'replace' : { ifMatch: options.ifMatch });
  }

  async putIfAbsent(path: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    this.#refuseMetadata(path, options);
    return this.#write(path, body, options, 'create');
  }

  /** Metadata that would be dropped is refused; a content type is a hint a file system never kept, so it is ignored. */
  #refuseMetadata(path: string, options: PutOptions): void {
    if (options.metadata !== undefined)
      throw new UnsupportedError('put', `put ${path}: the local store keeps no metadata (capabilities.metadata is false)`, {
        backend: BACKEND_NAME,
      });
  }

  /**
   * Writes a temp file in the target's folder, fsyncs it, then moves it in: `rename`
   * replaces (put), `link` fails with EEXIST when the name is taken (putIfAbsent), so
   * of two racing creators exactly one wins and a reader never sees a partial file.
   * With `ifMatch` the rename happens under the version's claim (local-cas.ts).
   */
  async #write(
    path: string,
    body: PutBody,
    options: PutOptions,
    mode: 'replace' | 'create' | { ifMatch: string },
  ): Promise<boolean> {
    // A write whose temp file another process deleted before it was moved in changed
    // nothing, so a body that can be sent again is: the loser of a race for a run's lease
    // then finds the winner's lease and is told who holds it, not that a file is missing.
    const replayable = typeof body === 'string' || body instanceof Uint8Array;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#writeOnce(path, body, options, mode);
      } catch (error) {
        if (!(error instanceof TempVanished)) throw error;
        if (replayable && attempt < TEMP_ATTEMPTS) continue;
        throw new BackendError(
          `put ${path}: the temp file of this write (${error.temp}) was deleted by another process before it was moved in${replayable ? `, ${TEMP_ATTEMPTS} times` : ''}, so nothing was written. Another job is clearing this folder's unfinished writes: usually one that just took the run's lease. Make sure only one job writes this folder, then try again.`,
          { backend: BACKEND_NAME, cause: error.cause },
        );
      }
    }
  }

  async #writeOnce(
    path: string,
    body: PutBody,
    options: PutOptions,
    mode: 'replace' | 'create' | { ifMatch: string },
  ): Promise<boolean> {
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    const dir = nodePath.dirname(abs);
    const temp = nodePath.join(dir, tempNameFor(nodePath.basename(abs), randomBytes(TEMP_TOKEN_LENGTH / 2).toString('hex')));
    const onProgress = checkProgressListener(options.onProgress, BACKEND_NAME);
    try {
      await makeFolderFor(dir, path);
      const handle = await fs.open(temp, 'wx');
      let written = 0;
      try {
        for await (const chunk of bodyChunks(body)) {
          checkSignal(options.signal, path);
          let offset = 0;
          while (offset < chunk.byteLength) {
            const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
            offset += bytesWritten;
          }
          written += chunk.byteLength;
          onProgress?.({ bytes: written });
        }
        checkSignal(options.signal, path);
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (mode === 'replace') await fs.rename(temp, abs);
      else if (typeof mode === 'object') {
        const outcome = await swapIfMatch(abs, mode.ifMatch, () => fs.rename(temp, abs));
        if (!outcome.done) {
          await fs.rm(temp, { force: true });
          throw new PreconditionFailedError(path, mode.ifMatch, {
            backend: BACKEND_NAME,
            message: describeRefusal('put', path, mode.ifMatch, outcome),
          });
        }
      } else {
        try {
          await fs.link(temp, abs);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
            await fs.rm(temp, { force: true });
            return false;
          }
          throw error;
        }
        await fs.rm(temp, { force: true });
      }
      await fsyncDir(dir);
      onProgress?.({ bytes: written, totalBytes: written });
      return true;
    } catch (error) {
      await fs.rm(temp, { force: true }).catch(() => {});
      if (error instanceof AbortedError || error instanceof PreconditionFailedError || error instanceof InvalidPathError) {
        throw error;
      }
      if (options.signal?.aborted) throw new AbortedError(`aborted: ${path}`, { backend: BACKEND_NAME, cause: error });
      if (tempVanished(error, temp)) throw new TempVanished(temp, error);
      throw error instanceof NotFoundError || !(error as NodeJS.ErrnoException)?.code ? error : mapFsError(error, path, 'put');
    }
  }

  async get(path: string, options: GetOptions = {}): Promise<Uint8Array> {
    const onProgress = checkProgressListener(options.onProgress, BACKEND_NAME);
    const bytes = await this.#read(path, options);
    onProgress?.({ bytes: bytes.byteLength, totalBytes: bytes.byteLength });
    return bytes;
  }

  async #read(path: string, options: GetOptions): Promise<Uint8Array> {
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    try {
      // One handle for whole files too: fs.readFile refuses files over 2 GiB.
      const handle = await fs.open(abs, 'r');
      try {
        const st = await handle.stat();
        if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
        const { start, end } = clampRange(options.range ?? { start: 0 }, st.size, path);
        const out = new Uint8Array(end - start);
        let offset = 0;
        while (offset < out.byteLength) {
          checkSignal(options.signal, path);
          // One read call takes at most 2 GiB (Node's limit): bigger files are read in parts.
          const length = Math.min(out.byteLength - offset, READ_PART_BYTES);
          const { bytesRead } = await handle.read(out, offset, length, start + offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
        }
        return offset === out.byteLength ? out : out.subarray(0, offset);
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (error instanceof InvalidPathError) throw error;
      if (options.signal?.aborted) throw new AbortedError(`aborted: ${path}`, { backend: BACKEND_NAME, cause: error });
      throw mapFsError(error, path, 'get');
    }
  }

  async getStream(path: string, options: GetOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const onProgress = checkProgressListener(options.onProgress, BACKEND_NAME);
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    let size: number;
    try {
      const st = await fs.stat(abs);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      size = st.size;
    } catch (error) {
      throw mapFsError(error, path, 'getStream');
    }
    const { start, end } = options.range ? clampRange(options.range, size, path) : { start: 0, end: size };
    if (end <= start) return countedChunks((async function* () {})(), onProgress, 0);
    // createReadStream's `end` is inclusive.
    return countedChunks(
      linkedReadStream(abs, { start, end: end - 1, highWaterMark: 1 << 20 }, options.signal),
      onProgress,
      end - start,
    );
  }

  async *list(path: string, options: ListOptions = {}): AsyncIterable<ListEntry> {
    const { limit, startAfter } = checkListPaging(options, BACKEND_NAME);
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    // The walk yields in the listing order (see #walk), so a page resumes after the last one given.
    let left = limit ?? Number.POSITIVE_INFINITY;
    for await (const entry of this.#walk(abs, path.replace(/[\\/]+$/, ''), options)) {
      if (startAfter !== undefined && listSortKey(entry) <= startAfter) continue;
      if (left-- <= 0) return;
      yield entry;
    }
  }

  async *#walk(abs: string, display: string, options: ListOptions): AsyncIterable<ListEntry> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(abs, { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error)) return;
      throw mapFsError(error, display, 'list');
    }
    // The contract's order: a folder `a` sorts as `a/`, after `a.txt` (as object stores list keys).
    const sortName = (entry: Dirent) => (entry.isDirectory() ? `${entry.name}/` : entry.name);
    entries.sort((a, b) => (sortName(a) < sortName(b) ? -1 : sortName(a) > sortName(b) ? 1 : 0));
    for (const entry of entries) {
      checkSignal(options.signal, display);
      if (isTempName(entry.name)) continue;
      const childAbs = nodePath.join(abs, entry.name);
      const childPath = this.joinPath(display, entry.name);
      if (entry.isDirectory()) {
        if (options.recursive) yield* this.#walk(childAbs, childPath, options);
        // A folder with no file below it (left by an interrupted rmtree) does not exist on an object store either.
        else if (await hasFiles(childAbs).catch(() => false)) yield { path: childPath, name: entry.name, type: 'dir' };
      } else if (entry.isFile()) {
        const st = await fs.stat(childAbs).catch(() => undefined);
        if (st) yield { path: childPath, name: entry.name, type: 'file', size: st.size, lastModified: st.mtime };
      }
    }
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    const { ifMatch } = options;
    if (ifMatch !== undefined) {
      let outcome: Awaited<ReturnType<typeof swapIfMatch>>;
      try {
        outcome = await swapIfMatch(abs, ifMatch, () => fs.unlink(abs));
      } catch (error) {
        throw mapFsError(error, path, 'remove');
      }
      // Missing counts as removed, as in a plain remove; another version is refused.
      if (outcome.done || outcome.reason === 'missing') return;
      throw new PreconditionFailedError(path, ifMatch, {
        backend: BACKEND_NAME,
        message: describeRefusal('remove', path, ifMatch, outcome),
      });
    }
    try {
      const st = await fs.lstat(abs);
      if (st.isDirectory()) return; // remove never touches a folder; rmtree does
      await fs.unlink(abs);
    } catch (error) {
      if (isNotFound(error)) return;
      throw mapFsError(error, path, 'remove');
    }
  }

  async rmtree(path: string, options: RmtreeOptions = {}): Promise<void> {
    const abs = this.#resolve(path);
    checkSignal(options.signal, path);
    const isRoot = abs === nodePath.parse(abs).root || abs === this.#root;
    if (isRoot && !options.allowRoot) {
      throw new InvalidPathError(path, 'refusing to rmtree the root of the store; pass { allowRoot: true } if you mean it', {
        backend: BACKEND_NAME,
      });
    }
    try {
      const st = await fs.lstat(abs);
      if (!st.isDirectory()) return; // rmtree deletes what is under `path/`, never a file named `path`
      await fs.rm(abs, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      if (isNotFound(error)) return;
      throw mapFsError(error, path, 'rmtree');
    }
  }

  /** Deletes the temp files of writes a killed process never finished, below `path`. */
  async removeIncompleteWrites(path: string, options: SignalOptions = {}): Promise<number> {
    const abs = this.#resolve(path);
    let removed = 0;
    const sweep = async (folder: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(folder, { withFileTypes: true });
      } catch (error) {
        if (isNotFound(error)) return;
        throw mapFsError(error, path, 'removeIncompleteWrites');
      }
      for (const entry of entries) {
        checkSignal(options.signal, path);
        const child = nodePath.join(folder, entry.name);
        if (entry.isDirectory()) await sweep(child);
        else if (entry.isFile() && isTempName(entry.name)) {
          // A version claim of a live writer keeps other writers of that version out: only a dead one's goes.
          if (isClaimName(entry.name) && !(await isDeadClaim(child))) continue;
          await fs.rm(child, { force: true });
          removed++;
        }
      }
    };
    await sweep(abs);
    return removed;
  }

  /**
   * A copy made by the filesystem, never through this process's memory: `copyFile` into a
   * temp file (a copy-on-write clone where the filesystem offers one: btrfs, XFS, APFS),
   * fsynced, then renamed in, so a reader never sees a partial copy (as `put`).
   */
  async signedUrl(path: string, options: SignedUrlOptions): Promise<string> {
    checkSignedUrlOptions(options, BACKEND_NAME);
    this.#resolve(path);
    throw new UnsupportedError(
      'signedUrl',
      `signedUrl ${path}: a local disk has no server to sign a URL for (capabilities.signedUrl is false); serve the file yourself or use an object store`,
      { backend: BACKEND_NAME },
    );
  }

  /** A rename: atomic on one file system, so a reader sees the file at one name or the other. */
  async move(source: string, destination: string, options: CopyOptions = {}): Promise<void> {
    const onProgress = checkProgressListener(options.onProgress, BACKEND_NAME);
    const src = this.#resolve(source);
    const abs = this.#resolve(destination);
    checkSignal(options.signal, source);
    let size: number;
    try {
      const st = await fs.stat(src);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      size = st.size;
    } catch (error) {
      throw mapFsError(error, source, 'move');
    }
    if (src === abs) return;
    const dir = nodePath.dirname(abs);
    try {
      await makeFolderFor(dir, destination);
      await fs.rename(src, abs);
      await fsyncDir(dir);
      await fsyncDir(nodePath.dirname(src));
    } catch (error) {
      if (error instanceof InvalidPathError) throw error;
      throw mapFsError(error, destination, 'move');
    }
    onProgress?.({ bytes: size, totalBytes: size });
  }

  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<void> {
    const onProgress = checkProgressListener(options.onProgress, BACKEND_NAME);
    const src = this.#resolve(source);
    const abs = this.#resolve(destination);
    checkSignal(options.signal, source);
    try {
      if (!(await fs.stat(src)).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    } catch (error) {
      throw mapFsError(error, source, 'copy');
    }
    const dir = nodePath.dirname(abs);
    const temp = nodePath.join(dir, tempNameFor(nodePath.basename(abs), randomBytes(TEMP_TOKEN_LENGTH / 2).toString('hex')));
    try {
      await makeFolderFor(dir, destination);
      await fs.copyFile(src, temp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
      const handle = await fs.open(temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      checkSignal(options.signal, source);
      await fs.rename(temp, abs);
      await fsyncDir(dir);
      if (onProgress) {
        const { size } = await fs.stat(abs);
        onProgress({ bytes: size, totalBytes: size });
      }
    } catch (error) {
      await fs.rm(temp, { force: true }).catch(() => {});
      if (error instanceof AbortedError || error instanceof InvalidPathError) throw error;
      throw mapFsError(error, (error as NodeJS.ErrnoException).path === src ? source : destination, 'copy');
    }
  }
}

/** Registers this backend for plain paths and `file://` URIs. Idempotent. */
export function registerLocalBackend(): void {
  // The source lets a worker thread (the lease renewer) register it again in its own registry.
  registerBackend(BACKEND_NAME, LOCAL_REGISTRATION, {
    replace: true,
    source: { module: import.meta.url, register: 'registerLocalBackend' },
  });
}

const LOCAL_REGISTRATION = {
  schemes: ['file'],
  create: (args: Record<string, unknown>) => new LocalBackend(args as LocalBackendOptions),
};
