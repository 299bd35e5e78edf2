// The policy engine: `CheckpointHook` and its options, and the resume point a loop reads.
export { CheckpointHook } from './hook.js';
export {
  CHECKPOINT_HOOK_OPTION_NAMES,
  type CheckpointHookOptions,
  DEFAULT_GREATER_KEYS,
  DEFAULT_LESS_KEYS,
  inferRule,
  type ResolvedCheckpointHookOptions,
  type Rule,
} from './options.js';
export { type PrunePolicy, type PruneResult, type PruneVerdict, pruneRun } from './prune.js';
export { type ResumePoint, readResumePoint } from './restore.js';
export type { Logger, Runner } from './runner.js';
export { RuntimeInfo } from './runtime-info.js';
