export { BACKEND_NAME, LocalBackend, type LocalBackendOptions, registerLocalBackend } from './local-backend.js';
