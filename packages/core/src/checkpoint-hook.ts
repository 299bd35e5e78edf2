// The checkpoint policy engine: a port of MMEngine's CheckpointHook, rule for rule
// as written in docs/checkpoint-policy.md, running on any StorageBackend. Where
// the spec says (ours) we order writes so a crash never loses the last good
// checkpoint: the new checkpoint is complete before the pointer moves, and the
// pointer moves before anything old is deleted. Every path read back from runtime
// info goes through the run layout: only this run's own names are ever deleted.

import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  type CheckpointHookOptions,
  expandRules,
  type ResolvedCheckpointHookOptions,
  type Rule,
  resolveCheckpointHookOptions,
} from './checkpoint-hook-options.js';
import {
  publishCheckpoint,
  removeCheckpoint,
  saveCheckpointDir,
  saveCheckpointFile,
  writeLastCheckpoint,
} from './checkpoint-io.js';
import { AbortedError, ConfigError, SavepointError } from './errors.js';
import { RunLease } from './lease.js';
import { redact } from './redact.js';
import { getBackend, uriScheme } from './registry.js';
import { absoluteWorkDir, RunLayout } from './run-layout.js';
import type { Runner } from './runner.js';
import type { StorageBackend } from './storage-backend.js';
import { type Checkpoint, SnapshotPool, snapshotCheckpoint, type TypedArray } from './tensor.js';

/** One store operation of a save point, run in order after the ones before it. */
type SaveStep = () => Promise<void>;

export {
  CHECKPOINT_HOOK_OPTION_NAMES,
  type CheckpointHookOptions,
  DEFAULT_GREATER_KEYS,
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_LESS_KEYS,
  inferRule,
  type ResolvedCheckpointHookOptions,
  type Rule,
  resolveCheckpointHookOptions,
} from './checkpoint-hook-options.js';

/** (ours) Runtime-info key: names the save that carries it deletes after committing; re-issued on resume. */
export const PENDING_REMOVALS_KEY = 'pending_removals';

const isBetter: Record<Rule, (a: number, b: number) => boolean> = {
  greater: (a, b) => a > b,
  less: (a, b) => a < b,
};
const initialBest: Record<Rule, number> = { greater: -Infinity, less: Infinity };

export class CheckpointHook {
  readonly config: Readonly<ResolvedCheckpointHookOptions>;

  /** Metric names (or `['auto']` until the first evaluation) and their rules. */
  #metrics: string[] | undefined;
  #rules: (Rule | undefined)[] = [];
  #layout: RunLayout | undefined;
  #lease: RunLease | undefined;
  #keepCkptIds: number[] = [];
  /** Name (inside outDir) of the current best per metric. */
  #bestNames = new Map<string, string | undefined>();
  /** Name of the last regular checkpoint of this run, restored on resume (the reference's `last_ckpt`). */
  #lastCkpt: string | undefined;
  /** (asyncSave) Save points in flight, oldest first; each runs after the one before it. */
  #inFlight: Promise<void>[] = [];
  /** (asyncSave) The first background failure not yet raised to the caller. */
  #backgroundFailure: { error: unknown } | undefined;
  /** (asyncSave) Snapshot buffers of finished saves, reused by the next snapshot. */
  readonly #snapshotPool = new SnapshotPool();
  /** (asyncSave) Buffers the save point being planned copied into, released when its save ends. */
  #planBuffers: TypedArray[] = [];

  constructor(options: CheckpointHookOptions = {}) {
    this.config = Object.freeze(resolveCheckpointHookOptions(options));
    this.#metrics = this.config.saveBest ? [...this.config.saveBest.metrics] : undefined;
    this.#rules = this.config.saveBest ? [...this.config.saveBest.rules] : [];
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
    return this.#keepCkptIds;
  }

  /** Current best checkpoint path per metric. */
  get bestCheckpoints(): ReadonlyMap<string, string | undefined> {
    const layout = this.#layout;
    return new Map([...this.#bestNames].map(([metric, name]) => [metric, name && layout ? layout.pathOf(name) : name]));
  }

  /**
   * The layout a run in `workDir` has with these options: its folders, stores and names.
   * No I/O. Resume uses it to decide whether the pointer names a checkpoint of this run.
   */
  layoutFor(workDirInput: string, workDirBackend?: StorageBackend): RunLayout {
    const workDir = absoluteWorkDir(workDirInput);
    const { store: choice, outDir: outDirOption } = this.config;
    const backendArgs = choice.kind === 'registry' ? choice.backendArgs : {};
    let outDir = outDirOption ?? workDir;
    const store = choice.kind === 'instance' ? choice.backend : getBackend(outDir, backendArgs);
    if (outDirOption !== undefined && outDirOption !== workDir) {
      const base = workDir.replace(/[\\/]+$/, '');
      outDir = store.joinPath(outDir, base.slice(Math.max(base.lastIndexOf('/'), base.lastIndexOf('\\')) + 1));
    }
    const workDirStore =
      workDirBackend ??
      (outDirOption === undefined || uriScheme(workDir) === uriScheme(outDirOption) ? store : getBackend(workDir));
    return new RunLayout({
      workDir,
      outDir,
      store,
      workDirStore,
      filenameTmpl: this.config.filenameTmpl,
      metrics: this.#metrics,
    });
  }

  #bestKeys(metric: string): { score: string; ckpt: string } {
    return (this.#metrics?.length ?? 0) === 1
      ? { score: 'best_score', ckpt: 'best_ckpt' }
      : { score: `best_score_${metric}`, ckpt: `best_ckpt_${metric}` };
  }

  #requireLayout(): RunLayout {
    if (!this.#layout) {
      throw new SavepointError(
        'CONFIG',
        'CheckpointHook used before beforeTrain(runner): call it first so that the store is chosen',
      );
    }
    // A writer whose lease was taken over must stop: two writers would delete each other's checkpoints.
    if (this.#lease?.lost) throw this.#lease.lost;
    return this.#layout;
  }

  async beforeTrain(runner: Runner): Promise<void> {
    const layout = this.layoutFor(runner.workDir);
    this.#layout = layout;
    // Redacted: a path can carry a credential (a SAS query string), refused by the store below.
    runner.logger.info(`Checkpoints will be saved to ${redact(layout.outDir)}.`);
    if (runner.rank === 0 && this.config.leaseTtlMs !== undefined) {
      this.#lease = await RunLease.acquire(layout.workDirStore, layout.leasePath, {
        ttlMs: this.config.leaseTtlMs,
        purpose: 'training',
        signal: this.config.signal,
        onTakeover: (_previous, why) => runner.logger.warn(`Taking over the run's lease ${layout.leasePath}: ${why}.`),
      });
      this.#lease.startRenewing();
    }
    try {
      await this.#restore(runner, layout);
    } catch (error) {
      await this.close().catch(() => {});
      throw error;
    }
  }

  /** Reads what the run left in runtime info, trusting only this run's own names, and finishes interrupted deletions. */
  async #restore(runner: Runner, layout: RunLayout): Promise<void> {
    const info = runner.runtimeInfo;
    const warnForeign = (key: string, value: unknown) =>
      runner.logger.warn(
        `Runtime info "${key}" names ${JSON.stringify(value)}, which is not a checkpoint of this run (${layout.outDir}): it is kept and never deleted by this run.`,
      );
    const foreignBests = new Set<string>();
    for (const metric of this.#metrics ?? []) {
      const key = this.#bestKeys(metric).ckpt;
      const value = info.get(key);
      const name = layout.ownedCheckpointName(value);
      if (value !== undefined && value !== null && name === undefined) {
        warnForeign(key, value);
        foreignBests.add(metric);
      }
      this.#bestNames.set(metric, name);
      if (value !== undefined) info.set(key, name ?? null);
    }
    const resumed = info.has('last_ckpt');
    const lastValue = info.get('last_ckpt');
    this.#lastCkpt = layout.ownedCheckpointName(lastValue);
    if (resumed && this.#lastCkpt === undefined) warnForeign('last_ckpt', lastValue);
    if (this.#lastCkpt !== undefined) info.set('last_ckpt', this.#lastCkpt);

    const storedIds = info.get<unknown>('keep_ckpt_ids');
    const ids = Array.isArray(storedIds) && storedIds.every((id) => Number.isSafeInteger(id) && id >= 0) ? [...storedIds] : [];
    if (storedIds !== undefined && ids.length !== (storedIds as unknown[]).length) {
      runner.logger.warn(`Runtime info "keep_ckpt_ids" is not a list of steps (${JSON.stringify(storedIds)}): ignored.`);
    }
    const pending = info.get<unknown>(PENDING_REMOVALS_KEY);
    info.set(PENDING_REMOVALS_KEY, []);
    if (this.config.maxKeepCkpts > 0) {
      while (ids.length > this.config.maxKeepCkpts) {
        const step = ids.shift() as number;
        if (runner.rank === 0) await this.#removeLogged(runner, layout.regularName(step), 'old checkpoint');
      }
      this.#keepCkptIds = ids;
    }
    if (runner.rank !== 0) return;
    // (ours) Finish deletions that a crash interrupted: the checkpoint we resume from lists them.
    for (const value of Array.isArray(pending) ? pending : []) {
      const name = layout.ownedCheckpointName(value);
      if (name === undefined) warnForeign(PENDING_REMOVALS_KEY, value);
      else if (!this.#isCurrent(name)) await this.#removeLogged(runner, name, 'checkpoint left by an interrupted save');
    }
    if (this.#lease) {
      // Under the lease no other writer of this run is alive: what killed writes left is garbage.
      const removed = (await layout.store.removeIncompleteWrites?.(layout.outDir, { signal: this.config.signal })) ?? 0;
      if (removed > 0) runner.logger.info(`Removed ${removed} unfinished write(s) left by a killed save in ${layout.outDir}.`);
    }
    if (resumed) await this.#removeOrphans(runner, layout, foreignBests);
  }

  /** Whether `name` is something the run still needs: its last regular checkpoint, a kept one, or a current best. */
  #isCurrent(name: string): boolean {
    if (name === this.#lastCkpt) return true;
    const parsed = this.#layout?.parse(name);
    if (parsed?.kind === 'regular' && this.#keepCkptIds.includes(parsed.step)) return true;
    return [...this.#bestNames.values()].includes(name);
  }

  /**
   * (ours) On resume, a crash may have left checkpoints no runtime info names: a best written
   * just before the crash, or a regular checkpoint past the resumed step whose pointer never
   * moved. They are deleted so that one best per metric and `maxKeepCkpts` regular ones remain.
   * One listing, at resume only.
   */
  async #removeOrphans(runner: Runner, layout: RunLayout, foreignBests: ReadonlySet<string>): Promise<void> {
    const metrics = this.#metrics ?? [];
    const step = this.config.byEpoch ? runner.epoch : runner.iter;
    const parsing = layout.withMetrics(metrics);
    const orphans: { name: string; what: string }[] = [];
    for await (const entry of layout.store.list(layout.outDir, { signal: this.config.signal })) {
      const parsed = parsing.parse(entry.name);
      if (!parsed || this.#isCurrent(entry.name)) continue;
      if (parsed.kind === 'best') {
        // With 'auto' the metric is unknown until the first evaluation, but there is only one: any best is its.
        const metric = metrics.includes('auto') ? 'auto' : parsed.metric;
        if (metrics.includes(metric) && !foreignBests.has(metric)) {
          orphans.push({ name: entry.name, what: `unreferenced best checkpoint of ${metric}` });
        }
      } else if (parsed.kind === 'regular' && this.config.maxKeepCkpts > 0 && parsed.step > step) {
        orphans.push({ name: entry.name, what: 'checkpoint of a save the pointer never reached' });
      }
    }
    for (const orphan of orphans) await this.#removeLogged(runner, orphan.name, orphan.what);
  }

  async #removeLogged(runner: Runner, name: string, what: string): Promise<void> {
    const layout = this.#requireLayout();
    const path = layout.pathOf(name);
    if (await removeCheckpoint(layout.store, path, { signal: this.config.signal }))
      runner.logger.info(`The ${what} ${path} is removed`);
  }

  async afterTrainEpoch(runner: Runner): Promise<void> {
    this.#raiseBackgroundFailure();
    if (!this.config.byEpoch) return;
    if (this.#dueAt(runner.epoch, runner.maxEpochs)) {
      runner.logger.info(`Saving checkpoint at ${runner.epoch} epochs`);
      await this.#savePoint(async (steps) => {
        await this.#saveRegular(runner, runner.epoch, { epoch: runner.epoch, iter: runner.iter }, [], steps);
      });
    }
  }

  async afterTrainIter(runner: Runner): Promise<void> {
    this.#raiseBackgroundFailure();
    if (this.config.byEpoch) return;
    if (this.#dueAt(runner.iter, runner.maxIters)) {
      runner.logger.info(`Saving checkpoint at ${runner.iter} iterations`);
      await this.#savePoint(async (steps) => {
        await this.#saveRegular(runner, runner.iter, { epoch: runner.epoch, iter: runner.iter }, [], steps);
      });
    }
  }

  /**
   * Waits until every save in flight has committed (and deleted what it replaces), then
   * raises the first background failure, if any. A no-op for synchronous saves.
   */
  async flush(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
    this.#raiseBackgroundFailure();
  }

  /** Saves in flight (always 0 without `asyncSave`). */
  get pendingSaves(): number {
    return this.#inFlight.length;
  }

  #raiseBackgroundFailure(): void {
    const failure = this.#backgroundFailure;
    if (!failure) return;
    this.#backgroundFailure = undefined;
    throw failure.error;
  }

  /**
   * One save point: `plan` decides what to write and updates the run's state at once,
   * collecting the store operations as steps. Without `asyncSave` the steps run now;
   * with it they run in the background after every earlier save point's steps, so
   * saves commit in order and each keeps the commit-before-delete order. A failed save
   * point cancels the ones queued after it.
   */
  async #savePoint(plan: (steps: SaveStep[]) => Promise<void>): Promise<void> {
    const steps: SaveStep[] = [];
    this.#planBuffers = [];
    await plan(steps);
    const buffers = this.#planBuffers;
    if (steps.length === 0) {
      this.#snapshotPool.release(buffers);
      return;
    }
    if (!this.config.asyncSave) {
      for (const step of steps) await step();
      return;
    }
    const previous = this.#inFlight.at(-1) ?? Promise.resolve();
    const job: Promise<void> = previous
      // Start on a later turn of the event loop: the training loop resumes first.
      .then(() => yieldToEventLoop())
      .then(async () => {
        if (this.#backgroundFailure) return; // an earlier save failed: this one is cancelled
        const signal = this.config.signal;
        if (signal?.aborted) {
          throw new AbortedError("save cancelled before it started: the hook's signal was aborted", { cause: signal.reason });
        }
        for (const step of steps) await step();
      })
      .catch((error: unknown) => {
        this.#backgroundFailure ??= { error };
      })
      .finally(() => {
        // Nothing reads this save's snapshot any more: the next one reuses its buffers.
        this.#snapshotPool.release(buffers);
        this.#inFlight.splice(this.#inFlight.indexOf(job), 1);
      });
    this.#inFlight.push(job);
  }

  /** (asyncSave) Blocks while `maxPendingSaves` save points are in flight, then raises a failure they left. */
  async #waitForCapacity(): Promise<void> {
    while (this.#inFlight.length >= this.config.maxPendingSaves) await this.#inFlight[0];
    this.#raiseBackgroundFailure();
  }

  #dueAt(step: number, last: number): boolean {
    const { interval, saveBegin, saveLast } = this.config;
    const byInterval = interval > 0 && step >= saveBegin && (step - saveBegin) % interval === 0;
    return byInterval || (saveLast && step === last);
  }

  /** Regular save of `step`: write, move the pointer, then delete what rotation dropped and `extraRemovals`. */
  async #saveRegular(
    runner: Runner,
    step: number,
    meta: { epoch: number; iter: number },
    extraRemovals: string[],
    steps: SaveStep[],
  ): Promise<void> {
    const layout = this.#requireLayout();
    const info = runner.runtimeInfo;
    const removals = [...extraRemovals];
    const ids = [...this.#keepCkptIds];
    if (this.config.maxKeepCkpts > 0) {
      if (!(ids.length > 0 && ids[ids.length - 1] === step)) {
        if (ids.length === this.config.maxKeepCkpts) removals.push(layout.regularName(ids.shift() as number));
        ids.push(step);
      }
      info.set('keep_ckpt_ids', ids);
    }
    const name = layout.regularName(step);
    info.set('last_ckpt', name);
    info.set(PENDING_REMOVALS_KEY, removals);
    this.#keepCkptIds = ids;
    this.#lastCkpt = name;

    if (runner.rank === 0) {
      const checkpoint = await this.#snapshot(runner, meta, {
        optimizer: this.config.saveOptimizer,
        scheduler: this.config.saveParamScheduler,
      });
      const signal = this.config.signal;
      steps.push(() => this.#write(name, checkpoint));
      steps.push(() => writeLastCheckpoint(layout.workDirStore, layout.workDir, layout.pointerText(name), { signal }));
      for (const [i, old] of removals.entries()) {
        const what = i < extraRemovals.length ? 'previous best checkpoint' : 'old checkpoint';
        steps.push(() => this.#removeLogged(runner, old, what));
      }
    }
    info.set(PENDING_REMOVALS_KEY, []);
  }

  /**
   * The checkpoint as it is now. With `asyncSave` its tensors are copied, so that training
   * may change them while the upload runs: that copy is the only extra memory a save holds.
   * The copy waits until fewer than `maxPendingSaves` saves are in flight, so at most that
   * many copies exist (and a validation that saves nothing never waits).
   */
  async #snapshot(
    runner: Runner,
    meta: { epoch: number; iter: number },
    include: { optimizer: boolean; scheduler: boolean },
  ): Promise<Checkpoint> {
    if (this.config.asyncSave) await this.#waitForCapacity();
    const checkpoint: Record<string, unknown> = {
      meta: { ...(runner.extraMeta?.() ?? {}), ...meta },
      state_dict: await runner.modelState(),
      message_hub: { runtime_info: runner.runtimeInfo.toJSON() },
    };
    if (include.optimizer && runner.optimizerState) checkpoint.optimizer = await runner.optimizerState();
    if (include.scheduler && runner.schedulerState) checkpoint.param_schedulers = await runner.schedulerState();
    if (!this.config.asyncSave) return checkpoint as Checkpoint;
    return snapshotCheckpoint(checkpoint, (data) => {
      const copy = this.#snapshotPool.copy(data);
      this.#planBuffers.push(copy);
      return copy;
    }) as Checkpoint;
  }

  async #write(name: string, checkpoint: Checkpoint): Promise<void> {
    const layout = this.#requireLayout();
    const path = layout.pathOf(name);
    const { layout: shape, signal, codec, shardConcurrency } = this.config;
    if (shape.kind === 'directory') {
      await saveCheckpointDir(layout.store, path, checkpoint, {
        maxShardBytes: shape.maxShardBytes,
        concurrency: shardConcurrency,
        signal,
      });
    } else {
      await saveCheckpointFile(layout.store, path, checkpoint, { codec, signal });
    }
  }

  async afterValEpoch(runner: Runner, metrics: Record<string, number | null | undefined>): Promise<void> {
    this.#raiseBackgroundFailure();
    if (!metrics || Object.keys(metrics).length === 0) {
      runner.logger.warn(
        'Since `metrics` is an empty dict, the behavior to save the best checkpoint will be skipped in this evaluation.',
      );
      return;
    }
    if (!this.#metrics) return;
    this.#requireLayout();
    if (this.#metrics.includes('auto')) {
      const first = Object.keys(metrics)[0] as string;
      this.#rules = expandRules(this.#rules, [first], this.config.greaterKeys, this.config.lessKeys);
      this.#metrics = [first];
      this.#bestNames.set(first, this.#bestNames.get('auto'));
      this.#bestNames.delete('auto');
    }
    // As the reference: a tracked metric the evaluation does not return is a mistake (a typo), not a skip.
    const absent = this.#metrics.filter((metric) => !Object.hasOwn(metrics, metric));
    if (absent.length > 0) {
      throw new ConfigError(
        `saveBest metric ${absent.map((m) => JSON.stringify(m)).join(', ')} is not among the evaluation's results (${Object.keys(metrics).join(', ')}); check the name in saveBest`,
        { option: 'saveBest' },
      );
    }
    const tracked = this.#metrics;
    await this.#savePoint((steps) => this.#saveBests(runner, metrics, tracked, steps));
  }

  /** The best-checkpoint part of `afterValEpoch`: state updated now, store operations as steps. */
  async #saveBests(
    runner: Runner,
    metrics: Record<string, number | null | undefined>,
    tracked: readonly string[],
    steps: SaveStep[],
  ): Promise<void> {
    const layout = this.#requireLayout();
    const { byEpoch } = this.config;
    const step = byEpoch ? runner.epoch : runner.iter;
    const meta = { epoch: runner.epoch, iter: runner.iter };
    const info = runner.runtimeInfo;
    const oldBests: string[] = [];
    let bestUpdated = false;
    for (const [i, metric] of tracked.entries()) {
      const rule = this.#rules[i] as Rule;
      const score = metrics[metric];
      const keys = this.#bestKeys(metric);
      const stored = info.get<unknown>(keys.score);
      const best = typeof stored === 'number' ? stored : initialBest[rule];
      if (score === null || score === undefined || !isBetter[rule](score, best)) continue;
      bestUpdated = true;
      info.set(keys.score, score);
      const previous = this.#bestNames.get(metric);
      const name = layout.bestName(metric, step);
      info.set(keys.ckpt, name);
      this.#bestNames.set(metric, name);
      if (runner.rank === 0) {
        const checkpoint = await this.#snapshot(runner, meta, { optimizer: false, scheduler: false });
        steps.push(() => this.#write(name, checkpoint));
      }
      if (previous && previous !== name) oldBests.push(previous);
      runner.logger.info(
        `The best checkpoint with ${score.toFixed(4)} ${metric} at ${step} ${byEpoch ? 'epoch' : 'iter'} ${this.config.asyncSave ? 'is being saved' : 'is saved'} to ${name}.`,
      );
      if (this.#lastCkpt === undefined && oldBests.length > 0 && runner.rank === 0) {
        // (ours) No regular checkpoint to re-save: once the new best is committed, the old one can go.
        const old = oldBests.pop() as string;
        steps.push(() => this.#removeLogged(runner, old, 'previous best checkpoint'));
      }
    }
    if (bestUpdated && this.#lastCkpt !== undefined) {
      // Re-save so the runtime info inside the newest regular checkpoint names the new best;
      // the old bests are deleted after that save commits and the pointer moves.
      await this.#saveRegular(runner, step, meta, oldBests, steps);
    }
  }

  async afterTrain(runner: Runner): Promise<void> {
    try {
      await this.flush();
      const layout = this.#requireLayout();
      if (!this.config.publishedKeys || runner.rank !== 0) return;
      const targets: string[] = [];
      if (this.config.saveLast && this.#lastCkpt !== undefined) targets.push(this.#lastCkpt);
      for (const name of this.#bestNames.values()) if (name) targets.push(name);
      for (const name of targets) {
        const path = layout.pathOf(name);
        const { path: published, removedKeys } = await publishCheckpoint(layout.store, path, this.config.publishedKeys, {
          codec: this.config.codec,
          signal: this.config.signal,
        });
        if (removedKeys.length > 0) {
          runner.logger.info(
            `Key ${JSON.stringify(removedKeys)} will be removed because they are not found in publishedKeys. If you want to keep them, please set \`${JSON.stringify(removedKeys)}\` in publishedKeys`,
          );
        }
        runner.logger.info(`The checkpoint (${path}) is published to ${published}.`);
      }
    } finally {
      await this.close();
    }
  }

  /**
   * Releases the run's lease. `afterTrain` calls it; a loop that stops early (or fails)
   * calls it so that the next job on this run does not wait for the lease to expire.
   */
  async close(): Promise<void> {
    // The lease is held until no save of this run is writing any more. A failure they
    // leave is kept for `flush()`: close runs on error paths and must not mask the cause.
    await Promise.allSettled(this.#inFlight);
    this.#snapshotPool.clear();
    const lease = this.#lease;
    this.#lease = undefined;
    await lease?.release({ signal: this.config.signal });
  }
}
