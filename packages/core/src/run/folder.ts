// What the tools that work on a run folder (scan, prune, copy, verify, inspect) need
// of it: the interface `Run` implements. They take this, not the class, so that `Run`
// can call them without an import cycle.
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import type { RemoveResult } from './checkpoint-files.js';
import type { RunLayout } from './layout.js';
import type { AcquireLeaseOptions, RunLease } from './lease.js';
import type { GarbageReport, ObjectUsage } from './objects.js';

export type CheckpointKind = 'regular' | 'best' | 'published';

export interface CheckpointInfo {
  name: string;
  path: string;
  kind: CheckpointKind;
  /** The metric of a best checkpoint. */
  metric?: string | undefined;
  step?: number | undefined;
  size?: number | undefined;
  modified?: Date | undefined;
  shape: 'file' | 'directory' | 'incomplete' | 'incremental';
  isPointerTarget: boolean;
  /** (ours) An incremental checkpoint: bytes of its objects another checkpoint names too, and bytes only it names (what deleting it frees). */
  sharedBytes?: number | undefined;
  exclusiveBytes?: number | undefined;
}

export interface RunScan {
  dir: string;
  /** What the pointer names (resolved), or undefined. */
  pointer: string | undefined;
  checkpoints: CheckpointInfo[];
}

export interface RunFolder {
  readonly layout: RunLayout;
  readonly workDir: string;
  readonly outDir: string;
  readonly store: StorageBackend;
  readonly workDirStore: StorageBackend;
  latest(options?: SignalOptions): Promise<string | undefined>;
  latestSealed(options?: SignalOptions): Promise<{ path: string; seal: string | undefined } | undefined>;
  resumeTarget(
    options?: SignalOptions,
  ): Promise<
    { name: string; path: string; runtimeInfo?: Record<string, unknown> | undefined; seal?: string | undefined } | undefined
  >;
  scan(options?: SignalOptions): Promise<RunScan>;
  acquireLease(options: Omit<AcquireLeaseOptions, 'signal'>): Promise<RunLease>;
  remove(name: string, options?: SignalOptions): Promise<RemoveResult>;
  collectGarbage(options?: SignalOptions): Promise<GarbageReport & { skipped?: string }>;
  objectUsage(options?: SignalOptions): Promise<ObjectUsage>;
}
