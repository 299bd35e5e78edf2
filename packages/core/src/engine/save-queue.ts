// The save points of a run, in order. A save point is planned at once (the hook
// decides what to write and updates the run's state) and its store operations are
// steps. Without `asyncSave` the steps run before the hook call returns; with it they
// run in the background, each save point after the ones before it, so saves commit in
// order and each keeps the commit-before-delete order. At most `maxPendingSaves` are
// in flight: the snapshot of one more waits for the oldest.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { TypedArray } from '../format/tensor.js';
import { AbortedError } from '../store/errors.js';
import { type SaveStep, type StepRunner, supersededError } from './save-steps.js';
import { SnapshotPool, snapshotCheckpoint } from './snapshot.js';

/** Told what became of a save point: `capture` right after it is planned, then `commit` with that capture, or `fail`. */
export interface CommitTracker<T> {
  capture(): T;
  commit(planned: T): void;
  fail(): void;
}

export interface SaveQueueOptions {
  asyncSave: boolean;
  maxPendingSaves: number;
  signal: AbortSignal | undefined;
}

export class SaveQueue {
  readonly #options: SaveQueueOptions;
  /** Save points in flight, oldest first; each runs after the one before it. */
  #inFlight: Promise<void>[] = [];
  /** The first background failure not yet raised to the caller. */
  #failure: { error: unknown } | undefined;
  /** Snapshot buffers of finished saves, reused by the next snapshot (shared memory once the save worker runs them). */
  #pool = new SnapshotPool();
  /** Buffers the save point being planned copied into, released when its save ends. */
  #planBuffers: TypedArray[] = [];
  /** Save points planned so far (each background one gets its number), and the first not cancelled by a failure. */
  #issued = 0;
  #cancelledBelow = 0;
  /** Save points in flight, each with what stops it before its commit and whether the hook allows that. */
  readonly #supersedable = new Map<Promise<void>, { controller: AbortController; allowed: boolean }>();
  /** Who carries the steps out: this thread, or the save worker (set by the hook once the run is open). */
  #runner: StepRunner | undefined;

  constructor(options: SaveQueueOptions) {
    this.#options = options;
  }

  /** Sets who carries the steps out from now on. */
  useRunner(runner: StepRunner): void {
    this.#runner = runner;
    if (runner.offThread !== this.#pool.shared) this.#pool = new SnapshotPool({ shared: runner.offThread });
  }

  async #run(steps: readonly SaveStep[], supersede?: AbortSignal): Promise<readonly TypedArray[] | undefined> {
    if (!this.#runner) throw new Error('SaveQueue: no step runner (the hook sets one in beforeTrain)');
    return this.#runner.run(steps, supersede);
  }

  /**
   * (ours) Stops every save point in flight before its commit, when each of them is a
   * regular save the hook allowed to be replaced (a best's save point is never stopped:
   * then nothing is). A stopped save point leaves the store as a failed one does (the
   * previous checkpoint and the pointer whole), its planned state is rolled back, and
   * it is no failure: nothing is raised and nothing queued behind it is cancelled. One
   * already moving the pointer runs to its end. True when save points were stopped.
   */
  supersede(): boolean {
    const inFlight = [...this.#supersedable.values()];
    if (inFlight.length === 0 || inFlight.some((s) => !s.allowed)) return false;
    for (const { controller } of inFlight) controller.abort(new Error('a newer save point replaces it'));
    return true;
  }

  /** Save points in flight (always 0 without `asyncSave`). */
  get pending(): number {
    return this.#inFlight.length;
  }

  /** Throws the first background failure not yet raised (once). */
  raise(): void {
    const failure = this.#failure;
    if (!failure) return;
    this.#failure = undefined;
    throw failure.error;
  }

  /** Waits for every save in flight, then raises a failure they left. */
  async flush(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
    this.raise();
  }

  /** Waits for every save in flight and frees the snapshot buffers; a failure stays for `flush()`. */
  async drain(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
    this.#pool.clear();
    this.#planBuffers = [];
  }

  /**
   * The checkpoint as it is now. With `asyncSave` its tensors are copied, so that training
   * may change them while the upload runs: that copy (and the store's upload buffers) is
   * the only extra memory a save holds. The buffers are reused by the next save point, and
   * freed by `drain()` (`afterTrain`, `close()`).
   * The copy waits until fewer than `maxPendingSaves` saves are in flight, so at most that
   * many copies exist (and a validation that saves nothing never waits).
   */
  async snapshot<T extends Record<string, unknown>>(build: () => Promise<T>): Promise<T> {
    if (!this.#options.asyncSave) return build();
    while (this.#inFlight.length >= this.#options.maxPendingSaves) await this.#inFlight[0];
    this.raise();
    // For the save worker the copy is in shared memory: handing it over copies nothing.
    return snapshotCheckpoint(await build(), (data) => {
      const copy = this.#pool.copy(data);
      this.#planBuffers.push(copy);
      return copy;
    });
  }

  /**
   * One save point: `plan` collects its steps; they run now, or in the background after
   * the ones before. `tracker` learns whether it committed (every step succeeded) or
   * failed; with `asyncSave` a failure cancels every save point queued behind it before
   * any of them commits: the queue fails closed.
   */
  async savePoint<T>(
    plan: (steps: SaveStep[]) => Promise<void>,
    tracker?: CommitTracker<T>,
    options: { supersedable?: boolean } = {},
  ): Promise<void> {
    const steps: SaveStep[] = [];
    this.#planBuffers = [];
    await plan(steps);
    const planned = tracker?.capture();
    const outcome = {
      committed: () => tracker?.commit(planned as T),
      failed: () => tracker?.fail(),
    };
    let buffers: readonly TypedArray[] = this.#planBuffers;
    this.#planBuffers = [];
    if (steps.length === 0) {
      this.#pool.release(buffers);
      outcome.committed();
      return;
    }
    if (!this.#options.asyncSave) {
      try {
        await this.#run(steps);
      } catch (error) {
        outcome.failed();
        throw error;
      }
      outcome.committed();
      return;
    }
    const ticket = this.#issued++;
    const previous = this.#inFlight.at(-1);
    const supersede = new AbortController();
    const start = async () => {
      // A save point planned before an earlier one failed is cancelled, even once that
      // failure was raised: its runtime info may name what the failed one never wrote.
      if (this.#failure || ticket < this.#cancelledBelow) return;
      const signal = this.#options.signal;
      if (signal?.aborted) {
        throw new AbortedError("save cancelled before it started: the hook's signal was aborted", { cause: signal.reason });
      }
      // Stopped before it started: nothing of it is written (rolled back, not raised).
      if (supersede.signal.aborted) throw supersededError(supersede.signal);
      // A runner that moved the buffers to another thread hands them back when done.
      buffers = (await this.#run(steps, supersede.signal)) ?? buffers;
      outcome.committed();
    };
    // On this thread a save starts on a later turn of the event loop (the training loop
    // resumes first); another thread gets it at once, before this call returns.
    const started =
      previous === undefined && this.#runner?.offThread
        ? start()
        : (previous ?? Promise.resolve()).then(() => yieldToEventLoop()).then(start);
    const job: Promise<void> = started
      .catch((error: unknown) => {
        // Superseded: rolled back like a failure, but nothing to raise or cancel.
        if (!supersede.signal.aborted) {
          this.#failure ??= { error };
          this.#cancelledBelow = this.#issued;
        }
        outcome.failed();
      })
      .finally(() => {
        // Nothing reads this save's snapshot any more: the next one reuses its buffers.
        this.#pool.release(buffers);
        this.#inFlight.splice(this.#inFlight.indexOf(job), 1);
        this.#supersedable.delete(job);
      });
    this.#inFlight.push(job);
    this.#supersedable.set(job, { controller: supersede, allowed: options.supersedable === true });
  }
}
