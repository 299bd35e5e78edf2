// `@savepoint/core/kit`: what a backend author needs beside the contract
// (`@savepoint/core/store`): the object-store adapter every cloud backend sits on,
// the primitives a cloud supplies to it, and the pieces it is made of (one backoff,
// the progress timer, parts, signals, paths, option checks, temp names).

export { callSignal, onAbort } from '../store/abort-listeners.js';
export { bodyBytes, bodyChunks, collect } from '../store/bytes.js';
export { isNetworkError } from '../store/errors.js';
export {
  baseName,
  checkKeySegments,
  dirPrefix,
  joinObjectPath,
  type ObjectLocation,
  parseObjectUri,
} from '../store/object-path.js';
export { safeCause } from '../store/redact.js';
export { settledEach, settledMap } from '../store/settled-map.js';
export { isTempName, TEMP_MARKER, TEMP_TOKEN_LENGTH, tempNameFor } from '../store/temp-names.js';
export {
  type CheckContext,
  checkBoolean,
  checkEndpointUrl,
  checkInteger,
  checkKnownKeys,
  checkRecord,
  checkString,
  checkStringList,
  configError,
  describeSecretValue,
  describeValue,
  hasMethods,
  secretConfigError,
} from '../store/validate.js';
export { countedChunks, ObjectStoreBackend, type ObjectStoreSettings, untilAborted } from './adapter.js';
export {
  DEFAULT_RETRY_POLICY,
  parseRetryPolicy,
  type RetryInfo,
  type RetryPolicy,
  retryDelayMs,
  type WithRetryOptions,
  waitBeforeRetry,
  withRetry,
} from './backoff.js';
export { bufferIfSmall, fixedSizeParts, type PartViews, partBytes, partChunks, stageParts, viewParts } from './parts.js';
export {
  type ListPage,
  type ObjectHead,
  type ObjectListing,
  type ObjectRead,
  type ObjectRequest,
  type ObjectStorePrimitives,
  type PartRunner,
  type ReadRange,
  rangeHeader,
  type StreamWrite,
  sizeFromContentRange,
  type WriteAttributes,
} from './primitives.js';
export {
  isThisProcess,
  type ProcessIdentity,
  type ProcessState,
  parseProcessIdentity,
  processIdentity,
  processState,
} from './process-identity.js';
export { DEFAULT_REQUEST_TIMEOUT_MS, parseRequestTimeout } from './progress-timer.js';
