// asyncSave: the hook snapshots and returns; the upload, pointer move and deletions run
// in the background in the same order as a synchronous save; failures are raised later,
// never swallowed; at most maxPendingSaves save points are in flight.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import {
  AbortedError,
  CheckpointHook,
  type CheckpointHookOptions,
  ConfigError,
  loadCheckpoint,
  ReferenceTrainer,
  Run,
  type Runner,
  RuntimeInfo,
  readResumePoint,
} from '../src/index.js';
import { BackendError, type PutBody, type PutOptions } from '../src/store/index.js';

/** A local store whose checkpoint uploads wait until the test opens the gate (or fail when told to). */
class GatedBackend extends LocalBackend {
  #open: Promise<void> = Promise.resolve();
  #release: () => void = () => {};
  failNext: Error | undefined;
  /** Uploads to a path containing this fail (after the gate), every time. */
  failPath: string | undefined;
  /** Called just before an injected failure is thrown. */
  beforeFail: (() => void) | undefined;
  putsStarted = 0;
  putsFinished = 0;

  holdUploads(): void {
    this.#open = new Promise((resolve) => {
      this.#release = resolve;
    });
  }
  releaseUploads(): void {
    this.#release();
  }

  override async put(path: string, body: PutBody, options?: PutOptions): Promise<void> {
    if (!path.endsWith('.safetensors')) return super.put(path, body, options);
    this.putsStarted++;
    const signal = options?.signal;
    await Promise.race([
      this.#open,
      new Promise<void>((_, reject) => {
        if (signal?.aborted) reject(new AbortedError(`put ${path}: aborted`));
        signal?.addEventListener('abort', () => reject(new AbortedError(`put ${path}: aborted`)), { once: true });
      }),
    ]);
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      this.beforeFail?.();
      throw error;
    }
    if (this.failPath !== undefined && path.includes(this.failPath)) {
      this.beforeFail?.();
      throw new BackendError(`put ${path}: injected failure`);
    }
    await super.put(path, body, options);
    this.putsFinished++;
  }

  /** A best at the step of a regular checkpoint is a copy made by the store: held and failed like an upload. */
  override async copy(source: string, destination: string, options?: Parameters<LocalBackend['copy']>[2]): Promise<void> {
    await this.#open;
    if (this.failPath !== undefined && destination.includes(this.failPath)) {
      this.beforeFail?.();
      throw new BackendError(`copy ${destination}: injected failure`);
    }
    await super.copy(source, destination, options);
  }
}

/** A minimal runner over one weight vector the test changes between steps. */
function runnerFor(workDir: string) {
  const state = { iter: 0, weights: new Float32Array([1, 2, 3, 4]) };
  const logs: string[] = [];
  const runner: Runner = {
    workDir,
    get epoch() {
      return 0;
    },
    get iter() {
      return state.iter;
    },
    maxEpochs: 1,
    maxIters: 100,
    runtimeInfo: new RuntimeInfo(),
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(`WARN ${m}`) },
    rank: 0,
    modelState: () => ({ w: state.weights }),
  };
  return { runner, state, logs };
}

describe('asyncSave', () => {
  let dir: string;
  let backend: GatedBackend;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-async-'));
    backend = new GatedBackend();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const hookWith = (options: CheckpointHookOptions = {}) =>
    new CheckpointHook({ byEpoch: false, interval: 1, asyncSave: true, backend, leaseTtlMs: false, ...options });

  it('returns while the upload is in flight, and writes the state as it was at the save point', async () => {
    const hook = hookWith();
    const { runner, state } = runnerFor(dir);
    await hook.beforeTrain(runner);
    backend.holdUploads();
    state.iter = 1;
    await hook.afterTrainIter(runner);
    // The hook returned with the upload still waiting at the gate: training goes on.
    expect(hook.pendingSaves).toBe(1);
    expect(backend.putsFinished).toBe(0);
    state.weights.fill(99); // training changes the weights in place
    backend.releaseUploads();
    await hook.flush();
    expect(hook.pendingSaves).toBe(0);
    const saved = await loadCheckpoint(backend, join(dir, 'iter_1.safetensors'));
    expect(Array.from((saved.state_dict as { w: Float32Array }).w)).toEqual([1, 2, 3, 4]);
    expect(await Run.open(dir, { backend: backend }).latest()).toBe(join(dir, 'iter_1.safetensors'));
  });

  it('never moves the pointer before the checkpoint is written', async () => {
    const hook = hookWith();
    const { runner, state } = runnerFor(dir);
    await hook.beforeTrain(runner);
    backend.holdUploads();
    state.iter = 1;
    await hook.afterTrainIter(runner);
    await vi.waitFor(() => expect(backend.putsStarted).toBe(1)); // the upload waits at the gate
    expect(await Run.open(dir, { backend: backend }).latest()).toBeUndefined();
    backend.releaseUploads();
    await hook.flush();
    expect(await Run.open(dir, { backend: backend }).latest()).toBe(join(dir, 'iter_1.safetensors'));
  });

  it('with maxPendingSaves 1, a save point waits for the save in flight; with 2 it does not', async () => {
    for (const maxPendingSaves of [1, 2]) {
      const runDir = join(dir, `max${maxPendingSaves}`);
      const hook = hookWith({ maxPendingSaves });
      const { runner, state } = runnerFor(runDir);
      await hook.beforeTrain(runner);
      backend.holdUploads();
      state.iter = 1;
      await hook.afterTrainIter(runner);
      state.iter = 2;
      let second = false;
      const secondSave = hook.afterTrainIter(runner).then(() => {
        second = true;
      });
      await vi.waitFor(() => expect(backend.putsStarted).toBeGreaterThanOrEqual(1));
      if (maxPendingSaves === 2) await vi.waitFor(() => expect(second).toBe(true));
      else {
        // Blocked on the gated save: many turns of the event loop later it still waits.
        for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
        expect(second, 'maxPendingSaves 1').toBe(false);
      }
      backend.releaseUploads();
      await secondSave;
      await hook.flush();
      expect((await readdir(runDir)).filter((n) => n.endsWith('.safetensors')).sort()).toEqual([
        'iter_1.safetensors',
        'iter_2.safetensors',
      ]);
      expect(await Run.open(runDir, { backend: backend }).latest()).toBe(join(runDir, 'iter_2.safetensors'));
    }
  });

  it('raises a background failure at the next hook call, cancels saves queued after it, and keeps the pointer', async () => {
    const hook = hookWith({ maxPendingSaves: 2, maxKeepCkpts: 1 });
    const { runner, state } = runnerFor(dir);
    await hook.beforeTrain(runner);
    state.iter = 1;
    await hook.afterTrainIter(runner);
    await hook.flush();
    backend.holdUploads();
    backend.failNext = new BackendError('put: injected failure');
    state.iter = 2;
    await hook.afterTrainIter(runner);
    state.iter = 3;
    await hook.afterTrainIter(runner); // queued behind the save that will fail
    backend.releaseUploads();
    await vi.waitFor(() => expect(hook.pendingSaves).toBe(0));
    state.iter = 4;
    await expect(hook.afterTrainIter(runner)).rejects.toThrow('injected failure');
    // The failed save and the one queued after it changed nothing: iter_1 and its pointer stand.
    expect(await Run.open(dir, { backend: backend }).latest()).toBe(join(dir, 'iter_1.safetensors'));
    expect((await readdir(dir)).filter((n) => n.endsWith('.safetensors'))).toEqual(['iter_1.safetensors']);
  });

  it('with maxPendingSaves 3, a failed best upload cancels every save point queued behind it, even once raised, and no best is lost', async () => {
    const options = { saveBest: 'acc', maxPendingSaves: 3, maxKeepCkpts: 2 } as const;
    const hook = hookWith(options);
    const { runner, state } = runnerFor(dir);
    await hook.beforeTrain(runner);
    state.iter = 1;
    await hook.afterTrainIter(runner);
    await hook.afterValEpoch(runner, { acc: 0.5 });
    await hook.flush();
    backend.holdUploads();
    backend.failPath = 'best_acc_iter_2';
    // The failure is raised (and handled) by a hook call of the loop before the save
    // queued behind it starts: that save must still be cancelled.
    const raised: unknown[] = [];
    backend.beforeFail = () => setImmediate(() => hook.afterTrainEpoch(runner).catch((error) => raised.push(error)));
    state.iter = 2;
    await hook.afterTrainIter(runner); // commits
    await hook.afterValEpoch(runner, { acc: 0.9 }); // its best upload fails
    state.iter = 3;
    await hook.afterTrainIter(runner); // queued behind the failed one
    backend.releaseUploads();
    await vi.waitFor(() => expect(raised).toHaveLength(1));
    await hook.flush();
    const files = (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort();
    expect(files).toEqual(['best_acc_iter_1.safetensors', 'iter_1.safetensors', 'iter_2.safetensors']);
    expect(await Run.open(dir, { backend }).latest()).toBe(join(dir, 'iter_2.safetensors'));
    // The engine no longer believes in the best that was never written.
    expect(runner.runtimeInfo.get('best_ckpt')).toBe('best_acc_iter_1.safetensors');
    expect(runner.runtimeInfo.get('best_score')).toBe(0.5);
    backend.failPath = undefined;
    state.iter = 4;
    await hook.afterTrainIter(runner);
    await hook.flush();
    await hook.close();
    const info = (
      (await loadCheckpoint(backend, join(dir, 'iter_4.safetensors'))).message_hub as { runtime_info: Record<string, unknown> }
    ).runtime_info;
    expect(info.best_ckpt).toBe('best_acc_iter_1.safetensors');
    // A resume keeps that best (it is named), and deletes nothing it needs.
    const again = hookWith(options);
    const resumed = runnerFor(dir);
    const point = await readResumePoint(again, dir, resumed.runner.runtimeInfo);
    resumed.state.iter = point?.iter ?? 0;
    await again.beforeTrain(resumed.runner);
    await again.close();
    expect(await readdir(dir)).toContain('best_acc_iter_1.safetensors');
  });

  it('raises a background failure at flush() and at afterTrain, once', async () => {
    for (const surface of ['flush', 'afterTrain'] as const) {
      const runDir = join(dir, surface);
      const hook = hookWith();
      const { runner, state } = runnerFor(runDir);
      await hook.beforeTrain(runner);
      backend.failNext = new BackendError(`put: failure for ${surface}`);
      state.iter = 1;
      await hook.afterTrainIter(runner);
      const call = surface === 'flush' ? hook.flush() : hook.afterTrain(runner);
      await expect(call).rejects.toThrow(`failure for ${surface}`);
      await expect(hook.flush()).resolves.toBeUndefined();
    }
  });

  it('aborting the signal cancels the upload in flight and leaves the previous checkpoint and the pointer', async () => {
    const controller = new AbortController();
    const hook = hookWith({ signal: controller.signal });
    const { runner, state } = runnerFor(dir);
    await hook.beforeTrain(runner);
    state.iter = 1;
    await hook.afterTrainIter(runner);
    await hook.flush();
    backend.holdUploads();
    state.iter = 2;
    await hook.afterTrainIter(runner);
    controller.abort(new Error('preempted'));
    await expect(hook.flush()).rejects.toBeInstanceOf(AbortedError);
    backend.releaseUploads();
    expect(await Run.open(dir, { backend: backend }).latest()).toBe(join(dir, 'iter_1.safetensors'));
    const kept = await loadCheckpoint(backend, join(dir, 'iter_1.safetensors'));
    expect(Array.from((kept.state_dict as { w: Float32Array }).w)).toEqual([1, 2, 3, 4]);
    expect(await readdir(dir)).not.toContain('iter_2.safetensors');
  });

  it('ends a full run with the same checkpoints, bests and pointer as a synchronous run', async () => {
    const run = async (asyncSave: boolean) => {
      const workDir = join(dir, asyncSave ? 'async' : 'sync');
      let w = new Float32Array(3);
      const acc = [0.2, 0.6, 0.4, 0.8, 0.1, 0.7, 0.9, 0.3];
      const trainer = new ReferenceTrainer({
        workDir,
        model: {
          trainStep: () => {
            w = w.map((x) => x + 1);
            return 0;
          },
          evaluate: (p) => ({ acc: acc[p.epoch - 1] ?? 0 }),
          stateDict: () => ({ w }),
          loadStateDict: () => {},
        },
        checkpointHook: new CheckpointHook({
          interval: 1,
          maxKeepCkpts: 2,
          saveBest: 'acc',
          backend: new LocalBackend(),
          ...(asyncSave ? { asyncSave: true } : {}),
        }),
        itersPerEpoch: 1,
        maxEpochs: 8,
        valInterval: 1,
        backend: new LocalBackend(),
      });
      await trainer.train();
      const files = (await readdir(workDir)).filter((n) => n.endsWith('.safetensors')).sort();
      const contents = await Promise.all(
        files.map(async (f) =>
          Array.from(((await loadCheckpoint(backend, join(workDir, f))).state_dict as { w: Float32Array }).w),
        ),
      );
      return { files, contents, pointer: (await Run.open(workDir, { backend: backend }).latest())?.slice(workDir.length) };
    };
    const sync = await run(false);
    expect(sync.files).toEqual(['best_acc_epoch_7.safetensors', 'epoch_7.safetensors', 'epoch_8.safetensors']);
    expect(await run(true)).toEqual(sync);
  });

  it('refuses maxPendingSaves without asyncSave, and bad values, at construction', () => {
    expect(() => new CheckpointHook({ maxPendingSaves: 2 })).toThrow(ConfigError);
    expect(() => new CheckpointHook({ maxPendingSaves: 2 })).toThrow(/asyncSave/);
    expect(() => new CheckpointHook({ asyncSave: true, maxPendingSaves: 0 })).toThrow(/maxPendingSaves.*0.*>= 1/);
    expect(() => new CheckpointHook({ asyncSave: 'yes' as unknown as boolean })).toThrow(/asyncSave/);
    expect(() => new CheckpointHook({ shardConcurrency: 2 })).toThrow(/shardConcurrency.*directory/);
    expect(() => new CheckpointHook({ layout: 'directory', shardConcurrency: 0 })).toThrow(/shardConcurrency/);
  });
});

describe('SnapshotPool', () => {
  it('copies into a released buffer of the same type and length, and never hands one out twice', async () => {
    const { SnapshotPool } = await import('../src/engine/snapshot.js');
    const pool = new SnapshotPool();
    const source = new Float32Array([1, 2, 3]);
    const first = pool.copy(source);
    expect(first).not.toBe(source);
    expect(Array.from(first as Float32Array)).toEqual([1, 2, 3]);
    const second = pool.copy(source);
    expect(second).not.toBe(first); // the first is still in use
    pool.release([first]);
    source[0] = 9;
    const reused = pool.copy(source);
    expect(reused).toBe(first);
    expect(Array.from(reused as Float32Array)).toEqual([9, 2, 3]);
    expect(pool.copy(new Float64Array(3))).not.toBe(first); // another type: a new buffer
    expect(pool.copy(source)).not.toBe(first);
  });
});
