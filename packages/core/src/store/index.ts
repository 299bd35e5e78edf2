// `@savepoint/core/store`: what an adopter of the storage packages needs, and nothing
// of the policy engine: the StorageBackend contract, the one error hierarchy, and the
// registry that picks a backend from `backendArgs` or a URI scheme.
export type {
  ByteRange,
  GetOptions,
  ListEntry,
  ListOptions,
  ObjectStat,
  PutBody,
  PutOptions,
  RemoveOptions,
  RmtreeOptions,
  SignalOptions,
  StorageBackend,
} from './contract.js';
export {
  AbortedError,
  BackendError,
  ConfigError,
  CorruptCheckpointError,
  ForeignPathError,
  IncompleteDeleteError,
  InvalidPathError,
  isNotFound,
  isSavepointError,
  isTransient,
  LeaseHeldError,
  NotFoundError,
  PermissionDeniedError,
  PreconditionFailedError,
  SavepointError,
  type SavepointErrorCode,
  type SavepointErrorOptions,
  TimeoutError,
  TransientError,
} from './errors.js';
export { redact } from './redact.js';
export {
  type BackendArgs,
  type BackendRegistration,
  type BackendSource,
  backendSource,
  getBackend,
  LOCAL_BACKEND_NAME,
  type RegisterBackendOptions,
  registerBackend,
  registeredBackends,
  resolveBackendName,
  storeArgsFor,
  unregisterBackend,
  uriScheme,
} from './registry.js';
