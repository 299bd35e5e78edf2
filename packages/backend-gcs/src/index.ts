export { GcsBackend, registerGcsBackend } from './gcs-backend.js';
export { BACKEND_NAME, isTransientGcsError, mapGcsError } from './gcs-errors.js';
export type { GcsBackendOptions } from './gcs-options.js';
export { GCS_OPTION_NAMES } from './gcs-options.js';
