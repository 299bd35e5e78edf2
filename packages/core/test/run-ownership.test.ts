// Ownership rules that only need local disk: a relative work dir, the run layout's
// names, parity of the reference loop (absent metric, validation at the last step),
// and leftovers of killed saves cleaned on resume under the lease.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckpointHook,
  type CheckpointHookOptions,
  ConfigError,
  ReferenceTrainer,
  Run,
  type TrainableModel,
} from '@savepoint/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { takeOverLease } from '../../../test-support/take-over-lease.js';
import { LocalBackend, registerLocalBackend } from '../../backend-local/src/index.js';
import { RunLayout } from '../src/run/index.js';

registerLocalBackend();

/** Local disk that says when the lease at `leasePath` has been read or written (the renewal's two steps). */
class LeaseWatchingStore extends LocalBackend {
  puts = 0;
  readonly #leasePath: string;
  readonly #waiting: { kind: 'get' | 'put'; resolve: () => void }[] = [];
  constructor(leasePath: string) {
    super();
    this.#leasePath = leasePath;
  }
  /** Resolves after the next completed `kind` of the lease. */
  next(kind: 'get' | 'put'): Promise<void> {
    return new Promise((resolve) => this.#waiting.push({ kind, resolve }));
  }
  #done(kind: 'get' | 'put') {
    for (const waiter of this.#waiting.filter((w) => w.kind === kind)) {
      this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
  /** Reads of the lease that found `owner` in it. */
  readonly #ownerReads = new Map<string, number>();
  readonly #ownerWaiting: { owner: string; resolve: () => void }[] = [];
  /**
   * Resolves once a read of the lease has found `owner` in it, at once if one already did:
   * waiting for "the next get" missed a read that landed before the wait began (a loaded
   * machine ran the renewal's refused write and its read while the test was still awaiting
   * its own write), and then waited for a read that never came.
   */
  readOf(owner: string): Promise<void> {
    if ((this.#ownerReads.get(owner) ?? 0) > 0) return Promise.resolve();
    return new Promise((resolve) => this.#ownerWaiting.push({ owner, resolve }));
  }
  override async get(...args: Parameters<LocalBackend['get']>) {
    const bytes = await super.get(...args);
    if (args[0] === this.#leasePath) {
      let owner = '(not JSON)';
      try {
        owner = String((JSON.parse(new TextDecoder().decode(bytes)) as { owner?: unknown }).owner);
      } catch {}
      this.#ownerReads.set(owner, (this.#ownerReads.get(owner) ?? 0) + 1);
      for (const waiter of this.#ownerWaiting.filter((w) => w.owner === owner)) {
        this.#ownerWaiting.splice(this.#ownerWaiting.indexOf(waiter), 1);
        waiter.resolve();
      }
      this.#done('get');
    }
    return bytes;
  }
  override async put(...args: Parameters<LocalBackend['put']>) {
    await super.put(...args);
    if (args[0] === this.#leasePath) {
      this.puts++;
      this.#done('put');
    }
  }
}

function model(metrics: (epoch: number) => Record<string, number> = () => ({})) {
  let w = new Float32Array(1);
  const evaluated: number[] = [];
  const m: TrainableModel & { evaluated: number[]; weight: () => number } = {
    evaluated,
    weight: () => w[0] as number,
    trainStep: () => {
      w = w.map((x) => x + 1);
      return 0;
    },
    evaluate: (p) => {
      evaluated.push(p.epoch);
      return metrics(p.epoch);
    },
    stateDict: () => ({ w }),
    loadStateDict: (s) => {
      w = new Float32Array(s.w as Float32Array);
    },
  };
  return m;
}

function trainer(
  workDir: string,
  hook: CheckpointHookOptions,
  extra: Partial<ConstructorParameters<typeof ReferenceTrainer>[0]>,
) {
  const m = extra.model ?? model();
  return new ReferenceTrainer({
    workDir,
    model: m,
    checkpointHook: new CheckpointHook({ interval: 1, ...hook }),
    itersPerEpoch: 1,
    maxEpochs: 3,
    ...extra,
  });
}

describe('run ownership on local disk', () => {
  let root: string;
  const cwd = process.cwd();
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'savepoint-own-'));
  });
  afterEach(async () => {
    process.chdir(cwd);
    await rm(root, { recursive: true, force: true });
  });

  it('a relative work dir is made absolute; the pointer holds a name, so resume and latest work from any folder', async () => {
    await mkdir(join(root, 'a', 'work_dirs', 'demo'), { recursive: true });
    await mkdir(join(root, 'b', 'work_dirs', 'demo'), { recursive: true });
    // A decoy run in b with a different weight: a relative pointer would load it from b.
    process.chdir(join(root, 'b'));
    await trainer('work_dirs/demo', {}, { maxEpochs: 1 }).train();
    process.chdir(join(root, 'a'));
    const first = trainer('work_dirs/demo', {}, { maxEpochs: 2 });
    expect(first.workDir).toBe(join(root, 'a', 'work_dirs', 'demo'));
    await first.train();
    expect(await readFile(join(root, 'a', 'work_dirs', 'demo', 'last_checkpoint'), 'utf8')).toMatch(
      /^epoch_2\.safetensors\ngeneration: 1\nseal: [0-9a-f]{64}$/,
    );
    process.chdir(join(root, 'b'));
    const store = new LocalBackend();
    expect(await Run.open(join(root, 'a', 'work_dirs', 'demo'), { backend: store }).latest()).toBe(
      join(root, 'a', 'work_dirs', 'demo', 'epoch_2.safetensors'),
    );
    const m = model();
    const resumed = trainer(join(root, 'a', 'work_dirs', 'demo'), {}, { maxEpochs: 3, resume: true, model: m });
    await resumed.train();
    expect(resumed.resumedFrom).toBe(join(root, 'a', 'work_dirs', 'demo', 'epoch_2.safetensors'));
    expect(m.weight()).toBe(3);
  });

  it('a saveBest metric absent from the evaluation fails at the first evaluation, naming it and the keys returned', async () => {
    const t = trainer(root, { saveBest: 'accuracy' }, { valInterval: 1, model: model(() => ({ acc: 0.5, loss: 1 })) });
    const error = await t.train().catch((e) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/saveBest metric "accuracy" is not among the evaluation's results \(acc, loss\)/);
    // The failed run released its lease: the next one starts at once.
    await trainer(root, { saveBest: 'acc' }, { valInterval: 1, model: model(() => ({ acc: 0.5 })) }).train();
  });

  it('the reference loop validates at the last step even when valInterval does not divide it', async () => {
    const epochs = model(() => ({ acc: 1 }));
    await trainer(root, {}, { valInterval: 2, maxEpochs: 5, model: epochs }).train();
    expect(epochs.evaluated).toEqual([2, 4, 5]);
    const iters: number[] = [];
    const m = model(() => ({ acc: 1 }));
    m.evaluate = (p) => {
      iters.push(p.iter);
      return { acc: 1 };
    };
    await new ReferenceTrainer({
      workDir: join(root, 'iters'),
      model: m,
      checkpointHook: new CheckpointHook({ byEpoch: false, interval: 10 }),
      itersPerEpoch: 4,
      maxIters: 7,
      valInterval: 3,
    }).train();
    expect(iters).toEqual([3, 6, 7]);
  });

  it('temp files of a killed save are removed on resume under the lease; other dot files stay', async () => {
    await trainer(root, {}, { maxEpochs: 1 }).train();
    await writeFile(join(root, '.epoch_2.safetensors.savepoint-tmp-0123456789ab'), new Uint8Array(1024));
    await writeFile(join(root, '.last_checkpoint.savepoint-tmp-ba9876543210'), 'x');
    await writeFile(join(root, '.gitignore'), '*');
    const logs: string[] = [];
    await trainer(
      root,
      {},
      { maxEpochs: 2, resume: true, logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) } },
    ).train();
    expect((await readdir(root)).sort()).toEqual(['.gitignore', 'epoch_1.safetensors', 'epoch_2.safetensors', 'last_checkpoint']);
    expect(logs.some((l) => l.includes('Removed 2 unfinished write(s)'))).toBe(true);
  });

  it('the lease is renewed in the background; a holder whose lease was taken over stops at its next hook call', async () => {
    const { LeaseHeldError } = await import('@savepoint/core');
    // Real time, no fake clock: the test waits for the renewal's own store calls, never for
    // a fixed time. (A fake clock with real file I/O between its ticks timed out on a loaded machine.)
    const ttlMs = 1500;
    const leasePath = join(root, 'savepoint.lease');
    const store = new LeaseWatchingStore(leasePath);
    const hook = new CheckpointHook({ interval: 1, leaseTtlMs: ttlMs, backend: store });
    try {
      const t = trainer(root, {}, { maxEpochs: 3, backend: store });
      await hook.beforeTrain(t);
      const read = async () => JSON.parse(await readFile(leasePath, 'utf8'));
      const first = await read();
      // The background renewal (every third of the TTL) pushes the expiry forward.
      await store.next('put');
      const second = await read();
      expect(second.owner).toBe(first.owner);
      expect(Date.parse(second.expiresAt)).toBeGreaterThan(Date.parse(first.expiresAt));
      // Someone takes the run over (as after an expiry); the old holder must not write again.
      await takeOverLease(leasePath, { ...first, owner: 'intruder', pid: 1, generation: first.generation + 1 });
      // The next renewal is refused and reads who holds the lease now; its decision is made
      // in the callbacks that follow that read, all run before the next turn of the event loop.
      await store.readOf('intruder');
      await new Promise((resolve) => setImmediate(resolve));
      const putsBefore = store.puts;
      t.epoch = 1;
      t.iter = 1;
      await expect(hook.afterTrainEpoch(t)).rejects.toBeInstanceOf(LeaseHeldError);
      expect(await readdir(root)).toEqual(['savepoint.lease']);
      expect((await read()).owner).toBe('intruder');
      expect(store.puts).toBe(putsBefore);
    } finally {
      await hook.close();
    }
  });

  it('the run layout builds and parses every name, with metric names holding "/" round-tripping', () => {
    const store = new LocalBackend();
    const layout = new RunLayout({
      workDir: '/r',
      outDir: '/r',
      store,
      workDirStore: store,
      filenameTmpl: 'epoch_{}.safetensors',
      metrics: ['coco/bbox_mAP_50', 'loss'],
    });
    const best = layout.bestName('coco/bbox_mAP_50', 12);
    expect(best).toBe('best_coco_bbox_mAP_50_epoch_12.safetensors');
    expect(layout.parse(best)).toEqual({ kind: 'best', metric: 'coco/bbox_mAP_50', step: 12, name: best });
    expect(layout.parse('epoch_3.safetensors')).toEqual({ kind: 'regular', step: 3, name: 'epoch_3.safetensors' });
    expect(layout.parse('epoch_3-0badc0de.safetensors')?.kind).toBe('published');
    expect(layout.parse('last_checkpoint')?.kind).toBe('pointer');
    expect(layout.parse('savepoint.lease')?.kind).toBe('lease');
    for (const stranger of ['pretrained.safetensors', 'tokenizer.bin', 'epoch_x.safetensors', 'epoch_3.safetensors.bak'])
      expect(layout.parse(stranger)).toBeUndefined();
    // Stored values: bare names and this run's own full paths are owned; anything else is not.
    expect(layout.ownedCheckpointName('epoch_3.safetensors')).toBe('epoch_3.safetensors');
    expect(layout.ownedCheckpointName('/r/epoch_3.safetensors')).toBe('epoch_3.safetensors');
    for (const foreign of ['/other/epoch_3.safetensors', '../epoch_3.safetensors', 's3://b/r/epoch_3.safetensors', '/r', '', 7])
      expect(layout.ownedCheckpointName(foreign)).toBeUndefined();
    expect(() => layout.resolvePointer('/elsewhere/epoch_3.safetensors')).toThrow(/loadFrom/);
    expect(() => layout.resolvePointer('savepoint.lease')).toThrow(/not a checkpoint of this run/);
  });
});
