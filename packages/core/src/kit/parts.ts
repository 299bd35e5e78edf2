// Turning an upload body into parts: re-chunking a stream into fixed-size parts,
// holding a small body back so it goes up in one retryable request, and staging
// parts with bounded concurrency (Azure blocks, GCS composed parts).
import { bodyBytes, bodyChunks, concatBytes } from '../store/bytes.js';
import type { PutBody } from '../store/contract.js';
import { settledEach } from '../store/settled-map.js';
import type { ObjectRequest, StreamWrite } from './primitives.js';

/**
 * Buffers `bufferIfSmall` filled with the first `limit` bytes of a long stream and hands
 * on as its first chunk: nothing else holds them, so `fixedSizeParts` takes such a
 * buffer as a part (when it is exactly a part) instead of copying it into another.
 */
const HANDED_ON = new WeakSet<Uint8Array>();

/**
 * Re-chunks a stream into buffers of exactly `size` bytes (the last may be shorter),
 * holding at most one part in memory; `buffers` supplies them (fresh ones by default).
 * Each chunk is copied before the next is taken (except a buffer `bufferIfSmall` handed
 * on, which is a part as it is). Used for multipart/block uploads.
 */
export async function* fixedSizeParts(
  chunks: AsyncIterable<Uint8Array>,
  size: number,
  buffers: { take(): Uint8Array } = { take: () => new Uint8Array(size) },
): AsyncIterable<Uint8Array> {
  let buffer: Uint8Array | undefined;
  let filled = 0;
  for await (const chunk of chunks) {
    if (filled === 0 && chunk.byteLength === size && HANDED_ON.delete(chunk)) {
      yield chunk;
      continue;
    }
    let offset = 0;
    while (offset < chunk.byteLength) {
      buffer ??= buffers.take();
      const take = Math.min(size - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === size) {
        yield buffer;
        buffer = undefined;
        filled = 0;
      }
    }
  }
  if (buffer && filled > 0) yield buffer.subarray(0, filled);
}

/**
 * Reads a body until it ends or passes `limit` bytes. A small body comes back whole, as
 * our own copy (so it can be sent in one retryable request, and the caller may reuse its
 * buffer once put resolves). A larger one comes back as a stream that replays what was
 * read, then the rest, chunk by chunk as the producer yields it: each chunk is valid
 * until the next is taken (a producer may reuse its buffer), so a writer copies what it
 * keeps longer (`stageParts` copies into its part buffers). A large buffer is streamed as
 * views of the caller's memory, which the caller leaves alone until put resolves: copying
 * it whole would double the memory of every large upload. Memory stays within `limit`
 * plus one chunk. With `stableChunks` nothing held back is copied.
 */
export async function bufferIfSmall(
  body: PutBody,
  limit: number,
  options: { stableChunks?: boolean } = {},
): Promise<{ bytes: Uint8Array; stream?: undefined } | { bytes?: undefined; stream: AsyncIterable<Uint8Array> }> {
  const whole = bodyBytes(body);
  if (whole) return whole.byteLength <= limit ? { bytes: whole.slice() } : { stream: slicesOf(whole, limit) };
  const iterator = bodyChunks(body)[Symbol.asyncIterator]();
  // What was held back, then the rest of the body. A writer that stops early (a failed
  // part, a refused put) ends this stream, and so the caller's body: an open file or a
  // socket is released then, not whenever the collector gets to it.
  async function* replay(held: readonly Uint8Array[]) {
    let done = false;
    try {
      yield* held;
      while (true) {
        const next = await iterator.next();
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!done) await iterator.return?.();
    }
  }
  // What is held back: views (stableChunks), or small copies (a record needs no
  // part-sized buffer), and past SMALL_HEAD one buffer of `limit` bytes which, if the
  // body goes on, is handed on as the first part (HANDED_ON) instead of being copied
  // into a part buffer.
  const head: Uint8Array[] = [];
  let held: Uint8Array | undefined;
  let size = 0;
  while (true) {
    const next = await iterator.next();
    if (next.done) {
      return { bytes: held ? held.subarray(0, size) : concatBytes(head) };
    }
    const chunk = next.value;
    if (!held && (options.stableChunks || size + chunk.byteLength <= SMALL_HEAD || limit <= SMALL_HEAD)) {
      // Producers may reuse the buffer they yielded: keep a copy (unless promised otherwise).
      head.push(options.stableChunks ? chunk : chunk.slice());
      size += chunk.byteLength;
      if (size > limit) {
        return { stream: replay(head) };
      }
      continue;
    }
    if (!held) {
      held = new Uint8Array(limit);
      let offset = 0;
      for (const kept of head.splice(0)) {
        held.set(kept, offset);
        offset += kept.byteLength;
      }
    }
    const fits = Math.min(limit - size, chunk.byteLength);
    held.set(chunk.subarray(0, fits), size);
    size += fits;
    if (size < limit) continue;
    // Full. Longer than one request if this chunk goes on, or another chunk follows.
    const tail = chunk.subarray(fits);
    const after = tail.byteLength > 0 ? undefined : await iterator.next();
    if (after?.done) return { bytes: held };
    const first = held;
    HANDED_ON.add(first);
    // Then the rest of the chunk that filled it, or the chunk read after (each valid until the next is taken).
    return { stream: replay([first, ...(tail.byteLength > 0 ? [tail] : []), ...(after && !after.done ? [after.value] : [])]) };
  }
}

/** Bytes up to which what `bufferIfSmall` holds back is kept as copies of the chunks. */
const SMALL_HEAD = 1024 * 1024;

/** Views of `bytes`, `size` bytes each (no copy). */
async function* slicesOf(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += size) yield bytes.subarray(offset, offset + size);
}

/**
 * A part as views of the caller's chunks, in order (`stageParts` with `views` when the
 * body's chunks are stable): one request body, sent without being copied together.
 */
export type PartViews = readonly Uint8Array[];

/** A part's bytes in order: the buffer, or its views. */
export const partChunks = (part: Uint8Array | PartViews): PartViews => (part instanceof Uint8Array ? [part] : part);

/** The bytes of a part, one buffer or views. */
export const partBytes = (part: Uint8Array | PartViews): number =>
  partChunks(part).reduce((sum, view) => sum + view.byteLength, 0);

/**
 * Cuts a stream into parts of exactly `size` bytes (the last may be shorter), each the
 * list of views of the chunks it spans: nothing is copied, so the chunks must stay
 * unchanged until every part has been staged (`StreamWrite.stableChunks`).
 */
export async function* viewParts(chunks: AsyncIterable<Uint8Array>, size: number): AsyncIterable<PartViews> {
  let part: Uint8Array[] = [];
  let filled = 0;
  for await (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const take = Math.min(size - filled, chunk.byteLength - offset);
      part.push(chunk.subarray(offset, offset + take));
      filled += take;
      offset += take;
      if (filled === size) {
        yield part;
        part = [];
        filled = 0;
      }
    }
  }
  if (filled > 0) yield part;
}

/**
 * Cuts a stream into parts of `partSize` and stages each through `stage` (under the
 * adapter's retry and timeout via `write.part`), at most `concurrency` at once. Parts
 * are copied into buffers reused once their part has been staged: an upload holds at
 * most `concurrency + 1` part buffers, however long the stream (fresh buffers per part
 * left garbage that the collector freed late, measured at 4x to 5x that). With `views`
 * (a writer that can send a list of views as one request) and a body whose chunks are
 * stable (`write.stableChunks`), parts are views of the chunks and nothing is copied:
 * an async save's upload then holds no part buffers beside its snapshot (48 MiB of
 * them with 8 MiB parts, 4 at once). Resolves the number of parts, in order 0..n-1. It
 * rejects only once every part in flight has settled.
 */
export function stageParts(
  body: AsyncIterable<Uint8Array>,
  write: StreamWrite,
  options: { partSize: number; concurrency: number; views?: false },
  stage: (part: Uint8Array, index: number, request: ObjectRequest) => Promise<unknown>,
): Promise<number>;
export function stageParts(
  body: AsyncIterable<Uint8Array>,
  write: StreamWrite,
  options: { partSize: number; concurrency: number; views: boolean },
  stage: (part: Uint8Array | PartViews, index: number, request: ObjectRequest) => Promise<unknown>,
): Promise<number>;
export async function stageParts(
  body: AsyncIterable<Uint8Array>,
  write: StreamWrite,
  options: { partSize: number; concurrency: number; views?: boolean },
  stage: (part: Uint8Array & PartViews, index: number, request: ObjectRequest) => Promise<unknown>,
): Promise<number> {
  const send = stage as (part: Uint8Array | PartViews, index: number, request: ObjectRequest) => Promise<unknown>;
  if (options.views && write.stableChunks) {
    return settledEach(
      viewParts(body, options.partSize),
      async (part, index) => {
        await write.part('put', (request) => send(part, index, request));
        write.progress(partBytes(part));
      },
      options.concurrency,
    );
  }
  const pool = new PartBuffers(options.partSize);
  // Rejects only once no part is still on the wire, so the writer's abort frees them all.
  return settledEach(
    fixedSizeParts(body, options.partSize, pool),
    async (part, index) => {
      await write.part('put', (request) => send(part, index, request));
      write.progress(part.byteLength);
      // Staged: nothing reads this part any more (its retries are over).
      pool.release(part);
    },
    options.concurrency,
  );
}

/** Part buffers of one upload, reused once their part is staged. */
export class PartBuffers {
  readonly #free: Uint8Array[] = [];
  /** Buffers ever made: at most concurrency + 1 for `stageParts`. */
  allocated = 0;
  constructor(readonly size: number) {}
  take(): Uint8Array {
    const buffer = this.#free.pop();
    if (buffer) return buffer;
    this.allocated++;
    return new Uint8Array(this.size);
  }
  /** Gives back a part (the last part is a view of a whole buffer). */
  release(part: Uint8Array): void {
    this.#free.push(part.byteLength === this.size ? part : new Uint8Array(part.buffer, part.byteOffset, this.size));
  }
}
