// Parsing and joining of object-store URIs (`s3://bucket/key`), shared by the
// S3, GCS and Azure backends so that every store rejects the same bad paths.
import { InvalidPathError } from './errors.js';

export interface ObjectLocation {
  /** Bucket or container. */
  bucket: string;
  /** Key without a leading `/`; `''` for the bucket root. A trailing `/` is kept off. */
  key: string;
}

/**
 * Rejects NUL bytes, backslashes and `.`/`..` segments, which would let a path escape
 * its folder. A backslash is refused outright: some stores and tools read it as `/`
 * (Azure stores `a\..\b` as `a/../b`), so a key holding one could mean two paths.
 */
export function checkKeySegments(path: string, key: string, backend: string): void {
  if (key.includes('\0')) throw new InvalidPathError(path, 'it contains a NUL byte', { backend });
  if (key.includes('\\')) {
    throw new InvalidPathError(path, 'it contains a backslash; object keys use "/" only (some stores turn "\\" into "/")', {
      backend,
    });
  }
  for (const segment of key.split('/')) {
    if (segment === '..' || segment === '.') {
      throw new InvalidPathError(path, `"${segment}" segments are not allowed (they could escape the root)`, { backend });
    }
  }
}

/**
 * Splits `scheme://bucket/key` into bucket and key. Accepts any of `schemes`.
 * Repeated slashes inside the key are refused: `a//b` has an empty name.
 */
export function parseObjectUri(path: string, schemes: readonly string[], backend: string): ObjectLocation {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidPathError(String(path), 'the path is empty', { backend });
  }
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)(?:\/(.*))?$/i.exec(path);
  if (!match || !schemes.includes((match[1] ?? '').toLowerCase())) {
    throw new InvalidPathError(path, `expected ${schemes.map((s) => `${s}://bucket/key`).join(' or ')}`, { backend });
  }
  const bucket = match[2] ?? '';
  if (bucket.length === 0) throw new InvalidPathError(path, 'the bucket name is empty', { backend });
  let key = match[3] ?? '';
  checkKeySegments(path, key, backend);
  while (key.endsWith('/')) key = key.slice(0, -1);
  if (key.split('/').some((segment, i, all) => segment === '' && !(all.length === 1 && i === 0))) {
    throw new InvalidPathError(path, 'it has an empty segment ("//")', { backend });
  }
  return { bucket, key };
}

/** The prefix that holds a folder's objects: `key/`, or `''` at the bucket root. */
export function dirPrefix(key: string): string {
  return key === '' ? '' : `${key}/`;
}

/** `joinPath` for object stores: one `/` between parts, no I/O; a `..` segment is refused. */
export function joinObjectPath(base: string, parts: readonly string[], backend = 'core'): string {
  for (const part of parts) {
    if (part.split('/').includes('..')) throw new InvalidPathError(part, '".." segments are not allowed', { backend });
  }
  let out = base;
  for (const part of parts) {
    if (part.length === 0) continue;
    out = `${out.replace(/\/+$/, '')}/${part.replace(/^\/+/, '')}`;
  }
  return out;
}

/** The last segment of a key or path, without a trailing `/`. */
export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
