// The policy engine's test matrix, parameterised by a store factory: every
// example of docs/checkpoint-policy.md, in epoch and iteration mode, plus the
// crash-ordering sweep. Each backend runs it with one call, so rotation and best
// removal are proven identical on every store.
import {
  CheckpointHook,
  type CheckpointHookOptions,
  checkpointShape,
  ForeignPathError,
  LeaseHeldError,
  loadCheckpoint,
  openCheckpoint,
  pruneRun,
  ReferenceTrainer,
  Run,
  type StorageBackend,
  saveCheckpointDir,
  saveCheckpointFile,
} from '@savepoint/core';
import { processIdentity } from '@savepoint/core/kit';
import pMap from 'p-map';
import { describe, expect, it, vi } from 'vitest';
import { incrementalChecks } from './incremental-checks.js';
import { InjectedFault, InstrumentedBackend, MUTATING_OPERATIONS } from './instrumented-backend.js';
import { type BackendFactory, useFreshRoot } from './test-backend.js';
import { ToyModel } from './toy-model.js';

/** Crash scenarios of the exhaustive sweep in flight at once. */
const SWEEP_CONCURRENCY = 4;

export interface PolicyTestOptions {
  skipReason?: string | undefined;
  /** Run the crash sweep (one training run per store write); on by default. */
  crashSweep?: boolean;
}

type Mode = 'epoch' | 'iter';
type Metrics = (step: number) => Record<string, number>;

interface RunOptions {
  hook?: CheckpointHookOptions;
  loadFrom?: string;
  steps?: number;
  metrics?: Metrics;
  resume?: boolean;
  backend?: StorageBackend;
  stopAt?: number;
  logs?: string[];
  /** A model of the test's own (a clock that moves each step, a step that throws). */
  model?: ToyModel;
}

export function testCheckpointPolicy(name: string, factory: BackendFactory, options: PolicyTestOptions = {}): void {
  const suite = options.skipReason ? describe.skip : describe;
  suite(`${name} checkpoint policy${options.skipReason ? ` (skipped: ${options.skipReason})` : ''}`, () => {
    const fresh = useFreshRoot(factory, 'savepoint-policy');
    // The store, read lazily: it is built in beforeAll.
    const ctx = {
      get backend(): StorageBackend {
        return fresh.ctx.backend;
      },
    };
    let counter = 0;
    const freshWorkDir = () => ctx.backend.joinPath(fresh.runRoot, `run${++counter}`);

    /** Trains `steps` epochs (or iterations) with the reference loop; returns the trainer. */
    async function train(mode: Mode, workDir: string, run: RunOptions = {}) {
      const steps = run.steps ?? 11;
      const metrics = run.metrics;
      const model = run.model ?? new ToyModel((pos) => metrics?.(mode === 'epoch' ? pos.epoch : pos.iter) ?? {});
      const hook = new CheckpointHook({ byEpoch: mode === 'epoch', backend: run.backend ?? ctx.backend, ...run.hook });
      const logs = run.logs ?? [];
      const trainer = new ReferenceTrainer({
        workDir,
        model,
        checkpointHook: hook,
        itersPerEpoch: mode === 'epoch' ? 1 : 1000,
        ...(mode === 'epoch' ? { maxEpochs: steps } : { maxIters: steps }),
        valInterval: metrics ? 1 : 0,
        resume: run.resume ?? false,
        loadFrom: run.loadFrom,
        backend: run.backend ?? ctx.backend,
        logger: { info: (m) => logs.push(m), warn: (m) => logs.push(`WARN ${m}`) },
        shouldStop: run.stopAt ? (pos) => (mode === 'epoch' ? pos.epoch : pos.iter) >= (run.stopAt as number) : undefined,
      });
      await trainer.train();
      return { trainer, hook, model, logs };
    }

    async function names(dir: string): Promise<string[]> {
      const out: string[] = [];
      for await (const entry of ctx.backend.list(dir)) out.push(entry.name);
      return out.sort();
    }

    const regular = (mode: Mode, steps: number[]) => steps.map((s) => `${mode}_${s}.safetensors`).sort();
    const savedSteps = (calls: { op: string; path: string }[], mode: Mode) =>
      calls
        .filter((c) => c.op === 'put' && new RegExp(`/${mode}_\\d+\\.safetensors$`).test(c.path))
        .map((c) => Number(/_(\d+)\.safetensors$/.exec(c.path)?.[1]));

    for (const mode of ['epoch', 'iter'] as const) {
      describe(`${mode} mode`, () => {
        it('interval 2 saves 2, 4, 6, 8, 10 and the last step 11', async () => {
          const store = new InstrumentedBackend(ctx.backend);
          const dir = freshWorkDir();
          await train(mode, dir, { hook: { interval: 2 }, backend: store });
          expect(savedSteps(store.calls, mode)).toEqual([2, 4, 6, 8, 10, 11]);
          expect(await names(dir)).toEqual([...regular(mode, [2, 4, 6, 8, 10, 11]), 'last_checkpoint'].sort());
        });

        it('interval 2 with saveBegin 5 saves 5, 7, 9, 11; with saveBegin 1 saves 1, 3, ..., 11', async () => {
          const a = new InstrumentedBackend(ctx.backend);
          await train(mode, freshWorkDir(), { hook: { interval: 2, saveBegin: 5 }, backend: a });
          expect(savedSteps(a.calls, mode)).toEqual([5, 7, 9, 11]);
          const b = new InstrumentedBackend(ctx.backend);
          await train(mode, freshWorkDir(), { hook: { interval: 2, saveBegin: 1 }, backend: b });
          expect(savedSteps(b.calls, mode)).toEqual([1, 3, 5, 7, 9, 11]);
        });

        it('saveLast false skips the last step; meta records where training stood', async () => {
          const store = new InstrumentedBackend(ctx.backend);
          const dir = freshWorkDir();
          await train(mode, dir, { hook: { interval: 5, saveLast: false }, backend: store });
          expect(savedSteps(store.calls, mode)).toEqual([5, 10]);
          const ckpt = await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, `${mode}_10.safetensors`));
          expect(ckpt.meta).toEqual(mode === 'epoch' ? { epoch: 10, iter: 10 } : { epoch: 0, iter: 10 });
          expect(Object.keys(ckpt).sort()).toEqual(['message_hub', 'meta', 'optimizer', 'param_schedulers', 'state_dict']);
        });

        it('maxKeepCkpts 1 keeps only the newest; maxKeepCkpts 3 keeps 9, 10, 11, recorded inside step 11', async () => {
          const one = freshWorkDir();
          await train(mode, one, { hook: { interval: 1, maxKeepCkpts: 1 } });
          expect(await names(one)).toEqual([...regular(mode, [11]), 'last_checkpoint'].sort());
          const three = freshWorkDir();
          await train(mode, three, { hook: { interval: 1, maxKeepCkpts: 3 } });
          expect(await names(three)).toEqual([...regular(mode, [9, 10, 11]), 'last_checkpoint'].sort());
          const last = await loadCheckpoint(ctx.backend, ctx.backend.joinPath(three, `${mode}_11.safetensors`));
          const info = (last.message_hub as { runtime_info: Record<string, unknown> }).runtime_info;
          expect(info.keep_ckpt_ids).toEqual([9, 10, 11]);
          // Runtime info names checkpoints relative to the checkpoint folder, so a copied run stays whole.
          expect(info.last_ckpt).toBe(`${mode}_11.safetensors`);
        });

        it("the pointer's first line is the newest checkpoint name relative to the work dir; the second, the writer's fencing generation; the third, the checkpoint's seal", async () => {
          const dir = freshWorkDir();
          await train(mode, dir, { hook: { interval: 3 } });
          const raw = new TextDecoder().decode(await ctx.backend.get(ctx.backend.joinPath(dir, 'last_checkpoint')));
          expect(raw).toMatch(new RegExp(`^${mode}_11\\.safetensors\ngeneration: 1\nseal: [0-9a-f]{64}$`));
          expect(await Run.open(dir, { backend: ctx.backend }).latest()).toBe(
            ctx.backend.joinPath(dir, `${mode}_11.safetensors`),
          );
          // The next job writes with a generation above it, from its first write on (taking the lease).
          await train(mode, dir, { hook: { interval: 3 }, steps: 12, resume: true });
          const next = new TextDecoder().decode(await ctx.backend.get(ctx.backend.joinPath(dir, 'last_checkpoint')));
          expect(next).toMatch(new RegExp(`^${mode}_12\\.safetensors\ngeneration: 2\nseal: [0-9a-f]{64}$`));
        });

        it('resume from step 11 holding [9, 10, 11] with maxKeepCkpts 2, train to 12: 9 and 10 go, 11 and 12 stay', async () => {
          const dir = freshWorkDir();
          await train(mode, dir, { hook: { interval: 1, maxKeepCkpts: 3 } });
          const { trainer, model } = await train(mode, dir, { hook: { interval: 1, maxKeepCkpts: 2 }, steps: 12, resume: true });
          expect(trainer.resumedFrom).toBe(ctx.backend.joinPath(dir, `${mode}_11.safetensors`));
          expect(model.steps).toBe(1);
          expect(await names(dir)).toEqual([...regular(mode, [11, 12]), 'last_checkpoint'].sort());
          const last = await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, `${mode}_12.safetensors`));
          expect((last.message_hub as { runtime_info: { keep_ckpt_ids: number[] } }).runtime_info.keep_ckpt_ids).toEqual([
            11, 12,
          ]);
          // Weights continued from the checkpoint: 12 steps of +0.5 on weight 0.
          expect((last.state_dict as Record<string, Float32Array>)['fc.weight']?.[0]).toBe(6);
        });

        it('filename templates name regular and best checkpoints', async () => {
          const dir = freshWorkDir();
          await train(mode, dir, {
            hook: { interval: 4, filenameTmpl: 'ckpt-{}-x.safetensors', saveBest: 'acc' },
            metrics: (s) => ({ acc: s === 3 ? 1 : 0.1 }),
            steps: 5,
          });
          expect(await names(dir)).toEqual(
            // No regular checkpoint existed at step 3, so the new best triggers no re-save there.
            ['best_acc_ckpt-3-x.safetensors', 'ckpt-4-x.safetensors', 'ckpt-5-x.safetensors', 'last_checkpoint'].sort(),
          );
        });

        it('best on test/acc peaking at step 5 gives best_test_acc_<5>, re-saving step 5 despite interval 2', async () => {
          const dir = freshWorkDir();
          const acc = [0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.6, 0.7, 0.8, 0.85, 0.3];
          const store = new InstrumentedBackend(ctx.backend);
          const { logs } = await train(mode, dir, {
            hook: { interval: 2, saveBest: 'test/acc' },
            metrics: (s) => ({ 'test/acc': acc[s - 1] as number }),
            backend: store,
          });
          const best = `best_test_acc_${mode}_5.safetensors`;
          // Steps 3 and 5 are off-interval but improved the best after a regular save existed: re-saved.
          expect(await names(dir)).toEqual([best, ...regular(mode, [2, 3, 4, 5, 6, 8, 10, 11]), 'last_checkpoint'].sort());
          // Step 1 had no regular checkpoint yet: no re-save. Steps 3 and 5 improved off-interval: saved
          // for the best, as the reference. (ours) Steps 2 and 4 improved at a regular save: not saved a
          // second time (the reference does); the pointer carries the new best instead.
          expect(savedSteps(store.calls, mode)).toEqual([2, 3, 4, 5, 6, 8, 10, 11]);
          const four = new TextDecoder().decode(await ctx.backend.get(ctx.backend.joinPath(dir, 'last_checkpoint')));
          expect(four.split('\n')[0]).toBe(`${mode}_11.safetensors`);
          const five = await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, `${mode}_5.safetensors`));
          const info = (five.message_hub as { runtime_info: Record<string, unknown> }).runtime_info;
          expect(info.best_ckpt).toBe(best);
          expect(info.best_score).toBe(0.9);
          // (ours) The best is a copy of the regular checkpoint of its step, made by the store: the same bytes.
          const bestCkpt = await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, best));
          expect(Object.keys(bestCkpt).sort()).toEqual(Object.keys(five).sort());
          expect(await ctx.backend.get(ctx.backend.joinPath(dir, best))).toEqual(
            await ctx.backend.get(ctx.backend.joinPath(dir, `${mode}_5.safetensors`)),
          );
          expect(store.calls.some((c) => c.op === 'copy' && c.path.endsWith(`/${mode}_5.safetensors`))).toBe(true);
          expect(logs.some((l) => l.includes('previous best checkpoint') && l.includes(`best_test_acc_${mode}_4`))).toBe(true);
        });

        it('several metrics keep one best each with their own rules; auto takes the first metric', async () => {
          const dir = freshWorkDir();
          const acc = [0.1, 0.5, 0.3, 0.2];
          const loss = [0.9, 0.8, 0.2, 0.5];
          const { trainer } = await train(mode, dir, {
            hook: { saveBest: ['acc', 'loss'], interval: 1 },
            metrics: (s) => ({ acc: acc[s - 1] as number, loss: loss[s - 1] as number }),
            steps: 4,
          });
          expect((await names(dir)).filter((n) => n.startsWith('best_'))).toEqual([
            `best_acc_${mode}_2.safetensors`,
            `best_loss_${mode}_3.safetensors`,
          ]);
          expect(trainer.runtimeInfo.get('best_score_acc')).toBe(0.5);
          expect(trainer.runtimeInfo.get('best_score_loss')).toBe(0.2);
          expect(trainer.runtimeInfo.has('best_score')).toBe(false);

          const autoDir = freshWorkDir();
          const auto = await train(mode, autoDir, {
            hook: { saveBest: 'auto', interval: 1 },
            metrics: (s) => ({ loss: loss[s - 1] as number, acc: acc[s - 1] as number }),
            steps: 4,
          });
          expect((await names(autoDir)).filter((n) => n.startsWith('best_'))).toEqual([`best_loss_${mode}_3.safetensors`]);
          expect(auto.trainer.runtimeInfo.get('best_score')).toBe(0.2);
        });

        it('an explicit rule overrides inference; missing metric values are skipped', async () => {
          const dir = freshWorkDir();
          const acc = [0.5, 0.1, 0.3];
          await train(mode, dir, {
            hook: { saveBest: 'acc', rule: 'less', interval: 1 },
            metrics: (s) => (s === 3 ? ({} as Record<string, number>) : { acc: acc[s - 1] as number, other: 1 }),
            steps: 3,
          });
          expect((await names(dir)).filter((n) => n.startsWith('best_'))).toEqual([`best_acc_${mode}_2.safetensors`]);
        });

        it('empty metrics warn and change nothing', async () => {
          const dir = freshWorkDir();
          const store = new InstrumentedBackend(ctx.backend);
          const { logs, trainer } = await train(mode, dir, {
            hook: { saveBest: 'acc' },
            metrics: () => ({}),
            steps: 2,
            backend: store,
          });
          expect(logs.filter((l) => l.startsWith('WARN') && l.includes('empty'))).toHaveLength(2);
          expect(trainer.runtimeInfo.has('best_score')).toBe(false);
          expect(savedSteps(store.calls, mode)).toEqual([2]);
        });

        it('published copies keep only publishedKeys and are named by the SHA-256 of their bytes', async () => {
          const dir = freshWorkDir();
          await train(mode, dir, {
            hook: { interval: 2, saveBest: 'acc', publishedKeys: ['meta', 'state_dict'] },
            metrics: (s) => ({ acc: s === 2 ? 1 : 0 }),
            steps: 3,
          });
          const all = await names(dir);
          const published = all.filter((n) => /-[0-9a-f]{8}\.safetensors$/.test(n));
          expect(published).toHaveLength(2);
          expect(published.some((n) => n.startsWith(`${mode}_3-`))).toBe(true);
          expect(published.some((n) => n.startsWith(`best_acc_${mode}_2-`))).toBe(true);
          const { createHash } = await import('node:crypto');
          for (const file of published) {
            const bytes = await ctx.backend.get(ctx.backend.joinPath(dir, file));
            expect(file).toContain(`-${createHash('sha256').update(bytes).digest('hex').slice(0, 8)}.`);
            expect(Object.keys(await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, file))).sort()).toEqual([
              'meta',
              'state_dict',
            ]);
          }
        });

        it('directory checkpoints rotate with rmtree and are complete only with their manifest', async () => {
          const dir = freshWorkDir();
          await train(mode, dir, { hook: { interval: 1, maxKeepCkpts: 2, layout: 'directory', maxShardBytes: 16 }, steps: 4 });
          expect(await names(dir)).toEqual([...regular(mode, [3, 4]), 'last_checkpoint'].sort());
          const four = ctx.backend.joinPath(dir, `${mode}_4.safetensors`);
          expect(await checkpointShape(ctx.backend, four)).toBe('directory');
          const ckpt = await loadCheckpoint(ctx.backend, four);
          expect([...((ckpt.state_dict as Record<string, Float32Array>)['fc.weight'] ?? [])]).toEqual([2, 4, 6, 8]);
          // A folder without its manifest is not a checkpoint.
          const partial = ctx.backend.joinPath(dir, `${mode}_9.safetensors`);
          await ctx.backend.put(ctx.backend.joinPath(partial, 'shard-00001-of-00001-dead.safetensors'), 'partial');
          expect(await checkpointShape(ctx.backend, partial)).toBe('incomplete');
          await expect(loadCheckpoint(ctx.backend, partial)).rejects.toThrow(/manifest/);
        });
      });
    }

    describe('ownership: a run loads and deletes only what it owns', () => {
      const acc = (s: number) => ({ acc: s / 10 });
      /** Every file below `dir` with its bytes' length: what must survive untouched. */
      async function snapshot(dir: string): Promise<string[]> {
        const out: string[] = [];
        for await (const entry of ctx.backend.list(dir, { recursive: true })) out.push(`${entry.name}:${entry.size}`);
        return out.sort();
      }
      /** A run that is not ours: a checkpoint, a best, and a file a careless engine would delete. */
      async function victimRun(): Promise<{ dir: string; files: string[] }> {
        const dir = freshWorkDir();
        await train('epoch', dir, { hook: { interval: 1, saveBest: 'acc' }, metrics: acc, steps: 2 });
        await ctx.backend.put(ctx.backend.joinPath(dir, 'pretrained.safetensors'), 'someone else');
        return { dir, files: await snapshot(dir) };
      }
      /** Plants a checkpoint whose runtime info names `victim`'s files for deletion. */
      async function hostileCheckpoint(path: string, victim: string, last: string) {
        const j = (name: string) => ctx.backend.joinPath(victim, name);
        await saveCheckpointFile(ctx.backend, path, {
          meta: { epoch: 2, iter: 2 },
          state_dict: { w: new Float32Array([1]) },
          message_hub: {
            runtime_info: {
              last_ckpt: last,
              best_ckpt: j('best_acc_epoch_2.safetensors'),
              best_score: 0.2,
              keep_ckpt_ids: [1, 2],
              pending_removals: [j('epoch_1.safetensors'), j('pretrained.safetensors'), victim, '../x', 42],
            },
          },
        });
      }

      it('a pointer edited to name another folder is refused on resume, naming loadFrom; nothing is deleted', async () => {
        const victim = await victimRun();
        const dir = freshWorkDir();
        const foreign = ctx.backend.joinPath(victim.dir, 'epoch_2.safetensors');
        await hostileCheckpoint(foreign, victim.dir, foreign);
        await ctx.backend.put(ctx.backend.joinPath(dir, 'last_checkpoint'), foreign);
        const error = await train('epoch', dir, { hook: { interval: 1, saveBest: 'acc' }, metrics: acc, resume: true }).catch(
          (e) => e,
        );
        expect(error).toBeInstanceOf(ForeignPathError);
        expect(String(error.message)).toContain(foreign);
        expect(String(error.message)).toContain('loadFrom');
        expect((await snapshot(victim.dir)).filter((f) => !f.startsWith('epoch_2.'))).toEqual(
          victim.files.filter((f) => !f.startsWith('epoch_2.')),
        );
        // On purpose, loadFrom takes the weights and deletes nothing.
        const { trainer, model } = await train('epoch', dir, {
          hook: { interval: 1, saveBest: 'acc' },
          metrics: acc,
          steps: 1,
          loadFrom: foreign,
        });
        expect(trainer.resumedFrom).toBeUndefined();
        expect(model.steps).toBe(1);
        expect((await snapshot(victim.dir)).filter((f) => !f.startsWith('epoch_2.'))).toEqual(
          victim.files.filter((f) => !f.startsWith('epoch_2.')),
        );
      });

      it('runtime info naming paths outside the run is warned about and never deleted', async () => {
        const victim = await victimRun();
        const dir = freshWorkDir();
        // Our own checkpoint, edited: its runtime info points at the victim's files.
        await hostileCheckpoint(ctx.backend.joinPath(dir, 'epoch_2.safetensors'), victim.dir, 'epoch_2.safetensors');
        await ctx.backend.put(ctx.backend.joinPath(dir, 'last_checkpoint'), 'epoch_2.safetensors');
        const logs: string[] = [];
        await train('epoch', dir, {
          hook: { interval: 1, maxKeepCkpts: 1, saveBest: 'acc' },
          metrics: (s) => ({ acc: s }),
          steps: 4,
          resume: true,
          logs,
        });
        expect(await snapshot(victim.dir)).toEqual(victim.files);
        expect(logs.some((l) => l.startsWith('WARN') && l.includes('never deleted'))).toBe(true);
        expect(await names(dir)).toEqual(['best_acc_epoch_4.safetensors', 'epoch_4.safetensors', 'last_checkpoint']);
      });

      it('a copied run resumes in its new place, keeps its own best and never touches the original', async () => {
        const original = freshWorkDir();
        await train('epoch', original, {
          hook: { interval: 1, maxKeepCkpts: 2, saveBest: 'acc' },
          metrics: (s) => ({ acc: [0.1, 0.9, 0.2, 0.3][s - 1] as number }),
          steps: 4,
        });
        const before = await snapshot(original);
        const copy = freshWorkDir();
        for await (const entry of ctx.backend.list(original)) {
          await ctx.backend.copy(entry.path, ctx.backend.joinPath(copy, entry.name));
        }
        const { trainer } = await train('epoch', copy, {
          hook: { interval: 1, maxKeepCkpts: 2, saveBest: 'acc' },
          metrics: (s) => ({ acc: [0.1, 0.9, 0.2, 0.3, 0.4, 0.5][s - 1] as number }),
          steps: 6,
          resume: true,
        });
        expect(trainer.resumedFrom).toBe(ctx.backend.joinPath(copy, 'epoch_4.safetensors'));
        expect(await snapshot(original)).toEqual(before);
        expect(await names(copy)).toEqual([
          'best_acc_epoch_2.safetensors',
          'epoch_5.safetensors',
          'epoch_6.safetensors',
          'last_checkpoint',
        ]);
      });

      it('after a resume with interval 2, a new best keeps the old one until a regular save names it; a crash there leaves a best', async () => {
        const dir = freshWorkDir();
        const rising = (s: number) => ({ acc: s / 10 });
        const plan = { interval: 2, saveBest: 'acc' } as const;
        await train('epoch', dir, { hook: plan, metrics: rising, steps: 10, stopAt: 6 });
        // Resume, improve at 7, die before the re-save of step 7 reaches the store.
        const dying = new InstrumentedBackend(ctx.backend, (call) =>
          call.op === 'put' && call.path.endsWith('/epoch_7.safetensors') ? 'before' : undefined,
        );
        await expect(
          train('epoch', dir, { hook: plan, metrics: rising, steps: 10, resume: true, backend: dying }),
        ).rejects.toBeInstanceOf(InjectedFault);
        const bests = async () => (await names(dir)).filter((n) => n.startsWith('best_acc_'));
        expect((await bests()).length).toBeGreaterThanOrEqual(1);
        // The next resume cleans up and keeps exactly one best, which loads.
        await train('epoch', dir, { hook: plan, metrics: rising, steps: 6, resume: true });
        expect(await bests()).toEqual(['best_acc_epoch_6.safetensors']);
        await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, 'best_acc_epoch_6.safetensors'));
      });

      it('a crash just before the pointer moves after a best re-save does not leave maxKeepCkpts + 1 checkpoints', async () => {
        const dir = freshWorkDir();
        const plan = { interval: 2, maxKeepCkpts: 1, saveBest: 'acc' } as const;
        const metrics = (s: number) => ({ acc: s / 10 });
        await train('epoch', dir, { hook: plan, metrics, steps: 10, stopAt: 4 });
        // The first put of the pointer is the resumed job's fencing rewrite (taking the lease); the second is the move.
        let pointerPuts = 0;
        const dying = new InstrumentedBackend(ctx.backend, (call) =>
          call.op === 'put' && call.path.endsWith('/last_checkpoint') && ++pointerPuts === 2 ? 'before' : undefined,
        );
        await expect(
          train('epoch', dir, { hook: plan, metrics, steps: 10, resume: true, backend: dying }),
        ).rejects.toBeInstanceOf(InjectedFault);
        expect((await names(dir)).filter((n) => /^epoch_/.test(n))).toEqual(['epoch_4.safetensors', 'epoch_5.safetensors']);
        // Resuming (even with nothing left to train) brings rotation back to maxKeepCkpts.
        await train('epoch', dir, { hook: plan, metrics, steps: 4, resume: true });
        expect((await names(dir)).filter((n) => /^epoch_/.test(n))).toEqual(['epoch_4.safetensors']);
        expect((await names(dir)).filter((n) => n.startsWith('best_'))).toEqual(['best_acc_epoch_4.safetensors']);
      });

      it('one writer per run: a second trainer fails at once naming the holder; the lease is released at the end', async () => {
        const dir = freshWorkDir();
        const first = new CheckpointHook({ interval: 1, backend: ctx.backend });
        const runner = new ReferenceTrainer({
          workDir: dir,
          model: new ToyModel(),
          checkpointHook: first,
          itersPerEpoch: 1,
          maxEpochs: 2,
          backend: ctx.backend,
        });
        await first.beforeTrain(runner);
        const second = train('epoch', dir, { hook: { interval: 1 }, steps: 2 });
        const error = await second.catch((e) => e);
        expect(error).toBeInstanceOf(LeaseHeldError);
        expect(String(error.message)).toMatch(
          /held by training \(owner [0-9a-f-]+, host .+, pid \d+, generation 1\) until \d{4}-/,
        );
        // What to do is in the message: which file to delete when no job holds it.
        expect(String(error.message)).toContain(ctx.backend.joinPath(dir, 'savepoint.lease'));
        // The first writer is unharmed: it saves, and the second wrote nothing.
        runner.epoch = 1;
        runner.iter = 1;
        await first.afterTrainEpoch(runner);
        await first.afterTrain(runner);
        expect(await names(dir)).toEqual(['epoch_1.safetensors', 'last_checkpoint']);
        // Released: the next job trains at once.
        await train('epoch', dir, { hook: { interval: 1 }, steps: 2, resume: true });
        expect(await names(dir)).toEqual(['epoch_1.safetensors', 'epoch_2.safetensors', 'last_checkpoint']);
      });

      it('an expired lease, or one whose process is provably gone, is taken over; one elsewhere, or naming only host and pid, is not', async () => {
        const dir = freshWorkDir();
        const lease = ctx.backend.joinPath(dir, 'savepoint.lease');
        const record = (over: Record<string, unknown>) =>
          JSON.stringify({
            format: 'savepoint.lease',
            owner: 'other',
            host: 'elsewhere.example',
            pid: 1,
            purpose: 'training',
            acquiredAt: new Date().toISOString(),
            expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
            ...over,
          });
        await ctx.backend.put(lease, record({}));
        await expect(train('epoch', dir, { hook: { interval: 1 }, steps: 1 })).rejects.toThrow(/elsewhere\.example/);
        expect(await names(dir)).toEqual(['savepoint.lease']);
        await ctx.backend.put(lease, record({ expiresAt: new Date(Date.now() - 1000).toISOString() }));
        const logs: string[] = [];
        await train('epoch', dir, { hook: { interval: 1 }, steps: 1, logs });
        expect(logs.some((l) => l.includes('Taking over') && l.includes('expired'))).toBe(true);
        // Host and pid alone prove nothing (another container with this hostname may run that pid): not taken over.
        const { hostname } = await import('node:os');
        const gone = 2 ** 22 + 12345;
        await ctx.backend.put(lease, record({ host: hostname(), pid: gone }));
        await expect(train('epoch', dir, { hook: { interval: 1 }, steps: 2, resume: true })).rejects.toBeInstanceOf(
          LeaseHeldError,
        );
        // The same pid in another PID namespace of this machine: cannot be checked from here, not taken over.
        const me = processIdentity();
        await ctx.backend.put(lease, record({ host: hostname(), pid: gone, process: { ...me, pid: gone, pidNamespace: '1' } }));
        await expect(train('epoch', dir, { hook: { interval: 1 }, steps: 2, resume: true })).rejects.toBeInstanceOf(
          LeaseHeldError,
        );
        // This boot and PID namespace, and no such process: provably gone, taken over at once
        // (where /proc tells boot and namespace; elsewhere only the expiry can).
        await ctx.backend.put(lease, record({ host: hostname(), pid: gone, process: { ...me, pid: gone, startTime: '1' } }));
        if (!me.bootId || !me.pidNamespace) {
          await expect(train('epoch', dir, { hook: { interval: 1 }, steps: 2, resume: true })).rejects.toBeInstanceOf(
            LeaseHeldError,
          );
          await ctx.backend.remove(lease);
        }
        await train('epoch', dir, { hook: { interval: 1 }, steps: 2, resume: true });
        expect(await names(dir)).toEqual(['epoch_1.safetensors', 'epoch_2.safetensors', 'last_checkpoint']);
      });
    });

    it('over 300 steps with maxKeepCkpts 3, store calls per save are constant at steady state, and none is a listing', async () => {
      // Anything that grows with the run (a list of removals, a scan) shows within a few dozen saves.
      const STEPS = 300;
      const store = new InstrumentedBackend(ctx.backend);
      const dir = freshWorkDir();
      const perSave: number[] = [];
      const kinds = new Set<string>();
      let mark = 0;
      const model = new ToyModel();
      // No lease here: its background renewal would land at random moments between saves.
      const hook = new CheckpointHook({ byEpoch: false, interval: 1, maxKeepCkpts: 3, backend: store, leaseTtlMs: false });
      const trainer = new ReferenceTrainer({
        workDir: dir,
        model,
        checkpointHook: hook,
        itersPerEpoch: 1000,
        maxIters: 40,
        backend: store,
      });
      await hook.beforeTrain(trainer);
      mark = store.calls.length;
      for (let i = 0; i < STEPS; i++) {
        trainer.iter++;
        await hook.afterTrainIter(trainer);
        perSave.push(store.calls.length - mark);
        for (const call of store.calls.slice(mark)) kinds.add(call.op);
        mark = store.calls.length;
      }
      const steady = perSave.slice(5);
      expect(new Set(steady).size).toBe(1);
      expect(steady[0]).toBeGreaterThan(0);
      expect(kinds.has('list')).toBe(false);
    }, 300_000);

    it.each(['file', 'directory'] as const)(
      'openCheckpoint reads the header and single tensors by range reads; loadCheckpoint({ keys }) equals the full load (%s)',
      async (layout) => {
        const dir = freshWorkDir();
        const weights: Record<string, Float32Array> = {};
        for (let i = 0; i < 10; i++) weights[`w${i}`] = new Float32Array(8192).fill(i + 0.5);
        const checkpoint = { meta: { epoch: 1 }, state_dict: weights, optimizer: { m: new Float32Array(40_000).fill(2) } };
        const path = ctx.backend.joinPath(dir, layout === 'file' ? 'c.safetensors' : 'c');
        if (layout === 'file') await saveCheckpointFile(ctx.backend, path, checkpoint);
        else await saveCheckpointDir(ctx.backend, path, checkpoint, { maxShardBytes: 70_000 });
        const reader = await openCheckpoint(ctx.backend, path);
        expect(reader.shape).toBe(layout);
        expect(reader.keys.sort()).toEqual(['meta', 'optimizer', 'state_dict']);
        const headerBytes = reader.bytesRead;
        expect(await reader.readTensor('state_dict.w3')).toEqual(weights.w3);
        expect(reader.bytesRead - headerBytes).toBe(8192 * 4);
        const partial = await loadCheckpoint(ctx.backend, path, { keys: ['state_dict', 'meta'] });
        expect(partial).toEqual({ meta: checkpoint.meta, state_dict: weights });
      },
    );

    describe('incremental checkpoints', () => {
      incrementalChecks({
        get backend() {
          return ctx.backend;
        },
        freshWorkDir,
      });
    });

    if (options.crashSweep !== false) {
      it.each([
        ['file', 'sync'],
        ['directory', 'sync'],
        ['file', 'async'],
        ['directory', 'async'],
        ['incremental', 'sync'],
      ] as const)(
        'a crash at any store write or delete never loses the last good checkpoint (%s layout, %s saves)',
        async (layout, saving) => {
          // One dry run counts the writes; then one run per (write, before/after) that dies there.
          // Four steps cover every path: a first best, a better best replacing the old one, a
          // save with no new best, and rotation at every save (maxKeepCkpts 1).
          const plan: CheckpointHookOptions = {
            interval: 1,
            maxKeepCkpts: 1,
            saveBest: 'acc',
            ...(layout === 'incremental' ? { incremental: true } : { layout }),
            ...(layout === 'directory' ? { maxShardBytes: 24 } : {}),
            ...(saving === 'async' ? { asyncSave: true } : {}),
          };
          const acc = [0.1, 0.5, 0.3, 0.7];
          const metrics: Metrics = (s) => ({ acc: acc[s - 1] ?? 0 });
          const dry = new InstrumentedBackend(ctx.backend);
          await train('epoch', freshWorkDir(), { hook: plan, metrics, steps: 4, backend: dry });
          const writes = dry.calls.filter((c) => MUTATING_OPERATIONS.includes(c.op)).length;
          expect(writes).toBeGreaterThan(10);
          // A death just after write k leaves the store as a death just before write k+1 does
          // (only reads and computation lie between them): so every write is died before,
          // and the last one after as well. Every scenario has its own run folder and store
          // wrapper: they run a few at a time, so the store's latency, not its speed, is what
          // they wait on.
          // (ours) Incremental saves write an object per changed tensor: a small sweep for them
          // (every third write, and the last) keeps CI's time; the other layouts die at every write.
          const every = layout === 'incremental' ? 3 : 1;
          const cases = [
            ...Array.from({ length: writes }, (_, k) => ({ k, when: 'before' as const })).filter(({ k }) => k % every === 0),
            { k: writes - 1, when: 'after' as const },
          ];
          let scenarios = 0;
          await pMap(
            cases,
            async ({ k, when }) => {
              const dir = freshWorkDir();
              let seen = 0;
              const dying = new InstrumentedBackend(ctx.backend, (call) =>
                MUTATING_OPERATIONS.includes(call.op) && seen++ === k ? when : undefined,
              );
              await expect(train('epoch', dir, { hook: plan, metrics, steps: 4, backend: dying })).rejects.toBeInstanceOf(
                InjectedFault,
              );
              scenarios++;
              const pointer = await Run.open(dir, { backend: ctx.backend }).latest();
              if (pointer !== undefined) {
                // The pointer names a complete checkpoint that loads.
                const ckpt = await loadCheckpoint(ctx.backend, pointer);
                expect(ckpt.state_dict).toBeDefined();
                const regulars = (await names(dir)).filter((n) => /^epoch_\d+\.safetensors$/.test(n));
                expect(regulars.length, `k=${k} ${when}`).toBeGreaterThanOrEqual(1);
              }
              if (layout === 'incremental') {
                // (ours) No checkpoint the crash left names a missing object.
                expect((await Run.open(dir, { backend: ctx.backend }).objectUsage()).missing, `k=${k} ${when}`).toEqual([]);
              }
              // Resume on a healthy store and finish: rotation and best tracking converge.
              await train('epoch', dir, { hook: plan, metrics, steps: 6, resume: true });
              const after = await names(dir);
              expect(
                after.filter((n) => /^epoch_\d+\.safetensors$/.test(n)),
                `k=${k} ${when}: ${after}`,
              ).toEqual(['epoch_6.safetensors']);
              expect(
                after.filter((n) => n.startsWith('best_acc_')),
                `k=${k} ${when}: ${after}`,
              ).toHaveLength(1);
              if (layout === 'incremental') {
                // (ours) What the crash left unreferenced is gone after the next saves; nothing is missing.
                const usage = await Run.open(dir, { backend: ctx.backend }).objectUsage();
                expect(usage.unreferenced, `k=${k} ${when}`).toEqual([]);
                expect(usage.missing, `k=${k} ${when}`).toEqual([]);
              }
              // Some stores list by scanning every key of the bucket (moto does): keep it small.
              await ctx.backend.rmtree(dir);
            },
            { concurrency: SWEEP_CONCURRENCY },
          );
          expect(scenarios).toBe(cases.length);
        },
        600_000,
      );
    }

    describe('retention and save policies beyond the reference (issue 26)', () => {
      const files = async (dir: string) => (await names(dir)).filter((n) => n.endsWith('.safetensors'));
      const infoOf = async (dir: string, name: string) => {
        const ckpt = await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, name));
        return (ckpt.message_hub as { runtime_info: Record<string, unknown> }).runtime_info;
      };
      /** A model whose every step moves the (faked) clock by `stepMs`. */
      class ClockModel extends ToyModel {
        constructor(
          private readonly stepMs: number,
          metrics?: (pos: { epoch: number; iter: number }) => Record<string, number>,
        ) {
          super(metrics);
        }
        override trainStep(position: { epoch: number; iter: number }): number {
          vi.setSystemTime(Date.now() + this.stepMs);
          return super.trainStep(position);
        }
      }
      /** Runs `body` with Date faked (timers stay real: the stores' retries and timeouts run as usual). */
      const withFakeDate = async (body: () => Promise<void>) => {
        vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
        try {
          await body();
        } finally {
          vi.useRealTimers();
        }
      };
      const acc = [0.5, 0.9, 0.7, 0.8, 0.6, 0.95, 0.4, 0.8, 0.3, 0.85, 0.2];

      it('saveTopK 3 keeps the three best of each metric, rotation (maxKeepCkpts 1) never deletes one, a tie does not enter, and the K names survive resume', async () => {
        const dir = freshWorkDir();
        const hook = { interval: 1, maxKeepCkpts: 1, saveBest: 'acc', saveTopK: 3 } as const;
        await train('epoch', dir, { hook, steps: 8, metrics: (s) => ({ acc: acc[s - 1] ?? 0 }) });
        // Best three of 0.5 0.9 0.7 0.8 0.6 0.95 0.4 0.8: 0.95 (6), 0.9 (2), 0.8 (4); 0.8 at 8 ties with the third and does not enter.
        expect(await files(dir)).toEqual(
          [
            'best_acc_epoch_2.safetensors',
            'best_acc_epoch_4.safetensors',
            'best_acc_epoch_6.safetensors',
            'epoch_8.safetensors',
          ].sort(),
        );
        const info = await infoOf(dir, 'epoch_8.safetensors');
        expect(info.best_topk).toEqual([
          { name: 'best_acc_epoch_6.safetensors', score: 0.95 },
          { name: 'best_acc_epoch_2.safetensors', score: 0.9 },
          { name: 'best_acc_epoch_4.safetensors', score: 0.8 },
        ]);
        expect(info.best_ckpt).toBe('best_acc_epoch_6.safetensors');
        // Resumed, 0.85 at step 10 pushes out the third (0.8 at 4): the list came back from the checkpoint.
        await train('epoch', dir, { hook, steps: 11, resume: true, metrics: (s) => ({ acc: acc[s - 1] ?? 0 }) });
        expect(await files(dir)).toEqual(
          [
            'best_acc_epoch_10.safetensors',
            'best_acc_epoch_2.safetensors',
            'best_acc_epoch_6.safetensors',
            'epoch_11.safetensors',
          ].sort(),
        );
      });

      it('saveTopK 2 resumes a run started with one best: its best_ckpt and best_score seed the list', async () => {
        const dir = freshWorkDir();
        await train('epoch', dir, {
          hook: { interval: 1, maxKeepCkpts: 1, saveBest: 'acc' },
          steps: 4,
          metrics: (s) => ({ acc: acc[s - 1] ?? 0 }),
        });
        expect(await files(dir)).toEqual(['best_acc_epoch_2.safetensors', 'epoch_4.safetensors']);
        const hook = { interval: 1, maxKeepCkpts: 1, saveBest: 'acc', saveTopK: 2 } as const;
        await train('epoch', dir, { hook, steps: 6, resume: true, metrics: (s) => ({ acc: acc[s - 1] ?? 0 }) });
        // 0.6 at 5 enters beside 0.9 (2); 0.95 at 6 pushes 0.6 out.
        expect(await files(dir)).toEqual(['best_acc_epoch_2.safetensors', 'best_acc_epoch_6.safetensors', 'epoch_6.safetensors']);
      });

      it('keepPeriod 4 keeps 4 and 8 forever beside the newest two (not counted), and across a resume', async () => {
        const dir = freshWorkDir();
        const hook = { interval: 1, maxKeepCkpts: 2, keepPeriod: 4 };
        await train('epoch', dir, { hook, steps: 10 });
        expect(await files(dir)).toEqual(regular('epoch', [4, 8, 9, 10]));
        await train('epoch', dir, { hook, steps: 13, resume: true });
        expect(await files(dir)).toEqual(
          regular(
            'epoch',
            [4, 8, 12, 13, 11].sort((a, b) => a - b),
          ),
        );
        expect((await infoOf(dir, 'epoch_13.safetensors')).keep_ckpt_ids).toEqual([11, 13]);
      });

      it("keepTimeIntervalMs keeps the first checkpoint of each interval since the run's start, kept across resumes", async () => {
        await withFakeDate(async () => {
          const dir = freshWorkDir();
          // 10 s a step, 25 s intervals: steps 1, 3, 5 (at 10, 30, 50 s) open intervals 0, 1, 2.
          const hook = { interval: 1, maxKeepCkpts: 1, keepTimeIntervalMs: 25_000, leaseTtlMs: false } as const;
          await train('epoch', dir, { hook, steps: 6, model: new ClockModel(10_000) });
          expect(await files(dir)).toEqual(regular('epoch', [1, 3, 5, 6]));
          // The clock goes on from the run's start: step 8 (80 s) opens interval 3, step 9 (90 s) does not.
          await train('epoch', dir, { hook, steps: 9, resume: true, model: new ClockModel(10_000) });
          expect(await files(dir)).toEqual(regular('epoch', [1, 3, 5, 8, 9]));
          const info = await infoOf(dir, 'epoch_9.safetensors');
          expect((info.kept_ckpts as { step: number }[]).map((k) => k.step)).toEqual([1, 3, 5, 8]);
        });
      });

      it('saveIntervalMs saves when that much time has passed since the last save, or by interval, whichever comes first, across resumes', async () => {
        await withFakeDate(async () => {
          const hook = { interval: 4, saveLast: false, saveIntervalMs: 25_000, leaseTtlMs: false } as const;
          const whole = new InstrumentedBackend(ctx.backend);
          await train('epoch', freshWorkDir(), { hook, backend: whole, model: new ClockModel(10_000) });
          expect(savedSteps(whole.calls, 'epoch')).toEqual([3, 4, 7, 8, 11]);
          // Stopped after 5 (last save 4 at 40 s), resumed from 4: the time since that save carries over.
          const dir = freshWorkDir();
          await train('epoch', dir, { hook, stopAt: 5, model: new ClockModel(10_000) });
          const resumed = new InstrumentedBackend(ctx.backend);
          await train('epoch', dir, { hook, resume: true, backend: resumed, model: new ClockModel(10_000) });
          expect(savedSteps(resumed.calls, 'epoch')).toEqual([6, 8, 11]);
        });
      });

      it('saveAtSteps and shouldSave(step, runner) save at the steps they name, beside saveLast', async () => {
        const store = new InstrumentedBackend(ctx.backend);
        const asked: number[] = [];
        const shouldSave = (step: number, runner: { epoch: number }) => {
          asked.push(runner.epoch);
          return step === 5;
        };
        await train('iter', freshWorkDir(), { hook: { saveAtSteps: [3, 7], shouldSave }, backend: store });
        expect(savedSteps(store.calls, 'iter')).toEqual([3, 5, 7, 11]);
        expect(asked.length).toBeGreaterThan(0);
      });

      it('saveOnException saves the position when a step throws, marked in its meta, never as a best; the error still propagates', async () => {
        class Failing extends ToyModel {
          override trainStep(position: { epoch: number; iter: number }): number {
            if (position.epoch === 5) throw new RangeError('boom');
            return super.trainStep(position);
          }
        }
        const dir = freshWorkDir();
        const peakAt3 = (step: number) => ({ acc: step === 3 ? 0.9 : 0.1 * step });
        const model = new Failing(({ epoch }) => peakAt3(epoch));
        const run = train('epoch', dir, {
          hook: { interval: 4, maxKeepCkpts: 2, saveBest: 'acc', saveOnException: true },
          model,
          metrics: peakAt3,
        });
        await expect(run).rejects.toThrow('boom');
        expect(await files(dir)).toEqual(['best_acc_epoch_3.safetensors', 'epoch_4.safetensors', 'epoch_5.safetensors']);
        const saved = await loadCheckpoint(ctx.backend, ctx.backend.joinPath(dir, 'epoch_5.safetensors'));
        expect(saved.meta).toMatchObject({ epoch: 5, saved_on: 'exception', exception: 'RangeError' });
        const info = (saved.message_hub as { runtime_info: Record<string, unknown> }).runtime_info;
        expect(info.best_ckpt).toBe('best_acc_epoch_3.safetensors');
        expect(await Run.open(dir, { backend: ctx.backend }).latest()).toBe(ctx.backend.joinPath(dir, 'epoch_5.safetensors'));
      });

      it('prune decides with the same module: keep 2, keep-period 4, top-k 1, each checkpoint listed with its rule', async () => {
        const dir = freshWorkDir();
        await train('epoch', dir, {
          hook: { interval: 1, saveBest: 'acc', saveTopK: 2 },
          steps: 10,
          metrics: (s) => ({ acc: acc[s - 1] ?? 0 }),
        });
        const run = Run.open(dir, { backend: ctx.backend });
        const plan = await pruneRun(run, { keep: 2, keepPeriod: 4, topK: 1 }, false);
        const rule = (name: string) => plan.verdicts.find((v) => v.path === ctx.backend.joinPath(dir, name));
        expect(rule('epoch_4.safetensors')).toEqual(expect.objectContaining({ keep: true, rule: 'keep-period 4' }));
        expect(rule('epoch_10.safetensors')?.keep).toBe(true);
        expect(rule('epoch_3.safetensors')).toEqual(expect.objectContaining({ keep: false, rule: 'older than the newest 2' }));
        expect(rule('best_acc_epoch_6.safetensors')?.rule).toMatch(/^top-1 acc/);
        expect(rule('best_acc_epoch_2.safetensors')).toEqual(expect.objectContaining({ keep: false }));
        expect(await files(dir)).toContain('epoch_3.safetensors');
        await pruneRun(run, { keep: 2, keepPeriod: 4, topK: 1 }, true);
        expect(await files(dir)).toEqual(['best_acc_epoch_6.safetensors', ...regular('epoch', [4, 8, 9, 10])].sort());
        await run.close();
      });
    });
  });
}
