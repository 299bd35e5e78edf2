// The checkpoint policy engine: a port of MMEngine's CheckpointHook, rule for rule
// as written in docs/checkpoint-policy.md, running on any StorageBackend. Where the
// spec says (ours) we order writes so a crash never loses the last good checkpoint:
// the new checkpoint is complete before the pointer moves, and the pointer moves
// before anything old is deleted. The hook decides; its rooms do the rest: the
// schedule (schedule.ts), rotation (retention.ts), bests (bests.ts), the save queue
// (save-queue.ts), resume (restore.ts), and every store operation through the one
// `Run` it opens for the work dir (run/run.ts).

import { absoluteWorkDir, type RunLayout } from '../run/layout.js';
import type { RunLease } from '../run/lease.js';
import { Run } from '../run/run.js';
import type { StorageBackend } from '../store/contract.js';
import { SavepointError } from '../store/errors.js';
import { redact } from '../store/redact.js';
import { BestTracker } from './bests.js';
import { type CheckpointHookOptions, type ResolvedCheckpointHookOptions, resolveCheckpointHookOptions } from './options.js';
import { PENDING_REMOVALS_KEY, restoreRunState } from './restore.js';
import { type RetentionState, rotate } from './retention.js';
import type { Runner } from './runner.js';
import { SaveQueue, type SaveStep } from './save-queue.js';
import { isSaveDue } from './schedule.js';

type Position = { epoch: number; iter: number };

export class CheckpointHook {
  readonly config: Readonly<ResolvedCheckpointHookOptions>;
  readonly #bests: BestTracker;
  readonly #queue: SaveQueue;
  readonly #state: RetentionState = { keepCkptIds: [], lastCkpt: undefined };
  /** The run this hook writes, opened once for its work dir (resume and `beforeTrain` share it). */
  #run: Run | undefined;
  /** The run's layout from `beforeTrain` on (kept after `close()`: names only, no I/O). */
  #layout: RunLayout | undefined;
  #lease: RunLease | undefined;

  constructor(options: CheckpointHookOptions = {}) {
    this.config = Object.freeze(resolveCheckpointHookOptions(options));
    this.#bests = new BestTracker(this.config.saveBest);
    this.#queue = new SaveQueue(this.config);
  }

  get filenameTmpl(): string {
    return this.config.filenameTmpl;
  }
  get greaterKeys(): readonly string[] {
    return this.config.greaterKeys;
  }
  get lessKeys(): readonly string[] {
    return this.config.lessKeys;
  }
  get publishedKeys(): readonly string[] | undefined {
    return this.config.publishedKeys;
  }
  /** The folder checkpoints go to, known after `beforeTrain`. */
  get outDir(): string | undefined {
    return this.#layout?.outDir;
  }
  /** The run's names and folders, known after `beforeTrain`. */
  get layout(): RunLayout | undefined {
    return this.#layout;
  }
  get keepCkptIds(): readonly number[] {
    return this.#state.keepCkptIds;
  }
  /** Current best checkpoint path per metric. */
  get bestCheckpoints(): ReadonlyMap<string, string | undefined> {
    const layout = this.layout;
    return new Map([...this.#bests.names].map(([metric, name]) => [metric, name && layout ? layout.pathOf(name) : name]));
  }
  /** Saves in flight (always 0 without `asyncSave`). */
  get pendingSaves(): number {
    return this.#queue.pending;
  }

  /**
   * The run in `workDir` with these options, opened once: a resume that reads the pointer
   * before `beforeTrain` and the hook itself share its stores. No I/O.
   */
  openRun(workDirInput: string, workDirBackend?: StorageBackend): Run {
    const workDir = absoluteWorkDir(workDirInput);
    if (this.#run?.workDir === workDir) return this.#run;
    const run = Run.open(workDir, {
      ...(this.config.store.kind === 'instance'
        ? { backend: this.config.store.backend }
        : { backendArgs: this.config.store.backendArgs }),
      workDirBackend,
      outDir: this.config.outDir,
      filenameTmpl: this.config.filenameTmpl,
      metrics: this.#bests.metrics,
      signal: this.config.signal,
    });
    // The first run opened is the hook's; another work dir (a layout asked for) gets its own.
    this.#run ??= run;
    return run;
  }

  /** The layout a run in `workDir` has with these options (see `openRun`). */
  layoutFor(workDir: string, workDirBackend?: StorageBackend): RunLayout {
    return this.openRun(workDir, workDirBackend).layout;
  }

  #requireRun(): Run {
    if (!this.#layout || !this.#run) {
      throw new SavepointError(
        'CONFIG',
        'CheckpointHook used before beforeTrain(runner): call it first so that the store is chosen',
      );
    }
    // A writer whose lease was taken over must stop: two writers would delete each other's checkpoints.
    if (this.#lease?.lost) throw this.#lease.lost;
    return this.#run;
  }

  async beforeTrain(runner: Runner): Promise<void> {
    const run = this.openRun(runner.workDir);
    this.#run = run;
    this.#layout = run.layout;
    // Redacted: a path can carry a credential (a SAS query string), refused by the store below.
    runner.logger.info(`Checkpoints will be saved to ${redact(run.outDir)}.`);
    try {
      if (runner.rank === 0 && this.config.leaseTtlMs !== undefined) {
        this.#lease = await run.acquireLease({
          ttlMs: this.config.leaseTtlMs,
          purpose: 'training',
          onTakeover: (_previous, why) => runner.logger.warn(`Taking over the run's lease ${run.layout.leasePath}: ${why}.`),
        });
        this.#lease.startRenewing();
      }
      if (runner.rank === 0) await run.claimOutDir();
      await restoreRunState({
        run,
        runner,
        config: this.config,
        bests: this.#bests,
        state: this.#state,
        leaseHeld: this.#lease !== undefined,
        remove: (name, what) => this.#removeLogged(runner, name, what),
      });
    } catch (error) {
      await this.close().catch(() => {});
      throw error;
    }
  }

  async #removeLogged(runner: Runner, name: string, what: string): Promise<void> {
    const run = this.#requireRun();
    const path = run.layout.pathOf(name);
    const result = await run.remove(name);
    if (result === 'removed') runner.logger.info(`The ${what} ${path} is removed`);
    else if (result === 'not-a-checkpoint') {
      runner.logger.warn(`${path} is named like a checkpoint of this run but is a folder holding other files: it is kept.`);
    }
  }

  async afterTrainEpoch(runner: Runner): Promise<void> {
    this.#queue.raise();
    if (this.config.byEpoch && isSaveDue(this.config, runner.epoch, runner.maxEpochs)) {
      runner.logger.info(`Saving checkpoint at ${runner.epoch} epochs`);
      await this.#queue.savePoint((steps) => this.#saveRegular(runner, runner.epoch, [], steps));
    }
  }

  async afterTrainIter(runner: Runner): Promise<void> {
    this.#queue.raise();
    if (!this.config.byEpoch && isSaveDue(this.config, runner.iter, runner.maxIters)) {
      runner.logger.info(`Saving checkpoint at ${runner.iter} iterations`);
      await this.#queue.savePoint((steps) => this.#saveRegular(runner, runner.iter, [], steps));
    }
  }

  /**
   * Waits until every save in flight has committed (and deleted what it replaces), then
   * raises the first background failure, if any. A no-op for synchronous saves.
   */
  async flush(): Promise<void> {
    await this.#queue.flush();
  }

  /** Regular save of `step`: write, move the pointer, then delete what rotation dropped and `extraRemovals`. */
  async #saveRegular(runner: Runner, step: number, extraRemovals: string[], steps: SaveStep[]): Promise<void> {
    const run = this.#requireRun();
    const info = runner.runtimeInfo;
    const { keep, dropped } = rotate(this.#state.keepCkptIds, step, this.config.maxKeepCkpts);
    const removals = [...extraRemovals, ...dropped.map((s) => run.layout.regularName(s))];
    if (this.config.maxKeepCkpts > 0) info.set('keep_ckpt_ids', keep);
    const name = run.layout.regularName(step);
    info.set('last_ckpt', name);
    info.set(PENDING_REMOVALS_KEY, removals);
    this.#state.keepCkptIds = keep;
    this.#state.lastCkpt = name;
    if (runner.rank === 0) {
      const { saveOptimizer: optimizer, saveParamScheduler: scheduler } = this.config;
      const checkpoint = await this.#snapshot(runner, { optimizer, scheduler });
      steps.push(() => run.save(name, checkpoint, this.config.layout));
      steps.push(() => run.movePointer(name));
      for (const [i, old] of removals.entries()) {
        const what = i < extraRemovals.length ? 'previous best checkpoint' : 'old checkpoint';
        steps.push(() => this.#removeLogged(runner, old, what));
      }
    }
    info.set(PENDING_REMOVALS_KEY, []);
  }

  /** The checkpoint as it is now (copied with `asyncSave`: see SaveQueue.snapshot). */
  #snapshot(runner: Runner, include: { optimizer: boolean; scheduler: boolean }) {
    return this.#queue.snapshot(async () => {
      const checkpoint: Record<string, unknown> = {
        meta: { ...(runner.extraMeta?.() ?? {}), epoch: runner.epoch, iter: runner.iter } satisfies Position,
        state_dict: await runner.modelState(),
        message_hub: { runtime_info: runner.runtimeInfo.toJSON() },
      };
      if (include.optimizer && runner.optimizerState) checkpoint.optimizer = await runner.optimizerState();
      if (include.scheduler && runner.schedulerState) checkpoint.param_schedulers = await runner.schedulerState();
      return checkpoint;
    });
  }

  async afterValEpoch(runner: Runner, metrics: Record<string, number | null | undefined>): Promise<void> {
    this.#queue.raise();
    if (!metrics || Object.keys(metrics).length === 0) {
      runner.logger.warn(
        'Since `metrics` is an empty dict, the behavior to save the best checkpoint will be skipped in this evaluation.',
      );
      return;
    }
    if (!this.#bests.metrics) return;
    this.#requireRun();
    this.#bests.track(metrics, this.config.greaterKeys, this.config.lessKeys);
    await this.#queue.savePoint((steps) => this.#saveBests(runner, metrics, steps));
  }

  /** The best-checkpoint part of `afterValEpoch`: state updated now, store operations as steps. */
  async #saveBests(runner: Runner, metrics: Record<string, number | null | undefined>, steps: SaveStep[]): Promise<void> {
    const run = this.#requireRun();
    const { byEpoch } = this.config;
    const step = byEpoch ? runner.epoch : runner.iter;
    const improvements = this.#bests.improve(metrics, runner.runtimeInfo, (metric) => run.layout.bestName(metric, step));
    const oldBests: string[] = [];
    for (const { metric, score, name, previous } of improvements) {
      if (runner.rank === 0) {
        const checkpoint = await this.#snapshot(runner, { optimizer: false, scheduler: false });
        steps.push(() => run.save(name, checkpoint, this.config.layout));
      }
      if (previous && previous !== name) oldBests.push(previous);
      runner.logger.info(
        `The best checkpoint with ${score.toFixed(4)} ${metric} at ${step} ${byEpoch ? 'epoch' : 'iter'} ${this.config.asyncSave ? 'is being saved' : 'is saved'} to ${name}.`,
      );
      if (this.#state.lastCkpt === undefined && oldBests.length > 0 && runner.rank === 0) {
        // (ours) No regular checkpoint to re-save: once the new best is committed, the old one can go.
        const old = oldBests.pop() as string;
        steps.push(() => this.#removeLogged(runner, old, 'previous best checkpoint'));
      }
    }
    if (improvements.length > 0 && this.#state.lastCkpt !== undefined) {
      // Re-save so the runtime info inside the newest regular checkpoint names the new best;
      // the old bests are deleted after that save commits and the pointer moves.
      await this.#saveRegular(runner, step, oldBests, steps);
    }
  }

  async afterTrain(runner: Runner): Promise<void> {
    try {
      await this.flush();
      const run = this.#requireRun();
      if (!this.config.publishedKeys || runner.rank !== 0) return;
      const targets: string[] = [];
      if (this.config.saveLast && this.#state.lastCkpt !== undefined) targets.push(this.#state.lastCkpt);
      for (const name of this.#bests.names.values()) if (name) targets.push(name);
      for (const name of targets) {
        const { path: published, removedKeys } = await run.publish(name, this.config.publishedKeys);
        if (removedKeys.length > 0) {
          runner.logger.info(
            `Key ${JSON.stringify(removedKeys)} will be removed because they are not found in publishedKeys. If you want to keep them, please set \`${JSON.stringify(removedKeys)}\` in publishedKeys`,
          );
        }
        runner.logger.info(`The checkpoint (${run.layout.pathOf(name)}) is published to ${published}.`);
      }
    } finally {
      await this.close();
    }
  }

  /**
   * Releases the run's lease and the stores the hook opened. `afterTrain` calls it; a loop
   * that stops early (or fails) calls it so that the next job does not wait for the lease.
   */
  async close(): Promise<void> {
    // The lease is held until no save of this run is writing any more. A failure they
    // leave is kept for `flush()`: close runs on error paths and must not mask the cause.
    await this.#queue.drain();
    const lease = this.#lease;
    this.#lease = undefined;
    try {
      await lease?.release({ signal: this.config.signal });
    } finally {
      // The stores the run built are closed; its layout (names, no I/O) stays readable.
      const run = this.#run;
      this.#run = undefined;
      await run?.close();
    }
  }
}
