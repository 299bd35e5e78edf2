// The checkpoint policy engine: a port of MMEngine's CheckpointHook, rule for rule
// as written in docs/checkpoint-policy.md, running on any StorageBackend. Where the
// spec says (ours) we order writes so a crash never loses the last good checkpoint:
// the new checkpoint is complete before the pointer moves, and the pointer moves
// before anything old is deleted. The hook decides; its rooms do the rest: the
// schedule (schedule.ts), rotation (retention.ts), bests (bests.ts), the save queue
// (save-queue.ts), resume (restore.ts), and every store operation through the one
// `Run` it opens for the work dir (run/run.ts).

import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { absoluteWorkDir, type RunLayout } from '../run/layout.js';
import type { RunLease } from '../run/lease.js';
import { Run } from '../run/run.js';
import type { StorageBackend } from '../store/contract.js';
import { LeaseHeldError, SavepointError } from '../store/errors.js';
import { redact } from '../store/redact.js';
import { BestTracker } from './bests.js';
import { CommittedState, engineRuntimeInfo } from './committed-state.js';
import {
  type CheckpointHookOptions,
  checkNameLength,
  type ResolvedCheckpointHookOptions,
  resolveCheckpointHookOptions,
} from './options.js';
import { type PreemptionRequest, SignalWatch, signalExitCode } from './preemption.js';
import { publishCheckpoints } from './publish.js';
import { restoreRunState, takeRun } from './restore.js';
import { PENDING_REMOVALS_KEY, type RetentionState, recordRegularSave, removeLogged } from './retention.js';
import { checkpointOf, type Runner } from './runner.js';
import { SaveQueue } from './save-queue.js';
import { runStepsHere, type SaveStep, type StepRunner } from './save-steps.js';
import { SaveWorker, saveWorkerPlan } from './save-worker.js';
import { LAST_SAVE_AT_KEY, parseTime, RUN_STARTED_AT_KEY, saveTrigger } from './schedule.js';

export class CheckpointHook {
  readonly config: Readonly<ResolvedCheckpointHookOptions>;
  readonly #bests: BestTracker;
  readonly #queue: SaveQueue;
  readonly #state: RetentionState = { keepCkptIds: [], lastCkpt: undefined, kept: [] };
  /** The run this hook writes, opened once for its work dir (resume and `beforeTrain` share it). */
  #run: Run | undefined;
  /** The run's layout from `beforeTrain` on (kept after `close()`: names only, no I/O). */
  #layout: RunLayout | undefined;
  #lease: RunLease | undefined;
  /** (ours) A failed save point puts the engine's state back to the last committed one. */
  readonly #committed: CommittedState;
  /** Who carries the save points out (this thread, or the save worker: save-worker.ts); set by `beforeTrain`. */
  #steps: StepRunner | undefined;
  /** Whether the hook's run was opened from plain data alone (no store instance), so another thread can open it too. */
  #portable = false;
  /** (ours) When the run started and last saved (ms since the epoch), for the clock-driven policies. */
  #runStartMs: number | undefined;
  /** (ours) The position of the last regular save planned: a preemption save of the same position is skipped. */
  #savedPosition: string | undefined;
  /** (ours) The position of the last regular save that committed (a stopped one did not). */
  #committedPosition: string | undefined;
  /** (ours) `saveOnSignals`: the handlers, and the preemption save once it runs. */
  #signals: SignalWatch | undefined;
  #preempting: Promise<never> | undefined;
  /** (ours) Whether the loop is between steps with no hook call running (only known when it calls `beforeTrainIter`). */
  #idle = false;
  #tracksSteps = false;
  /** How the process ends after a preemption save (a test's child replaces nothing: it really exits). */
  readonly #exit: (code: number) => void = (code) => process.exit(code);

  constructor(options: CheckpointHookOptions = {}) {
    this.config = Object.freeze(resolveCheckpointHookOptions(options));
    this.#bests = new BestTracker(this.config.saveBest, this.config.retention.topK);
    this.#queue = new SaveQueue(this.config);
    this.#committed = new CommittedState(this.#state, this.#bests);
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

  /** The run in `workDir` with these options, opened once: a resume before `beforeTrain` shares its stores. No I/O. */
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
    if (!this.#run) {
      this.#run = run;
      this.#portable = this.config.store.kind === 'registry' && workDirBackend === undefined;
    }
    return run;
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
      if (runner.rank === 0) this.#lease = await takeRun(run, runner, this.config);

      await restoreRunState({
        run,
        runner,
        config: this.config,
        bests: this.#bests,
        state: this.#state,
        leaseHeld: this.#lease !== undefined,
        remove: (name, what) => this.#removeLogged(runner, name, what),
      });
      this.#startClock(runner);
      this.#committed.record(runner.runtimeInfo);
      this.#steps = this.#stepRunner(run, runner);
      this.#queue.useRunner(this.#steps);
      this.#watchSignals(runner);
    } catch (error) {
      await this.close().catch(() => {});
      throw error;
    }
  }

  /**
   * Who carries the save points out: with `asyncSave`, the save worker when the run can
   * be opened in another thread (stores from `backendArgs`, backends with a source
   * module); otherwise this thread. The worker moves the pointer for this hook's lease.
   */
  #stepRunner(run: Run, runner: Runner): StepRunner {
    const here = runStepsHere(
      () => this.#requireRun(),
      () => runner.logger,
      this.config.layout,
    );
    const { store } = this.config;
    if (!this.config.asyncSave || runner.rank !== 0 || !this.#portable || store.kind !== 'registry') return here;
    const plan = saveWorkerPlan([run.workDir, run.outDir], store.backendArgs);
    if ('reason' in plan) {
      runner.logger.info(`Background saves run on the main thread: ${plan.reason}.`);
      return here;
    }
    const lease = this.#lease;
    const fence = run.handOverFence();
    const worker = new SaveWorker(
      {
        workDir: run.workDir,
        outDir: this.config.outDir,
        filenameTmpl: this.config.filenameTmpl,
        metrics: this.#bests.metrics,
        backendArgs: store.backendArgs,
        layout: this.config.layout,
        sources: plan.sources,
        fence: fence && lease ? { state: fence, leasePath: lease.path, tookOver: lease.tookOver } : undefined,
      },
      () => runner.logger,
      this.config.signal,
    );
    return {
      offThread: true,
      run: (steps, supersede) => {
        this.#requireRun();
        return worker.run(steps, supersede).catch((error: unknown) => {
          // The worker's fenced move found another holder: this job's lease is lost here too.
          if (error instanceof LeaseHeldError) lease?.markLost(error);
          throw error;
        });
      },
      close: async () => {
        const state = await worker.close();
        if (lease) run.takeBackFence(lease, state);
      },
    };
  }

  async #removeLogged(runner: Runner, name: string, what: string): Promise<void> {
    await removeLogged(this.#requireRun(), runner.logger, name, what);
  }

  /**
   * (ours) The run's clock for `saveIntervalMs` and `keepTimeIntervalMs`: the start time
   * and the last save's time travel in runtime info, so they count across resumes.
   */
  #startClock(runner: Runner): void {
    const { saveIntervalMs, retention } = this.config;
    if (saveIntervalMs === undefined && retention.keepTimeIntervalMs === undefined) return;
    const info = runner.runtimeInfo;
    this.#runStartMs = parseTime(info.get(RUN_STARTED_AT_KEY)) ?? Date.now();
    info.set(RUN_STARTED_AT_KEY, this.#runStartMs);
    if (saveIntervalMs !== undefined && parseTime(info.get(LAST_SAVE_AT_KEY)) === undefined) {
      info.set(LAST_SAVE_AT_KEY, this.#runStartMs);
    }
  }

  /** (ours) `saveOnSignals`: the handlers, installed for the run and removed by `close()`. */
  #watchSignals(runner: Runner): void {
    const { preemption } = this.config;
    if (preemption.kind !== 'save') return;
    this.#signals = new SignalWatch({
      signals: preemption.signals,
      graceMs: preemption.graceMs,
      exit: this.#exit,
      onSignal: (request) => {
        runner.logger.warn(
          `Received ${request.signal}: saving a checkpoint at the next step boundary${this.#idle ? ' (now: the loop is between steps)' : ''}, within ${preemption.graceMs} ms, then exiting with ${signalExitCode(request.signal)}.`,
        );
        if (this.#idle) void this.#preempt(runner, request);
      },
    });
    this.#signals.install();
  }

  /**
   * A hook call: it waits for a preemption save in flight (which ends the process), and
   * at a step boundary (`boundary`) it starts one that a signal asked for. Between a
   * boundary and the loop's next `beforeTrainIter`, a signal saves at once.
   */
  async #hookCall(runner: Runner, boundary: boolean, call: () => Promise<void>): Promise<void> {
    if (this.#preempting) await this.#preempting;
    this.#idle = false;
    await call();
    // A signal handler runs only when the event loop turns; a loop whose hook calls end
    // without I/O never lets it. One turn per hook call lets it run here (its cost: a
    // setImmediate, only with saveOnSignals).
    if (this.#signals) await yieldToEventLoop();
    const request = this.#signals?.request;
    if (boundary && request) await this.#preempt(runner, request);
    this.#idle = boundary && this.#tracksSteps;
  }

  /** (ours) Called by the loop before each iteration: a boundary where a preemption save may run. */
  async beforeTrainIter(runner: Runner): Promise<void> {
    this.#tracksSteps = true;
    await this.#hookCall(runner, true, async () => {});
    this.#idle = false;
  }

  async afterTrainEpoch(runner: Runner): Promise<void> {
    await this.#hookCall(runner, this.config.byEpoch, () => this.#afterStep(runner, true));
  }

  async afterTrainIter(runner: Runner): Promise<void> {
    // In epoch mode the last iteration of an epoch ends before the epoch is counted: not a boundary.
    await this.#hookCall(runner, !this.config.byEpoch, () => this.#afterStep(runner, false));
  }

  /** A regular save point when one is due at the step that just ended (an epoch, or an iteration). */
  async #afterStep(runner: Runner, epochEnded: boolean): Promise<void> {
    this.#queue.raise();
    await this.#keepLease();
    if (this.config.byEpoch !== epochEnded) return;
    const [step, last, unit] = epochEnded
      ? [runner.epoch, runner.maxEpochs, 'epochs']
      : [runner.iter, runner.maxIters, 'iterations'];
    const clock = { nowMs: Date.now(), lastSaveAtMs: parseTime(runner.runtimeInfo.get(LAST_SAVE_AT_KEY)) };
    if (saveTrigger(this.config, step, last, clock, runner) === undefined) return;
    runner.logger.info(`Saving checkpoint at ${step} ${unit}`);
    const position = positionOf(runner);
    const tracker = this.#committed.tracker(runner.runtimeInfo);
    await this.#queue.savePoint(
      this.#collecting(runner, (steps) => this.#saveRegular(runner, step, [], steps)),
      {
        capture: () => tracker.capture(),
        commit: (planned) => {
          tracker.commit(planned);
          this.#committedPosition = position;
        },
        fail: () => tracker.fail(),
      },
      // A regular save point alone: a preemption save of a later position may replace it.
      { supersedable: true },
    );
  }

  /**
   * (ours) With `incremental`, a save point ends by collecting the tensor objects no kept
   * checkpoint names: after the pointer moved and the removals, as the last step, so a
   * crash before it leaves only unreferenced objects, which the next save point collects.
   */
  #collecting(runner: Runner, plan: (steps: SaveStep[]) => Promise<void>): (steps: SaveStep[]) => Promise<void> {
    return async (steps) => {
      await plan(steps);
      if (this.config.layout.kind === 'incremental' && runner.rank === 0 && steps.length > 0) steps.push({ kind: 'collect' });
    };
  }

  /**
   * (ours) Renews the lease at the hook call when a third of its TTL has passed: a step
   * that holds the thread (a TensorFlow.js `fit` epoch, a synchronous loop) starves the
   * renewal timer, and a lease left to expire is taken over by the next job. A lease
   * found lost stops this job here, before its next write.
   */
  #keepLease(): Promise<void> | undefined {
    return this.#lease?.renewIfDue();
  }

  /** Waits until every save in flight has committed and deleted what it replaces; raises a failure they left. */
  async flush(): Promise<void> {
    await this.#queue.flush();
  }

  /**
   * (ours) The preemption save: stops a regular save in flight of an older position
   * before its commit (or waits for the saves in flight when one is a best's), saves the
   * position now (unless the last save holds it), commits, releases the lease and exits with the
   * signal's code. Past `preemptionGraceMs` from the signal it gives up and exits: what
   * is on the store is then the last committed checkpoint and its pointer, as after a crash.
   */
  #preempt(runner: Runner, request: PreemptionRequest): Promise<never> {
    this.#preempting ??= this.#runPreemption(runner, request);
    return this.#preempting;
  }

  async #runPreemption(runner: Runner, request: PreemptionRequest): Promise<never> {
    const code = signalExitCode(request.signal);
    const left = Math.max(request.deadline - Date.now(), 0);
    const giveUp = setTimeout(() => {
      runner.logger.warn(
        `The save on ${request.signal} did not commit within preemptionGraceMs: giving up; the previous checkpoint and the pointer are left as they were. Exiting with ${code}.`,
      );
      this.#exit(code);
    }, left);
    try {
      const position = positionOf(runner);
      // (ours) Regular saves still uploading would make the signal's save wait for them
      // (the grace period paid twice): they are stopped before their commit and rolled
      // back (a save point queued behind another names what that one writes, so all of
      // them go), and the position now is saved in their place. A best's save is waited for.
      const stopped = this.#queue.supersede();
      if (stopped)
        runner.logger.info(`Stopped the saves in flight before their commit: the save on ${request.signal} takes their place.`);
      await this.#queue.flush().catch((error: unknown) => runner.logger.warn(`An earlier save failed: ${error}`));
      const step = this.config.byEpoch ? runner.epoch : runner.iter;
      // One that had committed before it could be stopped holds the position already.
      if (stopped ? this.#committedPosition !== position : this.#savedPosition !== position) {
        runner.logger.info(`Saving checkpoint at ${step} ${this.config.byEpoch ? 'epochs' : 'iterations'} (${request.signal})`);
        await this.#queue.savePoint(
          (steps) => this.#saveRegular(runner, step, [], steps, undefined, { saved_on: 'signal', signal: request.signal }),
          this.#committed.tracker(runner.runtimeInfo),
        );
        await this.#queue.flush();
      }
      await this.close();
      runner.logger.info(`Checkpoint committed and lease released after ${request.signal}: exiting with ${code}.`);
    } catch (error) {
      runner.logger.warn(
        `The save on ${request.signal} failed (${error}): the previous checkpoint and the pointer are left as they were. Exiting with ${code}.`,
      );
      await this.close().catch(() => {});
    }
    clearTimeout(giveUp);
    this.#exit(code);
    // process.exit does not return; a replaced exit leaves the loop waiting here.
    return new Promise<never>(() => {});
  }

  /**
   * (ours) `saveOnException`: called by the loop when a step throws. Saves the position
   * as a regular checkpoint marked `saved_on: "exception"` in its meta (never as a best)
   * and commits it. A failure here is logged: the loop's own error is the one to raise.
   */
  async onException(runner: Runner, error: unknown): Promise<void> {
    if (!this.config.saveOnException || !this.#run || this.#preempting) return;
    const name = error instanceof Error ? error.name : typeof error;
    const step = this.config.byEpoch ? runner.epoch : runner.iter;
    try {
      await this.#queue.flush().catch((e: unknown) => runner.logger.warn(`An earlier save failed: ${e}`));
      if (this.#savedPosition === positionOf(runner)) return;
      runner.logger.info(`Saving checkpoint at ${step} ${this.config.byEpoch ? 'epochs' : 'iterations'} (exception: ${name})`);
      await this.#queue.savePoint(
        (steps) => this.#saveRegular(runner, step, [], steps, undefined, { saved_on: 'exception', exception: name }),
        this.#committed.tracker(runner.runtimeInfo),
      );
      await this.#queue.flush();
    } catch (saveError) {
      runner.logger.warn(`The save on the exception failed: ${saveError}`);
    }
  }

  /** Regular save of `step`: write, move the pointer, then delete what rotation dropped and `extraRemovals`. */
  async #saveRegular(
    runner: Runner,
    step: number,
    extraRemovals: string[],
    steps: SaveStep[],
    /** Steps that must be done before the pointer names the new checkpoint (the bests it names). */
    beforeMove?: (name: string) => Promise<SaveStep[]>,
    /** (ours) Meta fields saying why this save happened (a signal, an exception). */
    savedOn?: Record<string, string>,
  ): Promise<void> {
    const run = this.#requireRun();
    const savedAtMs = Date.now();
    const { name, removals } = recordRegularSave(this.#state, runner.runtimeInfo, run.layout, step, {
      policy: this.config.retention,
      extraRemovals,
      savedAtMs,
      runStartMs: this.#runStartMs,
    });
    if (this.config.saveIntervalMs !== undefined) runner.runtimeInfo.set(LAST_SAVE_AT_KEY, savedAtMs);
    this.#savedPosition = positionOf(runner);
    if (runner.rank === 0) {
      const { saveOptimizer: optimizer, saveParamScheduler: scheduler } = this.config;
      const checkpoint = await this.#snapshot(runner, { optimizer, scheduler }, savedOn);
      steps.push({ kind: 'save', name, checkpoint });
      if (beforeMove) steps.push(...(await beforeMove(name)));
      steps.push({ kind: 'move', name });
      for (const [i, old] of removals.entries()) {
        const what = i < extraRemovals.length ? 'previous best checkpoint' : 'old checkpoint';
        steps.push({ kind: 'remove', name: old, what });
      }
    }
    runner.runtimeInfo.set(PENDING_REMOVALS_KEY, []);
  }

  /** The checkpoint as it is now (copied with `asyncSave`: see SaveQueue.snapshot). */
  #snapshot(runner: Runner, include: { optimizer: boolean; scheduler: boolean }, savedOn?: Record<string, string>) {
    return this.#queue.snapshot(async () => {
      const checkpoint = await checkpointOf(runner, include);
      if (savedOn) checkpoint.meta = { ...(checkpoint.meta as Record<string, unknown>), ...savedOn };
      return checkpoint;
    });
  }

  async afterValEpoch(runner: Runner, metrics: Record<string, number | null | undefined>): Promise<void> {
    await this.#hookCall(runner, true, () => this.#afterVal(runner, metrics));
  }

  async #afterVal(runner: Runner, metrics: Record<string, number | null | undefined>): Promise<void> {
    this.#queue.raise();
    await this.#keepLease();
    if (!this.#bests.judges(metrics, runner.logger)) return;
    this.#requireRun();
    const tracked = this.#bests.track(metrics, this.config.greaterKeys, this.config.lessKeys);
    // With saveBest 'auto' the metric, and so the longest best's name, is known only now.
    checkNameLength(this.config.filenameTmpl, tracked);
    await this.#queue.savePoint(
      this.#collecting(runner, (steps) => this.#saveBests(runner, metrics, steps)),
      this.#committed.tracker(runner.runtimeInfo),
    );
  }

  /**
   * The best-checkpoint part of `afterValEpoch`: state updated now, store operations as steps.
   * As the reference, a new best is recorded in the runtime info of a regular checkpoint at
   * this step, saved for it when there is none yet (rotation included). (ours) Nothing is
   * uploaded twice: a best at the step of a regular checkpoint is a copy of it on the
   * store's side (file layout; so it also holds the optimizer state the reference leaves
   * out of bests), and when that regular checkpoint is already saved, the new best is
   * recorded by rewriting the pointer with the run's bookkeeping instead of saving the
   * checkpoint again. Old bests are deleted after that, as removals a resume finishes.
   */
  async #saveBests(runner: Runner, metrics: Record<string, number | null | undefined>, steps: SaveStep[]): Promise<void> {
    const run = this.#requireRun();
    const { byEpoch } = this.config;
    const step = byEpoch ? runner.epoch : runner.iter;
    const improvements = this.#bests.improve(metrics, runner.runtimeInfo, (metric) => run.layout.bestName(metric, step));
    if (improvements.length === 0) return;
    const oldBests = improvements.flatMap(({ name, previous }) => (previous && previous !== name ? [previous] : []));
    for (const { metric, score, name } of improvements) {
      runner.logger.info(
        `The best checkpoint with ${score.toFixed(4)} ${metric} at ${step} ${byEpoch ? 'epoch' : 'iter'} ${this.config.asyncSave ? 'is being saved' : 'is saved'} to ${name}.`,
      );
    }
    /** The bests as copies of the regular checkpoint `from` (file layout), or saved whole. */
    const bestSteps = async (from: string | undefined): Promise<SaveStep[]> => {
      if (runner.rank !== 0) return [];
      const out: SaveStep[] = [];
      for (const { name } of improvements) {
        // A folder of shards is not copied; a file is, and an incremental checkpoint's manifest.
        if (from !== undefined && this.config.layout.kind !== 'directory') out.push({ kind: 'copy', from, name });
        else out.push({ kind: 'save', name, checkpoint: await this.#snapshot(runner, { optimizer: false, scheduler: false }) });
      }
      return out;
    };
    const last = this.#state.lastCkpt;
    const remove = (names: string[]) =>
      runner.rank === 0 ? names.map((name): SaveStep => ({ kind: 'remove', name, what: 'previous best checkpoint' })) : [];
    if (last === undefined) {
      // (ours) No regular checkpoint to record the new best in: once it is written, the old ones can go.
      steps.push(...(await bestSteps(undefined)), ...remove(oldBests));
      return;
    }
    if (last !== run.layout.regularName(step)) {
      // The reference's save of this step; its runtime info names the new bests, which are copies of it.
      await this.#saveRegular(runner, step, oldBests, steps, (name) => bestSteps(name));
      return;
    }
    // The regular checkpoint of this step is saved: the pointer carries the new bookkeeping.
    steps.push(...(await bestSteps(last)));
    runner.runtimeInfo.set(PENDING_REMOVALS_KEY, oldBests);
    if (runner.rank === 0) steps.push({ kind: 'move', name: last, runtimeInfo: engineRuntimeInfo(runner.runtimeInfo) });
    steps.push(...remove(oldBests));
    runner.runtimeInfo.set(PENDING_REMOVALS_KEY, []);
  }

  async afterTrain(runner: Runner): Promise<void> {
    try {
      await this.flush();
      const run = this.#requireRun();
      if (!this.config.publishedKeys || runner.rank !== 0) return;
      const last = this.config.saveLast ? this.#state.lastCkpt : undefined;
      const targets = [...(last ? [last] : []), ...[...this.#bests.names.values()].filter((n): n is string => !!n)];
      await publishCheckpoints(run, runner, targets, this.config.publishedKeys);
    } finally {
      await this.close();
    }
  }

  /** Releases the lease and the stores the hook opened (`afterTrain` does; so must a loop that stops early). */
  async close(): Promise<void> {
    this.#signals?.uninstall();
    this.#idle = false;
    // The lease is held until no save of this run is writing any more. A failure they
    // leave is kept for `flush()`: close runs on error paths and must not mask the cause.
    await this.#queue.drain();
    // The save worker stops and hands the fence back before the lease goes.
    const steps = this.#steps;
    this.#steps = undefined;
    await steps?.close().catch(() => {});
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

/** A position in training, as a save records it. */
function positionOf(runner: Runner): string {
  return `${runner.epoch}/${runner.iter}`;
}
