// Finding and reading the checkpoint a run resumes from: the pointer in the work dir,
// checked to name a checkpoint of this run (see RunLayout.resolvePointer), and what it
// holds that a training loop restores (weights, counters, runtime info). Every loop
// (ReferenceTrainer, the TensorFlow.js callback) resumes through here.
import type { CheckpointHook } from './checkpoint-hook.js';
import { loadCheckpoint, readPointerText } from './checkpoint-io.js';
import type { CheckpointCodec } from './codec.js';
import type { RuntimeInfo } from './runtime-info.js';
import type { StorageBackend } from './storage-backend.js';
import type { Checkpoint } from './tensor.js';

export interface ResumePoint {
  /** The checkpoint the pointer names. */
  path: string;
  checkpoint: Checkpoint;
  /** Completed epochs and iterations at that save (0 when its meta does not say). */
  epoch: number;
  iter: number;
}

const count = (value: unknown) => (Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0);

/**
 * Reads the checkpoint the run in `workDir` last committed and copies its runtime info
 * into `runtimeInfo` (so that `hook.beforeTrain` restores rotation and bests from it).
 * Undefined when the run has no pointer yet. A pointer naming anything outside the run's
 * checkpoint folder is refused with `ForeignPathError`.
 */
export async function readResumePoint(
  hook: CheckpointHook,
  workDir: string,
  runtimeInfo: RuntimeInfo,
  options: { backend?: StorageBackend | undefined; codec?: CheckpointCodec | undefined } = {},
): Promise<ResumePoint | undefined> {
  const layout = hook.layoutFor(workDir, options.backend);
  const text = await readPointerText(layout.workDirStore, layout.workDir, { signal: hook.config.signal });
  if (!text) return undefined;
  const { path } = layout.resolvePointer(text);
  const checkpoint = await loadCheckpoint(layout.store, path, {
    codec: options.codec ?? hook.config.codec,
    signal: hook.config.signal,
  });
  const meta = (checkpoint.meta ?? {}) as { epoch?: unknown; iter?: unknown };
  const hub = checkpoint.message_hub as { runtime_info?: unknown } | undefined;
  const info = hub?.runtime_info;
  if (info && typeof info === 'object' && !Array.isArray(info)) {
    for (const [key, value] of Object.entries(info)) runtimeInfo.set(key, value);
  }
  return { path, checkpoint, epoch: count(meta.epoch), iter: count(meta.iter) };
}
