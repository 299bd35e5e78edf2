// The CLI given folders the way people type them and the folders runs really leave:
// a relative source for `cp` (`./a`, `a/./b`, `x/.`), and the checkpoint folder of a
// run whose `outDir` is not its work dir, for `prune` (the lease and the pointer live
// in the work dir; the trainer's marker in the folder says where).
import { cp as copyTree, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ToyModel } from '@savepoint/backend-test-suite';
import { CheckpointHook, type CheckpointHookOptions, ReferenceTrainer, type StorageBackend } from '@savepoint/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main, registerAllBackends, storeFor } from '../src/index.js';

async function run(argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

/** Every file below `dir` (relative path, with `/`), and its bytes. */
/** The checkpoint a pointer file names: its first line (the second is the writer's fencing generation). */
async function pointerName(path: string): Promise<string | undefined> {
  return (await readFile(path, 'utf8')).split('\n')[0];
}

async function tree(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (at: string) => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else files.set(relative(dir, path).split('\\').join('/'), (await readFile(path)).toString('base64'));
    }
  };
  await walk(dir);
  return new Map([...files].sort(([a], [b]) => a.localeCompare(b)));
}

/** What `savepoint ls --json` says about each checkpoint, without the fields a copy changes (paths, times). */
function listed(json: { checkpoints: Record<string, unknown>[] }) {
  return json.checkpoints
    .map(({ name, kind, step, shape, size, isPointerTarget, metric }) => ({
      name,
      kind,
      step,
      shape,
      size,
      isPointerTarget,
      metric,
    }))
    .sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

let root: string;
let store: StorageBackend;
const cwd = process.cwd();

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'savepoint-cli-folders-'));
  registerAllBackends();
  store = storeFor(root, {});
});
afterEach(async () => {
  process.chdir(cwd);
  await rm(root, { recursive: true, force: true });
});

function train(workDir: string, hook: CheckpointHookOptions, maxEpochs: number, resume = false) {
  return new ReferenceTrainer({
    workDir,
    model: new ToyModel((p) => ({ acc: [0.2, 0.9, 0.5, 0.4][p.epoch - 1] ?? 0 })),
    checkpointHook: new CheckpointHook({ interval: 1, ...hook, backend: store }),
    itersPerEpoch: 1,
    maxEpochs,
    valInterval: 1,
    resume,
    backend: store,
  }).train();
}

describe('savepoint cp with a relative source path', () => {
  const cases: { spelling: string; layout: 'file' | 'directory' }[] = [];
  for (const spelling of ['./work_dirs/demo', 'work_dirs/./demo', 'work_dirs/demo/.', './work_dirs/./demo/.'])
    for (const layout of ['file', 'directory'] as const) cases.push({ spelling, layout });

  it.each(cases)(
    'cp $spelling (layout $layout) copies every name whole; ls of the copy lists the same checkpoints and the pointer',
    async ({ spelling, layout }) => {
      const source = join(root, 'work_dirs', 'demo');
      await mkdir(source, { recursive: true });
      await train(
        source,
        { maxKeepCkpts: 2, saveBest: 'acc', layout, ...(layout === 'directory' ? { maxShardBytes: 8 } : {}) },
        4,
      );
      const before = await tree(source);
      // What the run left: two regular checkpoints, the best, the pointer (the lease is released).
      const top = [...new Set([...before.keys()].map((p) => p.split('/')[0]))].sort();
      expect(top).toEqual(['best_acc_epoch_2.safetensors', 'epoch_3.safetensors', 'epoch_4.safetensors', 'last_checkpoint']);
      if (layout === 'directory') expect([...before.keys()].some((p) => /^epoch_4\.safetensors\/shard-/.test(p))).toBe(true);

      const copy = join(root, 'copies', 'demo');
      process.chdir(root);
      const result = await run(['cp', spelling, copy]);
      process.chdir(cwd);
      expect(result.code, result.err).toBe(0);
      expect(result.out).toMatch(new RegExp(`^copied ${before.size} file\\(s\\), `));

      // The same names, each whole, with the same bytes; the pointer names its checkpoint by its
      // bare name and carries no fencing generation (the copy is a new run).
      const after = await tree(copy);
      expect([...after.keys()]).toEqual([...before.keys()]);
      expect(Buffer.from(before.get('last_checkpoint') ?? '', 'base64').toString()).toMatch(
        /^epoch_4\.safetensors\ngeneration: 1\nseal: [0-9a-f]{64}$/,
      );
      expect(await readFile(join(copy, 'last_checkpoint'), 'utf8')).toMatch(/^epoch_4\.safetensors\nseal: [0-9a-f]{64}$/);
      const withoutPointer = (files: Map<string, string>) => new Map([...files].filter(([name]) => name !== 'last_checkpoint'));
      expect(withoutPointer(after)).toEqual(withoutPointer(before));

      const original = JSON.parse((await run(['ls', source, '--json'])).out);
      const listing = await run(['ls', copy, '--json']);
      expect(listing.code, listing.err).toBe(0);
      const copied = JSON.parse(listing.out);
      expect(copied.pointer).toBe(join(copy, 'epoch_4.safetensors'));
      expect(listed(copied)).toEqual(listed(original));
      expect(listed(copied).map((c) => c.name)).toEqual([
        'best_acc_epoch_2.safetensors',
        'epoch_3.safetensors',
        'epoch_4.safetensors',
      ]);
      const text = (await run(['ls', copy])).out.split('\n');
      expect(text.find((l) => l.startsWith('epoch_4.safetensors '))).toContain('<- last_checkpoint');
      // And the original is untouched.
      expect(await tree(source)).toEqual(before);
    },
  );
});

describe('savepoint prune on the checkpoint folder of a run whose outDir is not its work dir', () => {
  /** A run in <root>/work/exp1 whose checkpoints go to <root>/ckpts/exp1. */
  const paths = () => ({ workDir: join(root, 'work', 'exp1'), outDir: join(root, 'ckpts'), folder: join(root, 'ckpts', 'exp1') });
  const names = async (dir: string) => (await readdir(dir)).sort();
  const epochs = (...steps: number[]) => steps.map((s) => `epoch_${s}.safetensors`);

  it('while the trainer holds the lease, prune --yes fails with a lease error and deletes nothing', async () => {
    const { workDir, outDir, folder } = paths();
    const hook = new CheckpointHook({ interval: 1, outDir, backend: store });
    const trainer = new ReferenceTrainer({
      workDir,
      model: new ToyModel(),
      checkpointHook: hook,
      itersPerEpoch: 1,
      maxEpochs: 5,
      backend: store,
    });
    await hook.beforeTrain(trainer);
    try {
      for (const step of [1, 2, 3]) {
        trainer.epoch = step;
        trainer.iter = step;
        await hook.afterTrainEpoch(trainer);
      }
      expect(await names(workDir)).toEqual(['last_checkpoint', 'savepoint.lease']);
      const before = await tree(folder);
      expect([...before.keys()].filter((n) => n.startsWith('epoch_'))).toEqual(epochs(1, 2, 3));
      const result = await run(['prune', folder, '--keep', '1', '--yes']);
      expect(result.code, result.out).toBe(1);
      expect(result.err).toContain(join(workDir, 'savepoint.lease'));
      expect(result.err).toMatch(/is held by training \(owner .*pid \d+, generation \d+\)/);
      expect(await tree(folder)).toEqual(before);
    } finally {
      await hook.close();
    }
  });

  it("once the trainer is done, prune --yes never deletes the pointer's target (nor the newer save whose pointer never moved)", async () => {
    const { workDir, outDir, folder } = paths();
    await train(workDir, { outDir }, 3);
    const pointer = join(workDir, 'last_checkpoint');
    expect(await pointerName(pointer)).toBe(join(folder, 'epoch_3.safetensors'));
    // As a job killed between writing epoch 3 and moving the pointer leaves it: the pointer names epoch 2.
    await writeFile(pointer, join(folder, 'epoch_2.safetensors'));
    const result = await run(['prune', folder, '--keep', '1', '--yes', '--json']);
    expect(result.code, result.err).toBe(0);
    expect((await names(folder)).filter((n) => n.startsWith('epoch_'))).toEqual(epochs(2, 3));
    expect(JSON.parse(result.out)).toMatchObject({ deleted: true, toDelete: [join(folder, 'epoch_1.safetensors')] });
    // ls of the folder finds the pointer in the work dir, and marks its target.
    const listing = JSON.parse((await run(['ls', folder, '--json'])).out);
    expect(listing.pointer).toBe(join(folder, 'epoch_2.safetensors'));
    expect(
      listing.checkpoints.filter((c: { isPointerTarget: boolean }) => c.isPointerTarget).map((c: { name: string }) => c.name),
    ).toEqual(['epoch_2.safetensors']);
    // The run resumes from the checkpoint its pointer names.
    const resumed = new ReferenceTrainer({
      workDir,
      model: new ToyModel(),
      checkpointHook: new CheckpointHook({ interval: 1, outDir, backend: store }),
      itersPerEpoch: 1,
      maxEpochs: 4,
      resume: true,
      backend: store,
    });
    await resumed.train();
    expect(resumed.resumedFrom).toBe(join(folder, 'epoch_2.safetensors'));
  });

  it('a folder with checkpoints but no pointer and no marker is refused with --yes, saying why; nothing is deleted', async () => {
    const { workDir, outDir, folder } = paths();
    await train(workDir, { outDir }, 3);
    // As a version that left no marker wrote it: the folder does not say which run it belongs to.
    await rm(join(folder, 'savepoint-run.json'), { force: true });
    const before = await tree(folder);
    expect([...before.keys()]).toEqual(epochs(1, 2, 3));
    const result = await run(['prune', folder, '--keep', '1', '--yes']);
    expect(result.code).toBe(2);
    expect(result.err).toContain(folder);
    expect(result.err).toMatch(/has no last_checkpoint and no record of the run it belongs to/);
    expect(result.err).toMatch(/nothing was deleted/);
    expect(await tree(folder)).toEqual(before);
    // What the message advises works: pruning the work dir does not reach the folder; resuming the run once does.
    expect(result.err).toMatch(/pruning that work dir does not reach this folder.*resume that run once/);
    expect((await run(['prune', workDir, '--keep', '1', '--yes'])).out).toMatch(/nothing to delete/);
    expect(await tree(folder)).toEqual(before);
    await train(workDir, { outDir }, 3, true);
    const pruned = await run(['prune', folder, '--keep', '1', '--yes']);
    expect(pruned.code, pruned.err).toBe(0);
    expect(await names(folder)).toEqual([...epochs(3), 'savepoint-run.json']);
  });

  for (const how of ['copied', 'moved'] as const) {
    it(`a ${how} checkpoint folder, whose marker names a work dir whose pointer names another folder, is refused; nothing is deleted`, async () => {
      const { workDir, outDir, folder } = paths();
      await train(workDir, { outDir }, 3);
      const elsewhere = join(root, 'elsewhere', 'exp1');
      await mkdir(join(root, 'elsewhere'));
      if (how === 'copied') await copyTree(folder, elsewhere, { recursive: true });
      else await rename(folder, elsewhere);
      // The work dir's pointer names the original folder.
      expect(await pointerName(join(workDir, 'last_checkpoint'))).toBe(join(folder, 'epoch_3.safetensors'));
      const moved = await tree(elsewhere);
      const original = how === 'copied' ? await tree(folder) : undefined;
      const work = await tree(workDir);

      const result = await run(['prune', elsewhere, '--keep', '1', '--yes']);
      expect(result.code, result.out).toBe(2);
      expect(result.err).toContain(elsewhere);
      expect(result.err).toMatch(/the folder was copied or moved\. Refused/);
      expect(await tree(elsewhere)).toEqual(moved);
      if (original) expect(await tree(folder)).toEqual(original);
      expect(await tree(workDir)).toEqual(work);
      // The marker came along with the folder: it names the run's work dir.
      expect(JSON.parse(await readFile(join(elsewhere, 'savepoint-run.json'), 'utf8')).workDir).toBe(workDir);
    });
  }

  it('a run trained in a plain copy (cp -r) of a checkpoint folder is a run of its own: the marker that came along hides neither its pointer nor its lease', async () => {
    const { workDir, outDir, folder } = paths();
    await train(workDir, { outDir }, 3);
    const other = join(root, 'other');
    await copyTree(folder, other, { recursive: true });
    const hook = new CheckpointHook({ interval: 1, backend: store });
    const trainer = new ReferenceTrainer({
      workDir: other,
      model: new ToyModel(),
      checkpointHook: hook,
      itersPerEpoch: 1,
      maxEpochs: 9,
      backend: store,
    });
    await hook.beforeTrain(trainer);
    try {
      for (const step of [1, 2, 3, 4, 5]) {
        trainer.epoch = step;
        trainer.iter = step;
        await hook.afterTrainEpoch(trainer);
      }
      expect(await names(other)).toEqual([...epochs(1, 2, 3, 4, 5), 'last_checkpoint', 'savepoint-run.json', 'savepoint.lease']);
      // With the first run's pointer in place, and once it is gone (its work dir cleaned up).
      for (const firstRunPointer of ['kept', 'gone']) {
        if (firstRunPointer === 'gone') await rm(join(workDir, 'last_checkpoint'));
        const latest = await run(['latest', other]);
        expect(latest, firstRunPointer).toMatchObject({ code: 0, out: `${join(other, 'epoch_5.safetensors')}\n` });
        expect(JSON.parse((await run(['ls', other, '--json'])).out).pointer, firstRunPointer).toBe(
          join(other, 'epoch_5.safetensors'),
        );
        const pruned = await run(['prune', other, '--keep', '1', '--yes']);
        expect(pruned.code, firstRunPointer).toBe(1);
        expect(pruned.err, firstRunPointer).toContain(`${join(other, 'savepoint.lease')} is held by training`);
        expect((await names(other)).filter((n) => n.startsWith('epoch_'))).toEqual(epochs(1, 2, 3, 4, 5));
      }
    } finally {
      await hook.close();
    }
    // A copy of it resumes where it stopped: the pointer comes along.
    const copy = join(root, 'other-copy');
    expect((await run(['cp', other, copy])).code).toBe(0);
    expect(await readFile(join(copy, 'last_checkpoint'), 'utf8')).toMatch(/^epoch_5\.safetensors\nseal: [0-9a-f]{64}$/);
  });

  it("a folder that is both another run's checkpoint folder and a work dir with its own pointer is refused, saying why", async () => {
    const { workDir, outDir, folder } = paths();
    await train(workDir, { outDir }, 3);
    await writeFile(join(folder, 'last_checkpoint'), 'epoch_1.safetensors');
    const before = await tree(folder);
    const result = await run(['prune', folder, '--keep', '1', '--yes']);
    expect(result.code, result.out).toBe(2);
    expect(result.err).toContain(join(folder, 'last_checkpoint'));
    expect(result.err).toMatch(/two runs/);
    expect(await tree(folder)).toEqual(before);
  });

  it('a hand-written marker naming another run does not let prune borrow that run: refused, nothing deleted', async () => {
    // The victim: a plain run whose pointer names its own epoch_3.
    const victim = join(root, 'victim');
    await train(victim, {}, 3);
    const folder = join(root, 'intruder');
    await train(folder, {}, 3);
    await rm(join(folder, 'last_checkpoint'));
    await writeFile(join(folder, 'savepoint-run.json'), JSON.stringify({ format: 'savepoint.run', version: 1, workDir: victim }));
    const before = await tree(folder);
    const victimBefore = await tree(victim);
    const result = await run(['prune', folder, '--keep', '1', '--yes']);
    expect(result.code, result.out).toBe(2);
    expect(result.err).toMatch(/copied or moved/);
    expect(await tree(folder)).toEqual(before);
    expect(await tree(victim)).toEqual(victimBefore);
  });
});
