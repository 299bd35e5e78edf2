export { AzureBackend, registerAzureBackend } from './azure-backend.js';
export { BACKEND_NAME, isTransientAzureError, mapAzureError } from './azure-errors.js';
export type { AzureBackendOptions } from './azure-options.js';
export { AZURE_OPTION_NAMES } from './azure-options.js';
