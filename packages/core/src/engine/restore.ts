// Resume, in one place: finding and reading the checkpoint a run resumes from (the
// pointer, checked to name a checkpoint of this run), and restoring from its runtime
// info what the engine keeps between saves (the keep list, the bests, the last
// checkpoint), trusting only this run's own names. The loop reads the resume point
// before `beforeTrain` (it must load weights and counters), and the hook restores its
// state from it there: both go through the one `Run` the hook opened for the work dir.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Checkpoint } from '../format/tensor.js';
import type { RunLease } from '../run/lease.js';
import type { Run } from '../run/run.js';
import type { StorageBackend } from '../store/contract.js';
import { LeaseHeldError } from '../store/errors.js';
import type { BestTracker } from './bests.js';
import { isEngineKey } from './committed-state.js';
import type { ResolvedCheckpointHookOptions } from './options.js';
import {
  collectLogged,
  KEPT_FOREVER_KEY,
  keepsForever,
  PENDING_REMOVALS_KEY,
  parseKeptForever,
  parseKeptSteps,
  type RetentionState,
  trimKept,
} from './retention.js';
import type { Runner } from './runner.js';
import type { RuntimeInfo } from './runtime-info.js';

export interface ResumePoint {
  /** The checkpoint the pointer names. */
  path: string;
  checkpoint: Checkpoint;
  /** Completed epochs and iterations at that save (0 when its meta does not say). */
  epoch: number;
  iter: number;
}

/** What restore needs of the hook: its run, options, state, and how it deletes. */
export interface RestoreContext {
  run: Run;
  runner: Runner;
  config: Readonly<ResolvedCheckpointHookOptions>;
  bests: BestTracker;
  state: RetentionState;
  /** Whether this job holds the run's lease (only then is what killed writes left garbage). */
  leaseHeld: boolean;
  remove(name: string, what: string): Promise<void>;
}

const count = (value: unknown) => (Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0);

/**
 * Reads the checkpoint the run last committed and copies its runtime info into
 * `runtimeInfo` (so that `hook.beforeTrain` restores rotation and bests from it).
 * Undefined when the run has no pointer yet. A pointer naming anything outside the run's
 * checkpoint folder is refused with `ForeignPathError`.
 */
export async function readResumePoint(
  hook: { openRun(workDir: string, workDirBackend?: StorageBackend): Run },
  workDir: string,
  runtimeInfo: RuntimeInfo,
  options: { backend?: StorageBackend | undefined } = {},
): Promise<ResumePoint | undefined> {
  const run = hook.openRun(workDir, options.backend);
  const target = await run.resumeTarget();
  if (!target) return undefined;
  // (ours) Checked against the seal the pointer records: an edit of its metadata is refused.
  const checkpoint = await run.load(target.path, { seal: target.seal });
  const meta = (checkpoint.meta ?? {}) as { epoch?: unknown; iter?: unknown };
  const hub = checkpoint.message_hub as { runtime_info?: unknown } | undefined;
  const info = hub?.runtime_info;
  if (info && typeof info === 'object' && !Array.isArray(info)) {
    for (const [key, value] of Object.entries(info)) runtimeInfo.set(key, value);
  }
  // (ours) Bookkeeping recorded after the checkpoint was written (a new best, with no
  // second save of the checkpoint) travels with the pointer and wins over the checkpoint's.
  // Only the engine's keys: a pointer never changes the user's own runtime info.
  for (const [key, value] of Object.entries(target.runtimeInfo ?? {})) if (isEngineKey(key)) runtimeInfo.set(key, value);
  return { path: target.path, checkpoint, epoch: count(meta.epoch), iter: count(meta.iter) };
}

/**
 * What rank 0 does first: take the run's one-writer lease (unless `leaseTtlMs` is off)
 * and, when checkpoints go to a folder of their own, claim it with the run marker.
 */
export async function takeRun(
  run: Run,
  runner: Runner,
  options: { leaseTtlMs: number | undefined; leaseWaitMs: number; signal: AbortSignal | undefined },
): Promise<RunLease | undefined> {
  const lease =
    options.leaseTtlMs === undefined ? undefined : await acquireWaiting(run, runner, { ...options, ttlMs: options.leaseTtlMs });
  try {
    const renewal = await lease?.startRenewing();
    if (renewal?.thread === 'main') {
      runner.logger.info(
        `The run's lease is renewed on the main thread (${renewal.why}): a step that holds the thread longer than leaseTtlMs loses it.`,
      );
    }
    await run.claimOutDir();
    return lease;
  } catch (error) {
    await lease?.release().catch(() => {});
    throw error;
  }
}

/** Polls a held lease at least this often while waiting, so a holder that releases early is noticed. */
const LEASE_POLL_MS = 2_000;

/**
 * (ours) Takes the lease; with `leaseWaitMs`, a lease another job holds is waited for
 * (until it expires or is released) instead of failing at once, saying who holds it.
 */
async function acquireWaiting(
  run: Run,
  runner: Runner,
  options: { ttlMs: number; leaseWaitMs: number; signal: AbortSignal | undefined },
): Promise<RunLease> {
  const deadline = Date.now() + options.leaseWaitMs;
  for (;;) {
    try {
      return await run.acquireLease({
        ttlMs: options.ttlMs,
        purpose: 'training',
        onTakeover: (_previous, why) => runner.logger.warn(`Taking over the run's lease ${run.layout.leasePath}: ${why}.`),
      });
    } catch (error) {
      const left = deadline - Date.now();
      if (!(error instanceof LeaseHeldError) || left <= 0) throw error;
      const expires = Date.parse(String(error.holder?.expiresAt ?? ''));
      const until = Number.isFinite(expires) ? new Date(expires).toISOString() : 'an unknown time';
      runner.logger.warn(
        `${error.message.split(':')[0]}: its lease is held until ${until}; waiting up to ${Math.ceil(left / 1000)} s more (leaseWaitMs).`,
      );
      const wait = Number.isFinite(expires) ? Math.min(Math.max(expires - Date.now(), 50), LEASE_POLL_MS) : LEASE_POLL_MS;
      await sleep(Math.min(wait, left), undefined, { signal: options.signal });
    }
  }
}

/** Whether `name` is something the run still needs: its last regular checkpoint, a kept one, or a current best. */
export function isCurrent(ctx: Pick<RestoreContext, 'run' | 'bests' | 'state'>, name: string): boolean {
  if (name === ctx.state.lastCkpt) return true;
  const parsed = ctx.run.layout.parse(name);
  if (parsed?.kind === 'regular' && ctx.state.keepCkptIds.includes(parsed.step)) return true;
  if (parsed?.kind === 'regular' && ctx.state.kept.some((k) => k.step === parsed.step)) return true;
  return ctx.bests.isBest(name);
}

/** Restores the engine's state from runtime info and finishes what a crash interrupted. */
export async function restoreRunState(ctx: RestoreContext): Promise<void> {
  const { run, runner, config, bests, state } = ctx;
  const { layout } = run;
  const info = runner.runtimeInfo;
  const warnForeign = (key: string, value: unknown) =>
    runner.logger.warn(
      `Runtime info "${key}" names ${JSON.stringify(value)}, which is not a checkpoint of this run (${layout.outDir}): it is kept and never deleted by this run.`,
    );
  const foreignBests = new Set<string>();
  for (const metric of bests.metrics ?? []) {
    const key = bests.keys(metric).ckpt;
    const value = info.get(key);
    const name = layout.ownedCheckpointName(value);
    if (value !== undefined && value !== null && name === undefined) {
      warnForeign(key, value);
      foreignBests.add(metric);
    }
    bests.names.set(metric, name);
    if (value !== undefined) info.set(key, name ?? null);
  }
  bests.loadRanked(
    info,
    (value) => layout.ownedCheckpointName(value),
    (key) =>
      runner.logger.warn(
        `Runtime info "${key}" is not a list of ranked bests of this run: the one best is kept from "best_ckpt".`,
      ),
  );
  const storedKept = info.get<unknown>(KEPT_FOREVER_KEY);
  state.kept = parseKeptForever(storedKept) ?? [];
  if (storedKept !== undefined && parseKeptForever(storedKept) === undefined) {
    runner.logger.warn(
      `Runtime info "${KEPT_FOREVER_KEY}" is not a list of kept checkpoints (${JSON.stringify(storedKept)}): ignored.`,
    );
  }
  if (keepsForever(config.retention)) info.set(KEPT_FOREVER_KEY, state.kept);
  const resumed = info.has('last_ckpt');
  const lastValue = info.get('last_ckpt');
  state.lastCkpt = layout.ownedCheckpointName(lastValue);
  if (resumed && state.lastCkpt === undefined) warnForeign('last_ckpt', lastValue);
  if (state.lastCkpt !== undefined) info.set('last_ckpt', state.lastCkpt);

  const storedIds = info.get<unknown>('keep_ckpt_ids');
  const ids = parseKeptSteps(storedIds) ?? [];
  if (storedIds !== undefined && parseKeptSteps(storedIds) === undefined) {
    runner.logger.warn(`Runtime info "keep_ckpt_ids" is not a list of steps (${JSON.stringify(storedIds)}): ignored.`);
  }
  const pending = info.get<unknown>(PENDING_REMOVALS_KEY);
  info.set(PENDING_REMOVALS_KEY, []);
  if (config.maxKeepCkpts > 0) {
    const { keep, dropped } = trimKept(ids, config.retention);
    for (const step of dropped) if (runner.rank === 0) await ctx.remove(layout.regularName(step), 'old checkpoint');
    state.keepCkptIds = keep;
  }
  if (runner.rank !== 0) return;
  // (ours) Finish deletions that a crash interrupted: the checkpoint we resume from lists them.
  for (const value of Array.isArray(pending) ? pending : []) {
    const name = layout.ownedCheckpointName(value);
    if (name === undefined) warnForeign(PENDING_REMOVALS_KEY, value);
    else if (!isCurrent(ctx, name)) await ctx.remove(name, 'checkpoint left by an interrupted save');
  }
  if (ctx.leaseHeld) {
    // Under the lease no other writer of this run is alive: what killed writes left is garbage.
    const removed = await run.removeIncompleteWrites();
    if (removed > 0) runner.logger.info(`Removed ${removed} unfinished write(s) left by a killed save in ${layout.outDir}.`);
  }
  if (resumed) await removeOrphans(ctx, foreignBests);
  // (ours) What a crash left unreferenced (objects of a save whose manifest never landed, or of deleted checkpoints).
  if (ctx.leaseHeld && config.layout.kind === 'incremental') await collectLogged(run, runner.logger);
}

/**
 * (ours) On resume, a crash may have left checkpoints no runtime info names: a best written
 * just before the crash, or a regular checkpoint past the resumed step whose pointer never
 * moved. They are deleted so that one best per metric and `maxKeepCkpts` regular ones remain.
 * One listing, at resume only.
 */
async function removeOrphans(ctx: RestoreContext, foreignBests: ReadonlySet<string>): Promise<void> {
  const { run, runner, config } = ctx;
  const metrics = ctx.bests.metrics ?? [];
  const step = config.byEpoch ? runner.epoch : runner.iter;
  const parsing = run.layout.withMetrics(metrics);
  const orphans: { name: string; what: string }[] = [];
  for await (const entry of run.store.list(run.outDir, { signal: config.signal })) {
    const parsed = parsing.parse(entry.name);
    if (!parsed || isCurrent(ctx, entry.name)) continue;
    if (parsed.kind === 'best') {
      // With 'auto' the metric is unknown until the first evaluation, but there is only one: any best is its.
      const metric = metrics.includes('auto') ? 'auto' : parsed.metric;
      if (metrics.includes(metric) && !foreignBests.has(metric)) {
        orphans.push({ name: entry.name, what: `unreferenced best checkpoint of ${metric}` });
      }
    } else if (parsed.kind === 'regular' && config.maxKeepCkpts > 0 && parsed.step > step) {
      orphans.push({ name: entry.name, what: 'checkpoint of a save the pointer never reached' });
    }
  }
  for (const orphan of orphans) await ctx.remove(orphan.name, orphan.what);
}
