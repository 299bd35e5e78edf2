// `@savepoint/core`: everything. `@savepoint/core/store` (bytes only) and
// `@savepoint/core/checkpoint` (the engine) are its two halves.
export * from './checkpoint.js';
export * from './store.js';
