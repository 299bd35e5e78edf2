// `@savepoint/core/store`: the storage half of core, for code that only moves bytes
// (every backend, and teams that adopt only the store API): the StorageBackend
// contract, the error hierarchy, the registry, retries, the object-store adapter and
// the option checks. It loads none of the policy engine, codec or training loop.
export * from './abort-listeners.js';
export * from './bytes.js';
export * from './errors.js';
export * from './object-path.js';
export * from './object-store.js';
export * from './redact.js';
export * from './registry.js';
export * from './retry.js';
// The one naming rule a store needs: its temp files for writes in flight.
export { isTempName, TEMP_MARKER, tempNameFor } from './run-layout.js';
export type * from './storage-backend.js';
export * from './validate.js';
