export { registerS3Backend, S3Backend } from './s3-backend.js';
export { BACKEND_NAME, isTransientS3Error, mapS3Error } from './s3-errors.js';
export type { S3BackendOptions, S3Credentials } from './s3-options.js';
export { S3_OPTION_NAMES } from './s3-options.js';
