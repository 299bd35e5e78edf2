// Small byte helpers shared by backends: turning any PutBody into chunks, and
// collecting a stream into one buffer.
import type { PutBody } from './storage-backend.js';

const encoder = new TextEncoder();

/** Yields the body as Uint8Array chunks (Node Buffers are Uint8Arrays too). */
export async function* bodyChunks(body: PutBody): AsyncIterable<Uint8Array> {
  if (typeof body === 'string') {
    yield encoder.encode(body);
  } else if (body instanceof Uint8Array) {
    yield body;
  } else {
    for await (const chunk of body) {
      if (typeof chunk === 'string') yield encoder.encode(chunk);
      else yield chunk;
    }
  }
}

/** The body as one buffer when its size is known without reading it, else undefined. */
export function bodyBytes(body: PutBody): Uint8Array | undefined {
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  return undefined;
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    parts.push(chunk);
    total += chunk.byteLength;
  }
  if (parts.length === 1 && parts[0]) return parts[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

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
