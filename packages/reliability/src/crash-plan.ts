// What the crash child and the crash test agree on: the hook options and metrics.
import type { CheckpointHookOptions } from '@savepoint/core';

export interface CrashConfig {
  workDir: string;
  backendArgs: Record<string, unknown>;
  epochs: number;
  /** How checkpoints are stored: one file, a folder of shards, or (ours) incremental objects and a manifest. */
  layout: 'file' | 'directory' | 'incremental';
  /** Save in the background (the hook's `asyncSave`). */
  asyncSave?: boolean;
  /**
   * With `asyncSave`: stores from `backendArgs` (no instance), so the saves run on the
   * save worker thread; the child then announces each save point, not each store write.
   */
  saveWorker?: boolean;
}

export const CRASH_MAX_KEEP = 2;

export function crashHookOptions(config: CrashConfig): CheckpointHookOptions {
  const base = {
    interval: 1,
    maxKeepCkpts: CRASH_MAX_KEEP,
    saveBest: 'acc',
    ...(config.asyncSave ? { asyncSave: true } : {}),
  } as const;
  if (config.layout === 'directory') return { ...base, layout: 'directory', maxShardBytes: 24 };
  return config.layout === 'incremental' ? { ...base, incremental: true } : { ...base, layout: 'file' };
}

/** Improves often, so bests move (write new, delete old) throughout the run. */
export function crashMetrics(position: { epoch: number }): Record<string, number> {
  return { acc: [0.1, 0.3, 0.2, 0.5, 0.6, 0.4, 0.8, 0.7, 0.9, 0.95][(position.epoch - 1) % 10] ?? 0 };
}
