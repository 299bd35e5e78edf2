// A run folder and its one owner, `Run`: names (layout.ts), the lease, the pointer,
// the run marker, checkpoint files, and what tools do to a run (scan, prune, copy,
// verify, inspect).
export {
  type CheckpointShape,
  checkpointShape,
  loadCheckpoint,
  publishCheckpoint,
  type RemoveResult,
  saveCheckpointDir,
  saveCheckpointFile,
} from './checkpoint-files.js';
export type { CopyProgress } from './copy.js';
export type { CheckpointInfo, CheckpointKind, RunScan } from './folder.js';
export { type CheckpointHeader, inspectCheckpoint } from './inspect.js';
export {
  absoluteWorkDir,
  checkFilenameTemplate,
  DEFAULT_FILENAME_TEMPLATE,
  DEFAULT_ITER_FILENAME_TEMPLATE,
  LEASE_NAME,
  type ParsedName,
  POINTER_NAME,
  RUN_MARKER_NAME,
  RunLayout,
} from './layout.js';
export { DEFAULT_LEASE_TTL_MS, type LeaseRecord, type LeaseRenewal, RunLease } from './lease.js';
export { type CheckpointLayout, Run, type RunOptions } from './run.js';
export type { VerifyReport, VerifyResult } from './verify.js';
