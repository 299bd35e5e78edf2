export {
  type Capabilities,
  type CheckContext,
  CONTRACT_CHECKS,
  type ContractCheck,
  DEFAULT_CAPABILITIES,
} from './contract-checks.js';
export { type CheckFailure, runChecks } from './run-checks.js';
export {
  type BackendFactory,
  type BackendTestContext,
  type TestBackendOptions,
  testBackend,
} from './test-backend.js';
export { InstrumentedBackend, InjectedFault, MUTATING_OPERATIONS, type Call, type Fault, type Operation } from './instrumented-backend.js';
export { testCheckpointPolicy, type PolicyTestOptions } from './policy-checks.js';
export { ToyModel } from './toy-model.js';
