// Small byte helpers shared by backends: turning any PutBody into chunks, and
// collecting a stream into one buffer.
import type { PutBody } from './contract.js';

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
  for await (const chunk of chunks) parts.push(chunk);
  return concatBytes(parts);
}

/** `parts` one after another in one buffer (the only part itself when there is one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
