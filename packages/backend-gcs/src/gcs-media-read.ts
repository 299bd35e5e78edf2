// Reads an object's bytes with one GET of the JSON API's media endpoint: the client
// authorises the request (its credentials, its custom-endpoint rules), Node's fetch
// carries it. Why not File#createReadStream: in @google-cloud/storage 8.x every read
// stream gets 11 error and close listeners (teeny-request piping node-fetch 3's body),
// so Node printed a MaxListenersExceededWarning pair for every read
// (googleapis/google-cloud-node#9185). Retries, resumption and timeouts stay with
// core's adapter, which hands us the range still missing and an abort signal.
import type { Storage } from '@google-cloud/storage';
import {
  type ObjectLocation,
  type ObjectRead,
  type ReadRange,
  rangeHeader,
  sizeFromContentRange,
  untilAborted,
} from '@savepoint/core/kit';
import { crc32cHasher } from './crc32c.js';

type RequestOptions = { uri: string; qs: Record<string, string>; headers: Record<string, string> };

/** The client's own authorisation of a request, without sending it. */
function authorize(storage: Storage, request: RequestOptions): Promise<RequestOptions> {
  return new Promise((resolve, reject) => {
    storage.makeAuthenticatedRequest(request, {
      onAuthenticated: (error, authorized) => (error ? reject(error) : resolve((authorized ?? request) as RequestOptions)),
    });
  });
}

/** An HTTP failure in the shape the error classifier reads (`code` = status). */
async function httpError(response: Response, what: string): Promise<Error> {
  const text = await response.text().catch(() => '');
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // Not JSON: the text as it came.
  }
  return Object.assign(new Error(`${what}: ${message || response.statusText}`), { code: response.status });
}

/**
 * One GET of the media endpoint: the whole object (200, CRC32C-checked) or a range (206;
 * a 200 to a ranged request is refused). Undefined for a range past the end (416).
 */
export async function readMedia(
  storage: Storage,
  location: ObjectLocation,
  range: ReadRange,
  signal: AbortSignal,
): Promise<ObjectRead | undefined> {
  const ranged = rangeHeader(range);
  // Authorising may fetch a token (a request of its own, which takes no signal).
  const request = await untilAborted(
    authorize(storage, {
      uri: `${storage.baseUrl}/b/${encodeURIComponent(location.bucket)}/o/${encodeURIComponent(location.key)}`,
      qs: { alt: 'media', ...(range.version ? { generation: range.version } : {}) },
      headers: ranged ? { Range: ranged } : {},
    }),
    signal,
  );
  const url = new URL(request.uri);
  for (const [name, value] of Object.entries(request.qs ?? {})) url.searchParams.set(name, String(value));
  const response = await fetch(url, { headers: request.headers, signal });
  if (response.status === 416) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) throw await httpError(response, `read ${location.key}`);
  const { headers } = response;
  // A ranged read's size comes from Content-Range alone (a 200 from a server that ignored
  // the Range has none, and the adapter refuses it); a whole read's is the stored size
  // (with decompressive transcoding, Content-Length is not the object's).
  const stored = headers.get('x-goog-stored-content-length') ?? headers.get('content-length');
  const size = ranged ? sizeFromContentRange(headers.get('content-range')) : stored === null ? undefined : Number(stored);
  // A 200 or 206 always has a body, if only an empty one.
  return {
    size,
    version: headers.get('x-goog-generation') ?? undefined,
    // Without a length the last byte cannot be told (the adapter stops reading at the size the head gives): no check then.
    body: checkedBody(
      response.body ?? new ReadableStream(),
      size ?? 0,
      ranged || size === undefined ? undefined : expectedCrc32c(headers),
    ),
  };
}

/** The stored CRC32C, when the bytes on the wire are the stored bytes (no transcoding). */
function expectedCrc32c(headers: Headers): string | undefined {
  const encoding = headers.get('content-encoding') ?? headers.get('x-goog-stored-content-encoding') ?? 'identity';
  if (encoding !== 'identity') return undefined;
  return /(?:^|,)\s*crc32c=([^,\s]+)/.exec(headers.get('x-goog-hash') ?? '')?.[1];
}

/**
 * The body as it arrives; with a checksum, the whole object is compared with it when the
 * body ends. The adapter holds the last bytes back until then (resumable-read.ts), so a
 * mismatch fails the read before its consumer has every byte, as S3's and Azure's checks do.
 */
async function* checkedBody(
  body: AsyncIterable<Uint8Array>,
  length: number,
  crc32c: string | undefined,
): AsyncIterable<Uint8Array> {
  const checksum = crc32c === undefined ? undefined : crc32cHasher();
  let received = 0;
  for await (const chunk of body) {
    received += chunk.byteLength;
    checksum?.update(chunk);
    yield chunk;
  }
  if (checksum && received >= length && !checksum.matches(crc32c as string)) {
    throw Object.assign(new Error(`the bytes received do not match the object's CRC32C (${crc32c})`), {
      code: 'CONTENT_DOWNLOAD_MISMATCH',
    });
  }
}
