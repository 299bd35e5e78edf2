// (ours) A preemption save does not wait for a stale background save: a regular save of
// the same or an older position still uploading when the signal comes is stopped before
// its commit, rolled back, and the position at the signal is saved in its place, so the
// grace period pays for one save, not two. In process: the signal is emitted by the
// loop, `process.exit` is replaced, and the first upload of epoch 1 hangs until it is
// aborted (as a slow upload to a remote store would run on past the signal).

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { ToyModel } from '../../backend-test-suite/src/toy-model.js';
import { SaveQueue } from '../src/engine/save-queue.js';
import { CheckpointHook, loadCheckpoint, ReferenceTrainer } from '../src/index.js';
import type { PutBody, PutOptions } from '../src/store/index.js';

/** Holds the first upload of `name` until its signal aborts it (never resolves on its own). */
class StalledFirstUpload extends LocalBackend {
  stalled = 0;
  constructor(private readonly stalledName: string) {
    super();
  }
  override async put(path: string, body: PutBody, options?: PutOptions): Promise<void> {
    if (this.stalled === 0 && path.endsWith(this.stalledName)) {
      this.stalled++;
      const signal = options?.signal;
      await new Promise<never>((_, reject) => {
        if (!signal) return;
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    return super.put(path, body, options);
  }
}

/**
 * Trains on `store` with asyncSave and `saveOnSignals: ['SIGUSR2']`, emitting the signal
 * after epoch `signalAt` (`atSignal` runs just before), with `process.exit` replaced;
 * resolves the exit code and the log once the hook exits.
 */
async function trainUntilSignal(
  dir: string,
  store: StalledFirstUpload,
  signalAt: number,
  hook: { maxPendingSaves?: number } = {},
  atSignal: () => void = () => {},
): Promise<{ code: number; log: string }> {
  const logs: string[] = [];
  let exited!: (code: number) => void;
  const exit = new Promise<number>((resolve) => (exited = resolve));
  vi.spyOn(process, 'exit').mockImplementation(((code: number) => exited(code)) as never);
  // The training promise never settles: the hook "exits" instead of returning.
  void new ReferenceTrainer({
    workDir: dir,
    model: new ToyModel(),
    checkpointHook: new CheckpointHook({
      interval: 1,
      asyncSave: true,
      saveOnSignals: ['SIGUSR2'],
      preemptionGraceMs: 20_000,
      backend: store,
      ...hook,
    }),
    itersPerEpoch: 1,
    maxEpochs: 10,
    backend: store,
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
    shouldStop: ({ epoch }) => {
      if (epoch === signalAt) {
        atSignal();
        process.emit('SIGUSR2');
      }
      return false;
    },
  }).train();
  const code = await exit;
  return { code, log: logs.join('\n') };
}

describe('a preemption save with asyncSave and a save in flight', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-supersede-'));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it('stops the stalled save before its commit and saves the position at the signal in its place, well within the grace period', async () => {
    const store = new StalledFirstUpload('epoch_1.safetensors');
    const started = Date.now();
    // The signal comes right after epoch 1's save point, while its upload hangs.
    const { code, log } = await trainUntilSignal(dir, store, 1);
    expect(code).toBe(128 + constants.signals.SIGUSR2);
    expect(store.stalled).toBe(1);
    expect(log).toContain('Stopped the saves in flight before their commit');
    expect(log).not.toContain('did not commit within preemptionGraceMs');
    expect(Date.now() - started).toBeLessThan(20_000);
    // The pointer names epoch 1, saved by the signal's save, with the position at the signal.
    const pointer = (await readFile(join(dir, 'last_checkpoint'), 'utf8')).split('\n')[0];
    expect(pointer).toBe('epoch_1.safetensors');
    const checkpoint = await loadCheckpoint(store, join(dir, 'epoch_1.safetensors'));
    expect((checkpoint.meta as Record<string, unknown>).saved_on).toBe('signal');
    expect((checkpoint.meta as Record<string, unknown>).epoch).toBe(1);
  });

  it('stops an upload already under way, and the save point queued behind it, then saves the position at the signal', async () => {
    const store = new StalledFirstUpload('epoch_1.safetensors');
    let stalledAtSignal = -1;
    // Epoch 1's upload hangs; epoch 2's save point waits behind it when the signal comes.
    const { code, log: text } = await trainUntilSignal(dir, store, 2, { maxPendingSaves: 2 }, () => {
      stalledAtSignal = store.stalled;
    });
    expect(code).toBe(128 + constants.signals.SIGUSR2);
    expect(stalledAtSignal).toBe(1);
    expect(text).toContain('Stopped the saves in flight before their commit');
    expect(text).not.toContain('did not commit within preemptionGraceMs');
    expect(text).not.toContain('An earlier save failed');
    const pointer = (await readFile(join(dir, 'last_checkpoint'), 'utf8')).split('\n')[0];
    expect(pointer).toBe('epoch_2.safetensors');
    const checkpoint = await loadCheckpoint(store, join(dir, 'epoch_2.safetensors'));
    expect((checkpoint.meta as Record<string, unknown>).saved_on).toBe('signal');
    // Epoch 1's upload never completed: no file of it, and nothing names it.
    await expect(readFile(join(dir, 'epoch_1.safetensors'))).rejects.toThrow();
    expect(checkpoint.message_hub).toBeDefined();
    expect(JSON.stringify(checkpoint.message_hub)).not.toContain('epoch_1');
  });
});

describe('SaveQueue.supersede', () => {
  it("stops nothing while a best's save point (not supersedable) is in flight, and stops regular ones before their commit", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const seen: (AbortSignal | undefined)[] = [];
    const queue = new SaveQueue({ asyncSave: true, maxPendingSaves: 3, signal: undefined });
    queue.useRunner({
      offThread: false,
      async run(_steps, supersede) {
        seen.push(supersede);
        await held;
        return undefined;
      },
      async close() {},
    });
    const step = (steps: { kind: string }[]) => {
      steps.push({ kind: 'collect' });
      return Promise.resolve();
    };
    await queue.savePoint(step as never, undefined, { supersedable: true });
    await queue.savePoint(step as never); // a best's
    expect(queue.supersede()).toBe(false);
    release();
    await queue.flush();
    expect(seen.every((signal) => signal?.aborted === false)).toBe(true);

    const fails: string[] = [];
    const queue2 = new SaveQueue({ asyncSave: true, maxPendingSaves: 3, signal: undefined });
    queue2.useRunner({
      offThread: false,
      run: (_steps, supersede) =>
        new Promise((_, reject) => supersede?.addEventListener('abort', () => reject(new Error('stopped')), { once: true })),
      async close() {},
    });
    const tracker = { capture: () => 0, commit: () => fails.push('commit'), fail: () => fails.push('fail') };
    await queue2.savePoint(step as never, tracker, { supersedable: true });
    await queue2.savePoint(step as never, tracker, { supersedable: true });
    await setImmediate();
    expect(queue2.supersede()).toBe(true);
    // Rolled back, and no failure raised.
    await queue2.flush();
    expect(fails).toEqual(['fail', 'fail']);
  });
});
