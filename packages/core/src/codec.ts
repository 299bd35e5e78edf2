// The pluggable encoding of a checkpoint into bytes. The engine streams what
// `encode` yields to the store, so a codec should yield views of its tensors'
// memory rather than copies.
import type { Checkpoint } from './tensor.js';

export interface EncodedCheckpoint {
  /** Exact size in bytes, known before the first chunk. */
  readonly byteLength: number;
  /** The bytes, in order. Can be called more than once and yields the same bytes each time. */
  chunks(): AsyncIterable<Uint8Array>;
}

export interface CheckpointCodec {
  /** `safetensors`. */
  readonly name: string;
  /** File extension with its dot (`.safetensors`); the default file name templates end with it. */
  readonly extension: string;
  encode(checkpoint: Checkpoint): EncodedCheckpoint;
  decode(bytes: Uint8Array): Checkpoint;
}
