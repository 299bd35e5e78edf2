// asyncSave off the main thread: a training step that holds the thread (as a
// TensorFlow.js `fit` epoch does) must not hold the save back. The test's steps are
// synchronous busy loops; inside the step after a save point, still holding the
// thread, the step watches the disk: the save worker must commit the checkpoint (its
// pointer moves) before the step ends. On the main thread that cannot happen: an
// upload there advances only when the event loop is free.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend, registerLocalBackend } from '@savepoint/backend-local';
import { ToyModel } from '@savepoint/backend-test-suite';
import {
  CheckpointHook,
  type CheckpointHookOptions,
  loadCheckpoint,
  ReferenceTrainer,
  Run,
  SavepointError,
} from '@savepoint/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** How long a step may hold the thread waiting for the worker's commit (a busy machine is slow). */
const WATCH_MS = 20_000;

class HoldingModel extends ToyModel {
  /** Per step: whether the pointer named the previous step's checkpoint before the step let go of the thread. */
  readonly committedWhileHeld: boolean[] = [];
  constructor(
    private readonly pointer: string,
    private readonly watchFrom: number,
    private readonly watchMs = WATCH_MS,
  ) {
    super(({ epoch }) => ({ acc: epoch / 10 }));
  }
  override trainStep(position: { epoch: number; iter: number }): number {
    // The step of epoch e + 1 starts right after the save point of epoch e.
    if (position.epoch >= this.watchFrom) {
      const expected = `epoch_${position.epoch}.safetensors`;
      const end = Date.now() + this.watchMs;
      let seen = false;
      while (!seen && Date.now() < end) {
        seen = existsSync(this.pointer) && readFileSync(this.pointer, 'utf8').split('\n')[0] === expected;
      }
      this.committedWhileHeld.push(seen);
    }
    return super.trainStep(position);
  }
}

describe('asyncSave runs beside a step that holds the thread (local disk, stores from backendArgs)', () => {
  let root: string;
  beforeEach(async () => {
    registerLocalBackend();
    root = await mkdtemp(join(tmpdir(), 'savepoint-worker-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const train = async (hook: CheckpointHookOptions, epochs: number, model: ToyModel, resume = false) => {
    const trainer = new ReferenceTrainer({
      workDir: root,
      model,
      checkpointHook: new CheckpointHook({ interval: 1, ...hook }),
      itersPerEpoch: 1,
      maxEpochs: epochs,
      valInterval: 1,
      resume,
    });
    await trainer.train();
    return trainer;
  };

  it('each save point commits (pointer moved) while the next step still holds the thread; rotation, bests and resume as usual', async () => {
    const model = new HoldingModel(join(root, 'last_checkpoint'), 1);
    await train({ asyncSave: true, maxKeepCkpts: 2, saveBest: 'acc' }, 4, model);
    // Steps of epochs 2, 3 and 4 each watched the save point before them.
    expect(model.committedWhileHeld).toEqual([true, true, true]);
    const names = (await readdir(root)).filter((n) => n.endsWith('.safetensors')).sort();
    expect(names).toEqual(['best_acc_epoch_4.safetensors', 'epoch_3.safetensors', 'epoch_4.safetensors']);
    const last = await loadCheckpoint(new LocalBackend(), join(root, 'epoch_4.safetensors'));
    expect((last.state_dict as Record<string, Float32Array>)['fc.weight']?.[0]).toBe(2);
    // The lease was released, the fence handed back: the next job resumes and writes generation 2.
    const next = await train({ asyncSave: true, maxKeepCkpts: 2, saveBest: 'acc' }, 5, new ToyModel(), true);
    expect(next.resumedFrom).toBe(join(root, 'epoch_4.safetensors'));
    expect(readFileSync(join(root, 'last_checkpoint'), 'utf8')).toMatch(
      /^epoch_5\.safetensors\ngeneration: 2\nseal: [0-9a-f]{64}$/,
    );
  });

  it('the control: with a store instance (saves stay on the main thread) no save point commits while a step holds the thread', async () => {
    const model = new HoldingModel(join(root, 'last_checkpoint'), 1, 300);
    await train({ asyncSave: true, backend: new LocalBackend() }, 3, model);
    expect(model.committedWhileHeld).toEqual([false, false]);
    expect(readFileSync(join(root, 'last_checkpoint'), 'utf8').split('\n')[0]).toBe('epoch_3.safetensors');
  });

  it('a save the worker fails is raised by the training loop, and the pointer stays on the last good checkpoint', async () => {
    // A folder of someone else's files where epoch 2's checkpoint file must go: the worker's write fails.
    await mkdir(join(root, 'epoch_2.safetensors'));
    await writeFile(join(root, 'epoch_2.safetensors', 'notes.txt'), 'not a checkpoint');
    const error = await train({ asyncSave: true }, 3, new ToyModel()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SavepointError);
    expect(readFileSync(join(root, 'last_checkpoint'), 'utf8').split('\n')[0]).toBe('epoch_1.safetensors');
    await loadCheckpoint(new LocalBackend(), join(root, 'epoch_1.safetensors'));
    expect(readFileSync(join(root, 'epoch_2.safetensors', 'notes.txt'), 'utf8')).toBe('not a checkpoint');
  });

  it('incremental checkpoints on the save worker: each commits while the step holds the thread, loads, resumes, and leaves no object missing or unreferenced', async () => {
    const model = new HoldingModel(join(root, 'last_checkpoint'), 1);
    await train({ asyncSave: true, incremental: true, maxKeepCkpts: 2, saveBest: 'acc' }, 4, model);
    expect(model.committedWhileHeld).toEqual([true, true, true]);
    const local = new LocalBackend();
    const usage = await Run.open(root, { backend: local }).objectUsage();
    expect(usage.missing).toEqual([]);
    expect(usage.unreferenced).toEqual([]);
    const last = await loadCheckpoint(local, join(root, 'epoch_4.safetensors'));
    expect((last.state_dict as Record<string, Float32Array>)['fc.weight']?.[0]).toBe(2);
    // The next job resumes from the worker's manifests, and its own collection keeps them whole.
    const next = await train({ asyncSave: true, incremental: true, maxKeepCkpts: 2, saveBest: 'acc' }, 5, new ToyModel(), true);
    expect(next.resumedFrom).toBe(join(root, 'epoch_4.safetensors'));
    const after = await Run.open(root, { backend: local }).objectUsage();
    expect(after.missing).toEqual([]);
    expect(after.unreferenced).toEqual([]);
  });
});
