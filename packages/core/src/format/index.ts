// The checkpoint format: tensors, safetensors (encode, decode, the lazy reader that
// reads by ranges), and the sharded folder layout. Only safetensors: every reader
// (ranges, publishing, folder shards) and Python rely on its layout.
export { checkCheckpointBytes } from './check-bytes.js';
export {
  DEFAULT_CHUNK_BYTES,
  INCREMENTAL_FORMAT,
  type IncrementalManifest,
  readIncrementalManifest,
} from './incremental.js';
export {
  CheckpointReader,
  type OpenCheckpointOptions,
  openCheckpoint,
  readSafetensorsHeader,
  type TensorInfo,
} from './reader.js';
export {
  CHECKPOINT_EXTENSION,
  DATA_SHA256_KEY,
  decodeCheckpoint,
  decodeSafetensors,
  type EncodedCheckpoint,
  encodeCheckpoint,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  MAX_METADATA_DEPTH,
  parseSafetensorsHeader,
  type SafetensorsHeader,
} from './safetensors.js';
export { checkpointSeal, checkSeal } from './seal.js';
export {
  isShardFileName,
  MANIFEST_NAME,
  MAX_MANIFEST_BYTES,
  readManifest,
  readManifestBytes,
  type ShardManifest,
  shardFileName,
} from './sharded.js';
export { type StreamedFile, type StreamLoadOptions, streamSafetensorsFile } from './stream-load.js';
export { type Checkpoint, type DType, dtypeOf, isTypedArray, Tensor, type TypedArray } from './tensor.js';
