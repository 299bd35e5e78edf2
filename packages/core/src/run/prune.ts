// `prune`: deleting all but the newest regular checkpoints of a run, from outside the
// trainer. Candidates are only names the run's layout parses as its regular
// checkpoints; the pointer's target, anything newer than it (a save whose pointer has
// not moved yet), bests, published copies and files that are not the run's are never
// touched. Deleting holds the run's lease, so it fails at once while a trainer writes.
import { ConfigError } from '../store/errors.js';
import type { RunFolder } from './folder.js';
import { RUN_MARKER_NAME } from './layout.js';
import { DEFAULT_LEASE_TTL_MS } from './lease.js';

export interface PruneResult {
  toDelete: string[];
  kept: string[];
  deleted: boolean;
  /** (ours) Incremental checkpoints: bytes of the objects only the deleted checkpoints name (freed by the deletion), and objects collected. */
  freedBytes?: number | undefined;
  collected?: number | undefined;
}

export async function pruneRun(run: RunFolder, keep: number, yes: boolean): Promise<PruneResult> {
  if (!Number.isInteger(keep) || keep < 1) {
    throw new ConfigError(
      `--keep got ${JSON.stringify(keep)}; accepted: an integer >= 1 (prune never deletes every checkpoint)`,
      { option: '--keep' },
    );
  }
  const lease = yes ? await run.acquireLease({ ttlMs: DEFAULT_LEASE_TTL_MS, purpose: 'prune' }) : undefined;
  try {
    const { checkpoints, pointer } = await run.scan();
    const regular = checkpoints
      .filter((c) => c.kind === 'regular' && c.shape !== 'incomplete')
      .sort((a, b) => (b.step ?? 0) - (a.step ?? 0));
    if (yes && pointer === undefined && regular.length > keep) {
      // Without the pointer, the checkpoint a resume needs is unknown: this may be the
      // checkpoint folder of a run whose work dir (with the pointer) is elsewhere.
      throw new ConfigError(
        `${run.outDir} has no last_checkpoint and no record of the run it belongs to, so prune cannot tell which checkpoint a resume needs. If it is the checkpoint folder (outDir) of a run whose work dir is elsewhere (pruning that work dir does not reach this folder), resume that run once: its trainer records its work dir here (${RUN_MARKER_NAME}) and prune then finds its lease and pointer; nothing was deleted.`,
        { option: 'dir' },
      );
    }
    const keepSet = new Set(regular.slice(0, keep).map((c) => c.path));
    const target = checkpoints.find((c) => c.isPointerTarget);
    for (const c of checkpoints) {
      if (c.isPointerTarget || c.kind !== 'regular') keepSet.add(c.path);
      // Newer than the pointer's target: a save in progress, or one whose pointer a crash never moved.
      if (target?.step !== undefined && (c.step ?? 0) > target.step) keepSet.add(c.path);
    }
    const going = regular.filter((c) => !keepSet.has(c.path));
    let freedBytes: number | undefined;
    if (checkpoints.some((c) => c.shape === 'incremental')) {
      // Objects named only by checkpoints that go: what the deletion frees (shared ones stay).
      const names = new Set(going.map((c) => c.name));
      const usage = await run.objectUsage();
      freedBytes = 0;
      for (const { bytes, by } of usage.referenced.values()) if (by.every((n) => names.has(n))) freedBytes += bytes;
    }
    if (yes) for (const c of going) await run.remove(c.name);
    // (ours) Then, still under the lease and fenced, the objects no kept checkpoint names.
    const collected = yes && freedBytes !== undefined ? (await run.collectGarbage()).removed : undefined;
    return {
      toDelete: going.map((c) => c.path),
      kept: [...keepSet],
      deleted: yes,
      ...(freedBytes !== undefined ? { freedBytes, collected } : {}),
    };
  } finally {
    await lease?.release();
  }
}
