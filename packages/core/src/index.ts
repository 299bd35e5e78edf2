export * from './bytes.js';
export * from './errors.js';
export * from './object-path.js';
export * from './redact.js';
export * from './registry.js';
export * from './retry.js';
export type * from './storage-backend.js';
export * from './validate.js';
