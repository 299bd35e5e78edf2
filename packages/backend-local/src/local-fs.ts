// The local store's file-system helpers: error mapping, signals, read streams,
// folder checks and ranges. Kept apart from the backend class so that it reads as
// the contract's methods only.
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { callSignal, isTempName } from '@savepoint/core/kit';
import {
  AbortedError,
  BackendError,
  InvalidPathError,
  LOCAL_BACKEND_NAME,
  NotFoundError,
  PermissionDeniedError,
  TransientError,
} from '@savepoint/core/store';

const BACKEND_NAME = LOCAL_BACKEND_NAME;

/** Maps Node's fs error codes to the contract's errors: the only place that reads `err.code`. */
export function mapFsError(error: unknown, path: string, operation: string): Error {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const options = { backend: BACKEND_NAME, cause: error };
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EISDIR':
      return new NotFoundError(path, { ...options, message: `${operation}: no file at ${path}` });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new PermissionDeniedError(
        `${operation} ${path}: permission denied (${code}); check the folder's owner and mode`,
        options,
      );
    case 'EMFILE':
    case 'ENFILE':
    case 'EAGAIN':
    case 'EBUSY':
      return new TransientError(`${operation} ${path}: ${code}, try again`, options);
    default:
      return new BackendError(`${operation} ${path}: ${(error as Error)?.message ?? String(error)}`, options);
  }
}

export function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function checkSignal(signal: AbortSignal | undefined, path: string): void {
  if (signal?.aborted) throw new AbortedError(`aborted: ${path}`, { backend: BACKEND_NAME, cause: signal.reason });
}

/** A read stream that follows the caller's signal through a signal of its own, released when it closes. */
export function linkedReadStream(
  abs: string,
  options: { start?: number; end?: number; highWaterMark?: number },
  signal?: AbortSignal,
) {
  const link = signal ? callSignal(signal) : undefined;
  const stream = createReadStream(abs, { ...options, signal: link?.signal });
  if (link) stream.once('close', link.release);
  return stream;
}

/**
 * Object stores have no empty folders: a folder exists when some file lives below it.
 * Stops at the first file found; our temp files do not count.
 */
export async function hasFiles(abs: string): Promise<boolean> {
  const dir = await fs.opendir(abs);
  try {
    for await (const entry of dir) {
      if (isTempName(entry.name)) continue;
      if (!entry.isDirectory()) return true;
      if (await hasFiles(nodePath.join(abs, entry.name)).catch(() => false)) return true;
    }
    return false;
  } finally {
    await dir.close().catch(() => {});
  }
}

export function clampRange(range: { start: number; end?: number | undefined }, size: number, path: string) {
  const { start } = range;
  const end = range.end === undefined ? size : Math.min(range.end, size);
  if (!Number.isInteger(start) || start < 0 || (range.end !== undefined && (!Number.isInteger(range.end) || range.end < start))) {
    throw new InvalidPathError(path, `bad byte range ${JSON.stringify(range)}: need 0 <= start <= end`, {
      backend: BACKEND_NAME,
    });
  }
  return { start: Math.min(start, size), end: Math.max(Math.min(start, size), end) };
}

/**
 * Creates the folder a file is written into. A file where a folder must be (a work dir
 * given as the path of a regular file, or below one) is named, with what to do:
 * mkdir alone says `EEXIST` or `ENOTDIR` about a path the user never typed.
 */
export async function makeFolderFor(dir: string, path: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw error;
    const file = await fileInTheWay(dir);
    if (file === undefined) throw error;
    throw new InvalidPathError(
      path,
      `${file} is a file, not a folder, so nothing can be written inside it. Give a folder, or a path that does not exist yet (a work dir or outDir is a folder), or move ${file} away.`,
      { backend: BACKEND_NAME, cause: error },
    );
  }
}

/** The nearest existing path at or above `dir` when it is not a folder. */
async function fileInTheWay(dir: string): Promise<string | undefined> {
  for (let at = dir; ; at = nodePath.dirname(at)) {
    try {
      return (await fs.stat(at)).isDirectory() ? undefined : at;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || nodePath.dirname(at) === at) return undefined;
    }
  }
}

/**
 * Whether a rename or link of `temp` failed because `temp` itself was gone: another
 * process deleted this write's temp file before it was moved in (a job that took the
 * run's lease sweeps the unfinished writes it finds; see removeIncompleteWrites).
 */
export function tempVanished(error: unknown, temp: string): boolean {
  const e = error as NodeJS.ErrnoException | undefined;
  return e?.code === 'ENOENT' && e.path === temp;
}

export async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename durable. Some filesystems refuse to fsync a folder; the rename is still atomic.
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // best effort
  } finally {
    await handle?.close().catch(() => {});
  }
}
