// The CLI's commands as functions that return data: main.ts prints them as text or
// JSON, and the tests call them through main. Every store access goes through the
// `Run` that owns the folder (in @savepoint/core): this module only turns arguments
// into calls and results into data.
import {
  type BackendArgs,
  type CheckpointHeader,
  ConfigError,
  type PrunePolicy,
  type PruneResult,
  pruneRun,
  Run,
  type RunScan,
  type StorageBackend,
  type VerifyReport,
} from '@savepoint/core';
import { type Progress, silentProgress } from './progress.js';

/** A failed check or a missing thing: exit code 1. */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
  /** What `--json` errors carry in `code`, spelled like the library errors' codes (`NOT_FOUND`, `CONFIG`). */
  readonly code = 'CHECK_FAILED';
}

export interface CommandOptions {
  backendArgs?: BackendArgs | undefined;
  /** A store already built (library use): the run's folder is on it. Not together with `backendArgs`. */
  backend?: StorageBackend | undefined;
  /** The run's `filenameTmpl`, when it is not the default. */
  filenameTmpl?: string | undefined;
}

/** Runs `body` with the run a folder belongs to, closing its stores after. */
async function withRun<T>(dir: string, options: CommandOptions, body: (run: Run) => Promise<T>): Promise<T> {
  const run = await Run.locate(dir, {
    backend: options.backend,
    backendArgs: options.backendArgs,
    filenameTmpl: options.filenameTmpl,
  });
  try {
    return await body(run);
  } finally {
    await run.close();
  }
}

export async function ls(dir: string, options: CommandOptions = {}): Promise<RunScan> {
  return withRun(dir, options, (run) => run.scan());
}

export async function latest(dir: string, options: CommandOptions = {}): Promise<{ pointer: string }> {
  return withRun(dir, options, async (run) => {
    const pointer = await run.latest();
    if (!pointer) throw new CheckFailed(`no last_checkpoint in ${dir}: nothing has been saved there yet`);
    return { pointer };
  });
}

export async function inspect(path: string, options: CommandOptions = {}): Promise<CheckpointHeader> {
  return withRun(path, options, (run) => run.inspect(run.outDir));
}

/** Opens every checkpoint (one, or each in a run folder) and checks its bytes. */
export async function verify(path: string, options: CommandOptions = {}): Promise<VerifyReport> {
  return withRun(path, options, (run) => run.verify());
}

/**
 * Plans (and with `yes`, does) the deletion of what the retention policy does not keep
 * in the run the folder belongs to (the engine's one retention module: see pruneRun).
 */
export async function prune(dir: string, policy: PrunePolicy, yes: boolean, options: CommandOptions = {}): Promise<PruneResult> {
  return withRun(dir, options, (run) => pruneRun(run, policy, yes));
}

export async function publish(path: string, keys: string[], options: CommandOptions = {}) {
  return withRun(path, options, async (run) => {
    // A key the checkpoint does not hold is a typo: publishing an empty checkpoint helps nobody.
    // The header says which keys there are; only the kept keys' tensors are then read.
    const held = (await run.inspect(run.outDir)).keys;
    const missing = keys.filter((key) => !held.includes(key));
    if (missing.length > 0) {
      throw new ConfigError(
        `--keys ${missing.map((k) => JSON.stringify(k)).join(', ')} not in ${path}; it holds: ${held.join(', ')}`,
        { option: '--keys' },
      );
    }
    return run.publish(run.outDir, keys);
  });
}

/** Copies a checkpoint file or a run (or checkpoint) folder between any two stores, streaming; the pointer last. */
export async function cp(
  src: string,
  dst: string,
  options: CommandOptions = {},
  progress: Progress = silentProgress,
): Promise<{ files: number; bytes: number }> {
  return withRun(src, options, async (source) => {
    const target = Run.open(dst, { backendArgs: options.backendArgs });
    try {
      return await source.copyTo(target, progress);
    } finally {
      await target.close();
    }
  });
}
