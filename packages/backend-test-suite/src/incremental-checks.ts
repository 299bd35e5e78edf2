// (ours) The garbage-collection rules of incremental checkpoints (docs/checkpoint-policy.md,
// "Incremental checkpoints"), on the store under test: a save uploads only the objects
// not stored yet; a checkpoint never names a missing object; after a save point no
// object is left that no kept checkpoint (regular, best) names; a job taken over deletes
// nothing. testCheckpointPolicy runs them, so every backend proves them.
import {
  CheckpointHook,
  type CheckpointHookOptions,
  LeaseHeldError,
  ReferenceTrainer,
  Run,
  type StorageBackend,
} from '@savepoint/core';
import { expect, it } from 'vitest';
import { InstrumentedBackend } from './instrumented-backend.js';

export interface IncrementalCheckContext {
  readonly backend: StorageBackend;
  freshWorkDir(): string;
}

/** A transfer-learning state: a frozen base of four tensors and a head that changes every step. */
export function transferModel(acc: (epoch: number) => number = (e) => e / 10) {
  const base = Array.from({ length: 4 }, (_, i) => new Float32Array(256).fill(-(i + 1)));
  let head = new Float32Array(64);
  return {
    trainStep: () => {
      head = head.map((x) => x + 1);
      return 0;
    },
    evaluate: (p: { epoch: number }) => ({ acc: acc(p.epoch) }),
    stateDict: () => ({ head, ...Object.fromEntries(base.map((b, i) => [`base${i}`, b])) }),
    loadStateDict: (s: Record<string, unknown>) => {
      head = new Float32Array(s.head as Float32Array);
    },
  };
}

export async function trainIncremental(
  backend: StorageBackend,
  workDir: string,
  options: { epochs: number; hook?: CheckpointHookOptions; resume?: boolean; acc?: (epoch: number) => number },
) {
  const trainer = new ReferenceTrainer({
    workDir,
    model: transferModel(options.acc),
    checkpointHook: new CheckpointHook({ interval: 1, incremental: true, saveOptimizer: false, ...options.hook, backend }),
    itersPerEpoch: 1,
    maxEpochs: options.epochs,
    valInterval: 1,
    resume: options.resume ?? false,
    backend,
    logger: { info() {}, warn() {} },
  });
  await trainer.train();
  return trainer;
}

export function incrementalChecks(ctx: IncrementalCheckContext): void {
  const objectPuts = (store: InstrumentedBackend) =>
    store.calls.filter((c) => c.op === 'put' && /savepoint-objects/.test(c.path)).length;

  it('incremental: a save uploads only the objects not stored (the frozen base once), and the checkpoints load', async () => {
    const dir = ctx.freshWorkDir();
    const store = new InstrumentedBackend(ctx.backend);
    await trainIncremental(store, dir, { epochs: 3, hook: { maxKeepCkpts: 2 } });
    // Four base tensors and a head at the first save, one head per save after.
    expect(objectPuts(store)).toBe(5 + 2);
    const run = Run.open(dir, { backend: ctx.backend });
    const loaded = (await run.load('epoch_3.safetensors')).state_dict as Record<string, Float32Array>;
    expect(loaded.head?.[0]).toBe(3);
    expect(loaded.base3?.[0]).toBe(-4);
  });

  it('incremental: after each save point no object is unreferenced and none is missing; a best shares its regular checkpoint objects', async () => {
    const dir = ctx.freshWorkDir();
    const acc = [0.1, 0.5, 0.3, 0.7, 0.2];
    await trainIncremental(ctx.backend, dir, {
      epochs: 5,
      hook: { maxKeepCkpts: 1, saveBest: 'acc' },
      acc: (e) => acc[e - 1] ?? 0,
    });
    const usage = await Run.open(dir, { backend: ctx.backend }).objectUsage();
    expect(usage.missing).toEqual([]);
    expect(usage.unreferenced).toEqual([]);
    // epoch_5 and best_acc_epoch_4: the base is shared, each has its own head.
    expect(usage.stored).toBe(6);
    const best = usage.byCheckpoint.get('best_acc_epoch_4.safetensors');
    const last = usage.byCheckpoint.get('epoch_5.safetensors');
    expect(best?.exclusive).toBe(last?.exclusive);
    expect(best?.shared).toBeGreaterThan(3 * (best?.exclusive ?? 0));
  });

  it('incremental: what a crash leaves unreferenced is collected by the next resume', async () => {
    const dir = ctx.freshWorkDir();
    await trainIncremental(ctx.backend, dir, { epochs: 2, hook: { maxKeepCkpts: 1 } });
    const run = Run.open(dir, { backend: ctx.backend });
    const stray = run.layout.objectPath('F32', 'b'.repeat(64));
    await ctx.backend.put(stray, 'an object of a save that was killed before its manifest');
    expect((await run.objectUsage()).unreferenced).toHaveLength(1);
    await trainIncremental(ctx.backend, dir, { epochs: 2, hook: { maxKeepCkpts: 1 }, resume: true });
    expect(await ctx.backend.exists(stray)).toBe(false);
    expect((await run.objectUsage()).missing).toEqual([]);
  });

  it('incremental: a job whose run was taken over collects nothing (the fence is checked before deleting)', async () => {
    const dir = ctx.freshWorkDir();
    const run = Run.open(dir, { backend: ctx.backend });
    const lease = await run.acquireLease({ ttlMs: 30_000, purpose: 'gc-fence-test' });
    try {
      await run.save('epoch_1.safetensors', { state_dict: { w: new Float32Array([1, 2]) } }, { kind: 'incremental' });
      await run.movePointer('epoch_1.safetensors');
      const stray = run.layout.objectPath('F32', 'c'.repeat(64));
      await ctx.backend.put(stray, 'unreferenced');
      // Another job moves the pointer (a takeover): this job's deletions must stop.
      await ctx.backend.put(run.layout.pointerPath, 'epoch_1.safetensors\ngeneration: 99\n');
      await expect(run.collectGarbage()).rejects.toBeInstanceOf(LeaseHeldError);
      expect(await ctx.backend.exists(stray)).toBe(true);
    } finally {
      await lease.release().catch(() => {});
    }
  });
}
