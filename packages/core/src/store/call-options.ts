// The per-call options every backend checks the same way (user metadata, content
// type, list paging, signed URLs), and the one reading of metadata a store sends
// back: checked once here, so the four stores accept and refuse alike.
import type { ListOptions, ObjectMetadata, SignedUrlOptions, TransferProgress } from './contract.js';
import { configError } from './validate.js';

/**
 * Key names kept as written everywhere: S3 lowercases, Azure takes C# identifiers only,
 * and HTTP servers and proxies drop headers with an underscore (nginx by default, moto).
 */
const METADATA_KEY = /^[a-z][a-z0-9]{0,62}$/;
/** Printable ASCII: what an HTTP header carries on every store without encoding. */
const METADATA_VALUE = /^[\x20-\x7e]*$/;
const METADATA_MAX_KEYS = 32;
/** S3's limit on the user metadata of one object, keys and values together. */
export const METADATA_MAX_BYTES = 2048;
/** A MIME type as the stores keep it: `type/subtype` and parameters, printable ASCII. */
const CONTENT_TYPE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;
/** S3 and GCS refuse a V4 signature valid for longer. */
export const SIGNED_URL_MAX_MS = 7 * 24 * 60 * 60 * 1000;

const METADATA_ACCEPTED = `an object of at most ${METADATA_MAX_KEYS} keys matching ${METADATA_KEY} with printable ASCII string values, ${METADATA_MAX_BYTES} bytes in all`;

/** The caller's metadata, checked; a copy, so a later change by the caller cannot reach a retried request. */
export function checkMetadata(metadata: unknown, backend: string): ObjectMetadata | undefined {
  if (metadata === undefined) return undefined;
  const bad = () => configError('metadata', metadata, METADATA_ACCEPTED, { backend });
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw bad();
  const entries = Object.entries(metadata);
  if (entries.length > METADATA_MAX_KEYS) throw bad();
  let bytes = 0;
  for (const [key, value] of entries) {
    if (!METADATA_KEY.test(key)) throw configError(`metadata.${key}`, key, `a key matching ${METADATA_KEY}`, { backend });
    if (typeof value !== 'string' || !METADATA_VALUE.test(value))
      throw configError(`metadata.${key}`, value, 'a string of printable ASCII', { backend });
    bytes += key.length + value.length;
  }
  if (bytes > METADATA_MAX_BYTES) throw configError('metadata', `${bytes} bytes`, METADATA_ACCEPTED, { backend });
  return Object.fromEntries(entries);
}

export function checkContentType(contentType: unknown, backend: string): string | undefined {
  if (contentType === undefined) return undefined;
  if (typeof contentType !== 'string' || !CONTENT_TYPE.test(contentType))
    throw configError('contentType', contentType, 'a MIME type of printable ASCII, at most 255 characters', { backend });
  return contentType;
}

/**
 * Metadata as a store sent it back: hostile input. Only what `checkMetadata` would have
 * accepted is kept (a key another tool wrote in capitals or with a dash is dropped, never
 * thrown on), within the same bounds, in key order.
 */
export function readMetadata(raw: unknown): ObjectMetadata {
  const out: ObjectMetadata = {};
  if (typeof raw !== 'object' || raw === null) return out;
  let bytes = 0;
  let keys = 0;
  for (const key of Object.keys(raw).sort()) {
    const value = (raw as Record<string, unknown>)[key];
    if (!METADATA_KEY.test(key) || typeof value !== 'string' || !METADATA_VALUE.test(value)) continue;
    if (keys + 1 > METADATA_MAX_KEYS || bytes + key.length + value.length > METADATA_MAX_BYTES) break;
    out[key] = value;
    keys++;
    bytes += key.length + value.length;
  }
  return out;
}

/** A content type read back: kept only when it is one a put could have stored. */
export function readContentType(raw: unknown): string | undefined {
  return typeof raw === 'string' && CONTENT_TYPE.test(raw) ? raw : undefined;
}

export interface ListPaging {
  limit: number | undefined;
  /** Where the listing resumes, as a sort key: the entry's path, and a `/` after a folder's (see `listSortKey`). */
  startAfter: string | undefined;
}

/**
 * The order a listing keeps: by path, a folder sorting as its path followed by `/` (so
 * `b.txt` comes before the folder `b`), which is the order object stores list keys in, so
 * pages fetched one after another stay in one order.
 */
export function listSortKey(entry: { path: string; type: 'file' | 'dir' }): string {
  return entry.type === 'dir' ? `${entry.path.replace(/\/+$/, '')}/` : entry.path;
}

export const byListOrder = (a: { path: string; type: 'file' | 'dir' }, b: { path: string; type: 'file' | 'dir' }) => {
  const x = listSortKey(a);
  const y = listSortKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

export function checkListPaging(options: ListOptions, backend: string): ListPaging {
  const { limit, startAfter } = options;
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1))
    throw configError('limit', limit, 'a positive integer (entries at most)', { backend });
  const accepted = 'the last entry of the previous page (or its path; a folder path ends in "/")';
  if (startAfter === undefined) return { limit, startAfter: undefined };
  if (typeof startAfter === 'string') {
    if (startAfter === '') throw configError('startAfter', startAfter, accepted, { backend });
    return { limit, startAfter };
  }
  const entry = startAfter as { path?: unknown; type?: unknown };
  if (
    typeof entry !== 'object' ||
    entry === null ||
    typeof entry.path !== 'string' ||
    entry.path === '' ||
    (entry.type !== 'file' && entry.type !== 'dir')
  )
    throw configError('startAfter', startAfter, accepted, { backend });
  return { limit, startAfter: listSortKey(entry as { path: string; type: 'file' | 'dir' }) };
}

export function checkSignedUrlOptions(options: unknown, backend: string): SignedUrlOptions {
  const { action, expiresInMs } = (options ?? {}) as Partial<SignedUrlOptions>;
  if (action !== 'read' && action !== 'write') throw configError('action', action, '"read" or "write"', { backend });
  if (typeof expiresInMs !== 'number' || !Number.isInteger(expiresInMs) || expiresInMs < 1000 || expiresInMs > SIGNED_URL_MAX_MS)
    throw configError('expiresInMs', expiresInMs, `an integer of milliseconds from 1000 to ${SIGNED_URL_MAX_MS} (7 days)`, {
      backend,
    });
  return { action, expiresInMs };
}

export function checkProgressListener(onProgress: unknown, backend: string): ((progress: TransferProgress) => void) | undefined {
  if (onProgress === undefined || typeof onProgress === 'function')
    return onProgress as ((progress: TransferProgress) => void) | undefined;
  throw configError('onProgress', onProgress, 'a function called with { bytes, totalBytes }', { backend });
}
