// Turning an upload body into parts: re-chunking a stream into fixed-size parts,
// holding a small body back so it goes up in one retryable request, and staging
// parts with bounded concurrency (Azure blocks, GCS composed parts).
import pMap from 'p-map';
import { bodyBytes, bodyChunks, collect } from '../store/bytes.js';
import type { PutBody } from '../store/contract.js';
import type { ObjectRequest, StreamWrite } from './primitives.js';

/**
 * Re-chunks a stream into buffers of exactly `size` bytes (the last may be shorter),
 * holding at most one part in memory. Used for multipart/block uploads.
 */
export async function* fixedSizeParts(chunks: AsyncIterable<Uint8Array>, size: number): AsyncIterable<Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const take = Math.min(size - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

/**
 * Reads a body until it ends or passes `limit` bytes. A small body comes back whole
 * (so it can be sent in one retryable request); a larger one comes back as a stream
 * that replays what was read, then the rest. Memory stays within `limit` plus one chunk.
 * What comes back is ours, never the caller's memory: a producer may reuse its buffer
 * (SDKs hold chunks while they fill a part), so every byte is copied, exactly once.
 */
export async function bufferIfSmall(
  body: PutBody,
  limit: number,
): Promise<{ bytes: Uint8Array; stream?: undefined } | { bytes?: undefined; stream: AsyncIterable<Uint8Array> }> {
  const whole = bodyBytes(body);
  // Copied: a caller may reuse its buffer once put resolves, or while a retry is still pending.
  if (whole) return whole.byteLength <= limit ? { bytes: whole.slice() } : { stream: bodyChunks(whole.slice()) };
  const iterator = bodyChunks(body)[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let size = 0;
  while (size <= limit) {
    const next = await iterator.next();
    if (next.done) {
      async function* one() {
        for (const chunk of head) yield chunk;
      }
      return { bytes: await collect(one()) };
    }
    // Producers may reuse the buffer they yielded: keep a copy of what is held back.
    head.push(next.value.slice());
    size += next.value.byteLength;
  }
  return {
    stream: (async function* () {
      yield* head;
      while (true) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value.slice();
      }
    })(),
  };
}

/**
 * Cuts a stream into parts of `partSize` and stages each through `stage` (under the
 * adapter's retry and timeout via `write.part`), at most `concurrency` at once; memory
 * stays within `concurrency + 1` parts. Resolves the number of parts, in order 0..n-1.
 */
export async function stageParts(
  body: AsyncIterable<Uint8Array>,
  write: StreamWrite,
  options: { partSize: number; concurrency: number },
  stage: (part: Uint8Array, index: number, request: ObjectRequest) => Promise<unknown>,
): Promise<number> {
  let count = 0;
  const indexed = (async function* () {
    for await (const part of fixedSizeParts(body, options.partSize)) yield { part, index: count++ };
  })();
  await pMap(
    indexed,
    async ({ part, index }) => {
      await write.part('put', (request) => stage(part, index, request));
      write.progress(part.byteLength);
    },
    { concurrency: options.concurrency },
  );
  return count;
}
