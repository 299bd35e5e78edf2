export { CAS_CHECKS } from './cas-checks.js';
export type { ThroughProxy } from './contract-check.js';
export {
  type Capabilities,
  type CheckContext,
  CONTRACT_CHECKS,
  type ContractCheck,
  DEFAULT_CAPABILITIES,
  type ScratchStore,
} from './contract-checks.js';
export { FAULT_CHECK_NAME, FAULT_CHECKS, StatusProxy } from './fault-checks.js';
export { incrementalChecks, trainIncremental, transferModel } from './incremental-checks.js';
export {
  type Call,
  type Fault,
  InjectedFault,
  InstrumentedBackend,
  MUTATING_OPERATIONS,
  type Operation,
} from './instrumented-backend.js';
export { type PolicyTestOptions, testCheckpointPolicy } from './policy-checks.js';
export { type CheckFailure, runChecks } from './run-checks.js';
export { CHECK_NAMES, partSizeOf, STORAGE_API_CHECKS } from './storage-api-checks.js';
export {
  type BackendFactory,
  type BackendTestContext,
  type TestBackendOptions,
  testBackend,
} from './test-backend.js';
export { ToyModel } from './toy-model.js';
