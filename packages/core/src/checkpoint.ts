// `@savepoint/core/checkpoint`: the checkpoint half of core: the policy engine
// (CheckpointHook), the reference training loop, resume, the run layout and lease,
// the safetensors codec, checkpoint reading and writing. It works on any
// StorageBackend (from `@savepoint/core/store`, or the package root, which has both).
export * from './checkpoint-hook.js';
export * from './checkpoint-io.js';
export * from './checkpoint-reader.js';
export type * from './codec.js';
export * from './lease.js';
export * from './reference-trainer.js';
export * from './resume.js';
export * from './run-layout.js';
export type * from './runner.js';
export * from './runtime-info.js';
export * from './safetensors-codec.js';
export * from './tensor.js';
