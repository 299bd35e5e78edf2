export {
  BACKEND_NAME,
  LOCAL_OPTION_NAMES,
  LocalBackend,
  type LocalBackendOptions,
  registerLocalBackend,
} from './local-backend.js';
