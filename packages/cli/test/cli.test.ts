// The CLI end to end against every store: local disk, and each network backend's
// local server through that backend's own test setup.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { ToyModel } from '@savepoint/backend-test-suite';
import {
  CheckpointHook,
  type CheckpointHookOptions,
  ReferenceTrainer,
  type StorageBackend,
  saveCheckpointDir,
  saveCheckpointFile,
} from '@savepoint/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureArgs, server as azureServer, ensureContainer } from '../../backend-azure/test/azure-setup.js';
import { ensureBucket as ensureGcsBucket, gcsArgs, server as gcsServer } from '../../backend-gcs/test/gcs-setup.js';
import { ensureBucket as ensureS3Bucket, s3Args, server as s3Server } from '../../backend-s3/test/s3-setup.js';
import { main, registerAllBackends, storeFor } from '../src/index.js';

interface StoreConfig {
  name: string;
  skipReason?: string | undefined;
  setup(): Promise<{ root: string; args: Record<string, unknown>; cleanup?: () => Promise<void> }>;
}

const stores: StoreConfig[] = [
  {
    name: 'local',
    async setup() {
      const root = await mkdtemp(join(tmpdir(), 'savepoint-cli-'));
      return { root, args: {}, cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  },
  {
    name: 's3',
    skipReason: s3Server.skipReason,
    async setup() {
      await ensureS3Bucket();
      return { root: `s3://savepoint-test/cli-${Date.now()}`, args: { ...s3Args() } };
    },
  },
  {
    name: 'gcs',
    skipReason: gcsServer.skipReason,
    async setup() {
      await ensureGcsBucket();
      return { root: `gs://savepoint-test/cli-${Date.now()}`, args: { ...gcsArgs() } };
    },
  },
  {
    name: 'azure',
    skipReason: azureServer.skipReason,
    async setup() {
      await ensureContainer();
      return { root: `az://savepoint-test/cli-${Date.now()}`, args: { ...azureArgs() } };
    },
  },
];

/** Runs `body` with a fresh local folder and its store, and removes the folder afterwards. */
async function inLocalFolder(prefix: string, body: (dir: string, store: StorageBackend) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), `savepoint-${prefix}-`));
  try {
    registerAllBackends();
    await body(dir, storeFor(dir, {}));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Trains the toy model for `maxEpochs` epochs in `dir`, validating every epoch. */
function trainToy(dir: string, store: StorageBackend, hook: CheckpointHookOptions, maxEpochs: number, model = new ToyModel()) {
  return new ReferenceTrainer({
    workDir: dir,
    model,
    checkpointHook: new CheckpointHook({ ...hook, backend: store }),
    itersPerEpoch: 1,
    maxEpochs,
    valInterval: 1,
    backend: store,
  }).train();
}

async function run(argv: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env });
  return { code, out, err };
}

for (const config of stores) {
  describe.skipIf(!!config.skipReason)(
    `savepoint CLI on ${config.name}${config.skipReason ? ` (skipped: ${config.skipReason})` : ''}`,
    () => {
      let root: string;
      let args: Record<string, unknown>;
      let cleanup: (() => Promise<void>) | undefined;
      let store: StorageBackend;
      let dir: string;
      let flag: string[];

      beforeAll(async () => {
        ({ root, args, cleanup } = await config.setup());
        registerAllBackends();
        store = storeFor(root, args);
        flag = ['--backend-args', JSON.stringify(args)];
        dir = store.joinPath(root, 'run');
        const hook = new CheckpointHook({
          interval: 1,
          maxKeepCkpts: 3,
          saveBest: 'acc',
          publishedKeys: ['meta', 'state_dict'],
          backend: store,
        });
        const acc = [0.2, 0.9, 0.5, 0.4, 0.3];
        const trainer = new ReferenceTrainer({
          workDir: dir,
          model: new ToyModel((p) => ({ acc: acc[p.epoch - 1] ?? 0 })),
          checkpointHook: hook,
          itersPerEpoch: 1,
          maxEpochs: 5,
          valInterval: 1,
          backend: store,
        });
        await trainer.train();
      }, 120_000);

      afterAll(async () => {
        await store?.rmtree(root).catch(() => {});
        await cleanup?.();
      });

      it('ls marks the pointer target, the best and the published copies', async () => {
        const { code, out } = await run(['ls', dir, ...flag]);
        expect(code).toBe(0);
        const lines = out.trim().split('\n');
        expect(lines.find((l) => l.startsWith('epoch_5.safetensors'))).toContain('<- last_checkpoint');
        expect(lines.find((l) => l.startsWith('best_acc_epoch_2.safetensors'))).toContain('best(acc)');
        expect(lines.filter((l) => l.includes('published'))).toHaveLength(2);
        expect(lines.filter((l) => /^epoch_\d\.safetensors/.test(l)).map((l) => l.split(' ')[0])).toEqual([
          'epoch_3.safetensors',
          'epoch_4.safetensors',
          'epoch_5.safetensors',
        ]);
        const json = JSON.parse((await run(['ls', dir, '--json', ...flag])).out);
        expect(json.pointer).toBe(store.joinPath(dir, 'epoch_5.safetensors'));
        // Strangers' files in the folder are not listed as checkpoints.
        expect(json.checkpoints.some((c: { name: string }) => c.name === 'savepoint.lease')).toBe(false);
        expect(json.checkpoints.find((c: { name: string }) => c.name === 'epoch_5.safetensors').step).toBe(5);
      });

      it('latest prints the pointer, and exits 1 where there is none', async () => {
        expect(await run(['latest', dir, ...flag])).toMatchObject({
          code: 0,
          out: `${store.joinPath(dir, 'epoch_5.safetensors')}\n`,
        });
        const none = await run(['latest', store.joinPath(root, 'empty'), ...flag]);
        expect(none.code).toBe(1);
        expect(none.err).toMatch(/no last_checkpoint/);
      });

      it('inspect shows tensors and metadata from the header alone', async () => {
        const path = store.joinPath(dir, 'epoch_5.safetensors');
        const { code, out } = await run(['inspect', path, '--json', ...flag]);
        expect(code).toBe(0);
        const header = JSON.parse(out);
        expect(header.tensors.find((t: { name: string }) => t.name === 'state_dict.fc.weight')).toMatchObject({
          dtype: 'F32',
          shape: [4],
          bytes: 16,
        });
        expect(header.metadata.meta).toEqual({ epoch: 5, iter: 5 });
        // One 16 KiB first read at most (core's reader tests prove the bound on large files).
        expect(header.bytesRead).toBeLessThanOrEqual(16 * 1024);
        expect((await run(['inspect', path, ...flag])).out).toMatch(/state_dict\.fc\.weight\s+F32\s+\[4\]/);
      });

      it('verify passes a good run folder and fails a corrupted checkpoint', async () => {
        expect((await run(['verify', dir, ...flag])).code).toBe(0);
        const bad = store.joinPath(root, 'bad');
        await store.put(store.joinPath(bad, 'epoch_1.safetensors'), 'this is not a checkpoint');
        const result = await run(['verify', bad, ...flag]);
        expect(result.code).toBe(1);
        expect(result.out).toMatch(/FAIL\s+.*epoch_1\.safetensors/);
      });

      it("prune shows, then deletes with --yes: only the run's own regular checkpoints, never the pointer target, a newer one, a best or a stranger's file", async () => {
        const dry = await run(['prune', dir, '--keep', '1', ...flag]);
        expect(dry.code).toBe(0);
        expect(dry.out).toMatch(/would delete/);
        expect(dry.out).toContain('epoch_3.safetensors');
        expect(dry.out).not.toContain('epoch_5.safetensors');
        expect(dry.out).not.toContain('best_acc');
        expect(await store.isFile(store.joinPath(dir, 'epoch_3.safetensors'))).toBe(true);
        const copy = store.joinPath(root, 'prune-copy');
        for (const name of [
          'epoch_3.safetensors',
          'epoch_4.safetensors',
          'epoch_5.safetensors',
          'best_acc_epoch_2.safetensors',
          'last_checkpoint',
        ]) {
          await store.copy(store.joinPath(dir, name), store.joinPath(copy, name));
        }
        // Files that are not the run's: a careless prune counts them as checkpoints.
        for (const name of ['pretrained.safetensors', 'tokenizer.bin', 'model.pth', 'epoch_final.ckpt'])
          await store.put(store.joinPath(copy, name), 'not a checkpoint of this run');
        // The pointer names 4: 5 is newer (a save whose pointer has not moved yet) and stays.
        await store.put(store.joinPath(copy, 'last_checkpoint'), 'epoch_4.safetensors');
        const real = await run(['prune', copy, '--keep', '1', '--yes', ...flag]);
        expect(real.code, real.err).toBe(0);
        const left: string[] = [];
        for await (const entry of store.list(copy)) left.push(entry.name);
        expect(left.sort()).toEqual(
          [
            'best_acc_epoch_2.safetensors',
            'epoch_4.safetensors',
            'epoch_5.safetensors',
            'epoch_final.ckpt',
            'last_checkpoint',
            'model.pth',
            'pretrained.safetensors',
            'tokenizer.bin',
          ].sort(),
        );
        // --keep below 1 is refused.
        const zero = await run(['prune', copy, '--keep', '0', '--yes', ...flag]);
        expect(zero.code).toBe(2);
        expect(zero.err).toMatch(/--keep got "0"; accepted: an integer >= 1/);
      });

      it('prune --yes on a run being trained fails at once, naming the lease holder', async () => {
        const leased = store.joinPath(root, 'leased');
        const hook = new CheckpointHook({ interval: 1, backend: store });
        const trainer = new ReferenceTrainer({
          workDir: leased,
          model: new ToyModel(),
          checkpointHook: hook,
          itersPerEpoch: 1,
          maxEpochs: 3,
          backend: store,
        });
        await hook.beforeTrain(trainer);
        try {
          for (const step of [1, 2]) {
            trainer.epoch = step;
            trainer.iter = step;
            await hook.afterTrainEpoch(trainer);
          }
          const result = await run(['prune', leased, '--keep', '1', '--yes', ...flag]);
          expect(result.code).toBe(1);
          expect(result.err).toMatch(/held by training \(owner .*pid \d+, generation \d+\)/);
          expect(await store.isFile(store.joinPath(leased, 'epoch_1.safetensors'))).toBe(true);
        } finally {
          await hook.close();
        }
        expect((await run(['prune', leased, '--keep', '1', '--yes', ...flag])).code).toBe(0);
        expect(await store.isFile(store.joinPath(leased, 'epoch_1.safetensors'))).toBe(false);
      });

      it('cp of a whole run: the copy resumes from its own files and the original is never touched', async () => {
        const original = store.joinPath(root, 'cp-original');
        const train = (workDir: string, maxEpochs: number, resume: boolean) =>
          new ReferenceTrainer({
            workDir,
            model: new ToyModel((p) => ({ acc: [0.1, 0.9, 0.2, 0.3, 0.4, 0.5][p.epoch - 1] ?? 0 })),
            checkpointHook: new CheckpointHook({ interval: 1, maxKeepCkpts: 2, saveBest: 'acc', backend: store }),
            itersPerEpoch: 1,
            maxEpochs,
            valInterval: 1,
            resume,
            backend: store,
          }).train();
        await train(original, 4, false);
        // As earlier versions wrote it: the pointer holds the full path of the original's checkpoint.
        await store.put(store.joinPath(original, 'last_checkpoint'), store.joinPath(original, 'epoch_4.safetensors'));
        const before: string[] = [];
        for await (const entry of store.list(original)) before.push(`${entry.name}:${entry.size}`);
        const copy = store.joinPath(root, 'cp-copy');
        expect((await run(['cp', original, copy, ...flag])).code).toBe(0);
        expect(new TextDecoder().decode(await store.get(store.joinPath(copy, 'last_checkpoint')))).toBe('epoch_4.safetensors');
        await train(copy, 6, true);
        const after: string[] = [];
        for await (const entry of store.list(original)) after.push(`${entry.name}:${entry.size}`);
        expect(after).toEqual(before);
        const names: string[] = [];
        for await (const entry of store.list(copy)) names.push(entry.name);
        expect(names.sort()).toEqual([
          'best_acc_epoch_2.safetensors',
          'epoch_5.safetensors',
          'epoch_6.safetensors',
          'last_checkpoint',
        ]);
      });

      it('publish writes the slim copy named by its hash', async () => {
        const { code, out } = await run([
          'publish',
          store.joinPath(dir, 'epoch_4.safetensors'),
          '--keys',
          'meta',
          '--json',
          ...flag,
        ]);
        expect(code).toBe(0);
        const result = JSON.parse(out);
        expect(result.path).toMatch(/epoch_4-[0-9a-f]{8}\.safetensors$/);
        expect(result.removedKeys.sort()).toEqual(['message_hub', 'optimizer', 'param_schedulers', 'state_dict']);
        expect(await store.isFile(result.path)).toBe(true);
      });

      it('cp copies a checkpoint to local disk and back into the store, byte-identical', async () => {
        const local = await mkdtemp(join(tmpdir(), 'savepoint-cp-'));
        try {
          const src = store.joinPath(dir, 'epoch_5.safetensors');
          const keyed = JSON.stringify(config.name === 'local' ? {} : { [config.name]: args });
          const down = await run(['cp', src, join(local, 'e5.safetensors'), '--backend-args', keyed]);
          expect(down.code).toBe(0);
          const back = store.joinPath(root, 'copied', 'e5.safetensors');
          expect((await run(['cp', join(local, 'e5.safetensors'), back, '--backend-args', keyed])).code).toBe(0);
          expect(Buffer.from(await store.get(back)).equals(Buffer.from(await store.get(src)))).toBe(true);
        } finally {
          await rm(local, { recursive: true, force: true });
        }
      });

      it('errors name the path and the fix, without a stack trace', async () => {
        const missing = await run(['ls', store.joinPath(root, 'no-such-run'), ...flag]);
        expect(missing.code).toBe(1);
        expect(missing.err).toContain('no-such-run');
        expect(missing.err).not.toMatch(/\n\s+at /);
      });
    },
  );
}

describe('savepoint CLI usage errors', () => {
  it('a wrong scheme is exit 2 and lists the registered backends', async () => {
    const result = await run(['ls', 'zz://bucket/run']);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/no backend serves "zz:\/\/".*s3/);
    expect(result.err).not.toMatch(/\n\s+at /);
  });
  it('bad flags are exit 2', async () => {
    expect((await run(['prune', '/tmp/x'])).code).toBe(2);
    expect((await run(['prune', '/tmp/x', '--keep', 'many'])).code).toBe(2);
    expect((await run(['prune', '/tmp/x', '--keep', '0'])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
    const badJson = await run(['ls', '/tmp/x', '--backend-args', '{oops']);
    expect(badJson.code).toBe(2);
    expect(badJson.err).toMatch(/--backend-args is not valid JSON/);
    const badEnv = await run(['ls', 's3://b/x'], { SAVEPOINT_BACKEND_ARGS: '{"partSize": 1}' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.err).toMatch(/partSize/);
  });
  it('--version prints the package version', async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, '..', 'package.json'), 'utf8'));
    const result = await run(['--version']);
    expect(result.code).toBe(0);
    expect(result.out.trim()).toBe(pkg.version);
  });
  it('a URI with one slash (s3:/bucket/x) is a usage error naming the fix, not a local folder', async () => {
    const result = await run(['ls', 's3:/bucket/run']);
    expect(result.code).toBe(2);
    expect(result.err).toContain('did you mean "s3://bucket/run"');
  });
  it('verify of a run folder fails when the pointer names a missing checkpoint', () =>
    inLocalFolder('verify', async (dir, store) => {
      await trainToy(dir, store, { interval: 1, maxKeepCkpts: 1 }, 2);
      expect((await run(['verify', dir])).code).toBe(0);
      await store.put(join(dir, 'last_checkpoint'), 'epoch_1.safetensors'); // rotated away
      const result = await run(['verify', dir]);
      expect(result.code).toBe(1);
      expect(result.out).toMatch(
        /FAIL\s+.*last_checkpoint -> .*epoch_1\.safetensors: the pointer names a checkpoint that does not load/,
      );
    }));
  it('verify fails a checkpoint with one flipped tensor byte, and says when a file records no data hash', () =>
    inLocalFolder('verify', async (dir, store) => {
      const path = join(dir, 'epoch_1.safetensors');
      await saveCheckpointFile(store, path, { state_dict: { w: new Float32Array(256).fill(1.5) } });
      expect((await run(['verify', path])).out).toMatch(/^ok\s+\S+epoch_1\.safetensors$/m);
      const bytes = await readFile(path);
      bytes[bytes.byteLength - 3] = (bytes[bytes.byteLength - 3] ?? 0) ^ 0x10;
      await writeFile(path, bytes);
      const flipped = await run(['verify', path]);
      expect(flipped.code).toBe(1);
      expect(flipped.out).toMatch(/FAIL\s+.*epoch_1\.safetensors: .*does not match the SHA-256 its header records/);
      // Written by another tool: no hash. It verifies, saying what it could not check.
      const header = JSON.stringify({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }).padEnd(48, ' ');
      const other = new Uint8Array(8 + header.length + 4);
      new DataView(other.buffer).setBigUint64(0, BigInt(header.length), true);
      other.set(new TextEncoder().encode(header), 8);
      await writeFile(join(dir, 'other.safetensors'), other);
      const unchecked = await run(['verify', join(dir, 'other.safetensors')]);
      expect(unchecked.code).toBe(0);
      expect(unchecked.out).toMatch(/ok\s+.*other\.safetensors \(structure checked; its bytes could not be/);
    }));
  it('inspect and verify of a header holding deeply nested JSON text print a clear error, not a raw JavaScript one', () =>
    inLocalFolder('deep', async (dir) => {
      const path = join(dir, 'deep.safetensors');
      const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
      const header = JSON.stringify({ __metadata__: { meta: deep } });
      const bytes = new Uint8Array(8 + header.length);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
      bytes.set(new TextEncoder().encode(header), 8);
      await writeFile(path, bytes);
      const inspected = await run(['inspect', path]);
      expect(inspected.code).not.toBe(0);
      expect(inspected.out + inspected.err).not.toMatch(/Maximum call stack|RangeError|TypeError/);
      expect(inspected.err).toMatch(/metadata value of "meta" nests deeper than 256 levels/);
      const verified = await run(['verify', path]);
      expect(verified.code).toBe(1);
      expect(verified.out).not.toMatch(/Maximum call stack|RangeError|TypeError/);
      expect(verified.out).toMatch(/FAIL\s+.*deep\.safetensors: .*nests deeper than 256 levels/);
    }));
  it('verify fails a tensor defined in two shards, a savepoint header that lost its hash, and a non-string shard name', () =>
    inLocalFolder('verify-integrity', async (dir, store) => {
      // Two shards, then the second also defines the first's tensor (manifest brought in line).
      const folder = join(dir, 'epoch_1');
      const manifest = await saveCheckpointDir(
        store,
        folder,
        { state_dict: { a: new Float32Array(64).fill(1), b: new Float32Array(64).fill(2) } },
        { maxShardBytes: 300 },
      );
      type Shard = (typeof manifest.shards)[number];
      const [first, second] = manifest.shards as [Shard, Shard];
      // A valid savepoint file holding both names, as the second shard.
      const both = join(dir, 'both.safetensors');
      await saveCheckpointFile(store, both, {
        state_dict: { b: new Float32Array(64).fill(2), a: new Float32Array(64).fill(9) },
      });
      const bytes = await readFile(both);
      await writeFile(join(folder, second.file), bytes);
      second.bytes = bytes.byteLength;
      second.sha256 = createHash('sha256').update(bytes).digest('hex');
      await writeFile(join(folder, 'savepoint-manifest.json'), JSON.stringify(manifest));
      const twice = await run(['verify', folder]);
      expect(twice.code).toBe(1);
      expect(twice.out).toMatch(new RegExp(`FAIL .*tensor "state_dict\\.a" is in two shards, ${first.file} and ${second.file}`));

      // A file savepoint wrote, its hash removed from the header and a tensor byte changed.
      const path = join(dir, 'epoch_2.safetensors');
      await saveCheckpointFile(store, path, { state_dict: { w: new Float32Array(64).fill(1.5) } });
      const file = await readFile(path);
      const length = Number(file.readBigUInt64LE(0));
      const header = JSON.parse(file.subarray(8, 8 + length).toString());
      delete header.__metadata__['savepoint:data_sha256'];
      const json = Buffer.from(JSON.stringify(header));
      const stripped = Buffer.concat([Buffer.alloc(8), json, file.subarray(8 + length)]);
      stripped.writeBigUInt64LE(BigInt(json.byteLength), 0);
      stripped[stripped.byteLength - 1] = (stripped[stripped.byteLength - 1] ?? 0) ^ 0x01;
      await writeFile(path, stripped);
      const lost = await run(['verify', path]);
      expect(lost.code).toBe(1);
      expect(lost.out).toMatch(/FAIL\s+.*epoch_2\.safetensors: .*written by savepoint but records no data SHA-256/);

      // A manifest whose shard name is not a string.
      await writeFile(
        join(folder, 'savepoint-manifest.json'),
        JSON.stringify({ ...manifest, shards: [{ ...first, file: 42 }, second] }),
      );
      const named = await run(['verify', folder]);
      expect(named.code).toBe(1);
      expect(named.out).not.toMatch(/TypeError|is not a function/);
      expect(named.out).toMatch(/FAIL .*shard 1: file is a number, not a shard file name/);
    }));
  it('with --json, errors are JSON too', async () => {
    const result = await run(['ls', 'zz://bucket/run', '--json']);
    expect(result.code).toBe(2);
    const parsed = JSON.parse(result.err);
    expect(parsed.error).toMatchObject({ code: 'CONFIG', exitCode: 2 });
    expect(parsed.error.message).toMatch(/no backend serves "zz:\/\/"/);
  });
  it('inspect of the pointer says what it is and where it points; of a run folder, that it is a run folder; ls has a header and is sorted by step', async () => {
    await inLocalFolder('inspect', async (dir, store) => {
      await trainToy(
        dir,
        store,
        { interval: 1, saveBest: 'acc' },
        3,
        new ToyModel((p) => ({ acc: [0.9, 0.1, 0.2][p.epoch - 1] ?? 0 })),
      );
      const pointer = await run(['inspect', join(dir, 'last_checkpoint')]);
      expect(pointer.code).toBe(2);
      expect(pointer.err).toContain(`is the run's pointer, not a checkpoint; it names ${join(dir, 'epoch_3.safetensors')}`);
      const folder = await run(['inspect', dir]);
      expect(folder.code).toBe(2);
      expect(folder.err).toMatch(/is a run folder, not a checkpoint; list its checkpoints with savepoint ls/);
      const listing = (await run(['ls', dir])).out.trim().split('\n');
      expect(listing[0]).toMatch(/^NAME\s+STEP\s+SIZE\s+MODIFIED\s+NOTES$/);
      expect(listing.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([
        'best_acc_epoch_1.safetensors',
        'epoch_1.safetensors',
        'epoch_2.safetensors',
        'epoch_3.safetensors',
      ]);
    });
  });
  it('ls keeps its columns in line when a name is longer than the others (a best on a long metric name)', async () => {
    await inLocalFolder('ls-columns', async (dir, store) => {
      const metric = 'validation/accuracy_top1_of_the_held_out_set';
      await trainToy(dir, store, { interval: 1, saveBest: metric }, 2, new ToyModel((p) => ({ [metric]: p.epoch / 10 })));
      const [header, ...rows] = (await run(['ls', dir])).out.trimEnd().split('\n') as [string, ...string[]];
      expect(rows.some((row) => row.startsWith('best_validation_accuracy_top1_of_the_held_out_set_epoch_2'))).toBe(true);
      expect(rows.length).toBeGreaterThanOrEqual(3);
      // Every row's step starts under STEP, and every size ends where SIZE ends (right-aligned).
      for (const row of rows) expect(row.indexOf('  step ') + 2, row).toBe(header.indexOf('STEP'));
      const sizeEnd = header.indexOf('SIZE') + 'SIZE'.length;
      for (const row of rows) expect(row.slice(0, sizeEnd), row).toMatch(/\d(\.\d+)? ?[KMG]?i?B$/);
    });
  });
  it('inspect refuses a header length over the reference bound without reading the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-header-'));
    try {
      const { open } = await import('node:fs/promises');
      const file = join(dir, 'huge.safetensors');
      const handle = await open(file, 'w');
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(1_500_000_000n);
      await handle.write(length, 0, 8, 0);
      await handle.truncate(1_500_000_008); // sparse: 1.5 GB on paper, nothing on disk
      await handle.close();
      const before = process.memoryUsage().rss;
      const result = await run(['inspect', file]);
      expect(result.code).toBe(1);
      expect(result.err).toMatch(/header claims 1500000000 bytes \(over 100000000\)/);
      expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('publish with keys the checkpoint does not hold fails and writes nothing', () =>
    inLocalFolder('publish', async (dir, store) => {
      await trainToy(dir, store, { interval: 1 }, 1);
      const result = await run(['publish', join(dir, 'epoch_1.safetensors'), '--keys', 'nosuchkey,meta']);
      expect(result.code).toBe(2);
      expect(result.err).toMatch(/--keys "nosuchkey" not in .*holds: .*state_dict/);
      const { readdir } = await import('node:fs/promises');
      expect((await readdir(dir)).sort()).toEqual(['epoch_1.safetensors', 'last_checkpoint']);
    }));
  it('--verbose adds the stack; --help shows examples', async () => {
    const verbose = await run(['ls', 'zz://bucket/run', '--verbose']);
    expect(verbose.err).toMatch(/\n\s+at /);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Examples:');
    for (const command of ['ls', 'latest', 'inspect', 'verify', 'prune', 'publish', 'cp']) {
      const own = await run([command, '--help']);
      expect(own.code, command).toBe(0);
      expect(own.out, command).toMatch(new RegExp(`Examples:\\n\\s+savepoint ${command} `));
    }
  });
});

describe.skipIf(!!s3Server.skipReason)('the savepoint binary on S3', () => {
  it("prints no AWS SDK Node-version warning (the user cannot act on it), only the command's own output", async () => {
    await ensureS3Bucket();
    const { spawnSync } = await import('node:child_process');
    const bin = join(import.meta.dirname, '..', 'dist', 'bin.js');
    const env = { ...process.env };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const result = spawnSync(
      process.execPath,
      [bin, 'ls', 's3://savepoint-test/no-such-run', '--backend-args', JSON.stringify(s3Args())],
      { encoding: 'utf8', env },
    );
    expect(result.stderr).toContain('no run folder at s3://savepoint-test/no-such-run');
    expect(result.stderr).not.toMatch(/NodeVersionSupportWarning|upgrade to node/);
  });
});

describe('--json fields are clean (issue 27)', () => {
  /** Every string under a key that names a path, anywhere in a JSON answer. */
  function pathFields(value: unknown, key = ''): [string, string][] {
    if (typeof value === 'string') return /^(path|target|pointer|dir|name|toDelete|kept)$/.test(key) ? [[key, value]] : [];
    if (Array.isArray(value)) return value.flatMap((v) => pathFields(v, key));
    if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => pathFields(v, k));
    return [];
  }
  it('verify puts the pointer and the checkpoint it names in separate fields; no path field of any command holds prose', () =>
    inLocalFolder('json', async (dir, store) => {
      await trainToy(dir, store, { interval: 1, maxKeepCkpts: 2, saveBest: 'acc', publishedKeys: ['meta'] }, 3);
      const verified = JSON.parse((await run(['verify', dir, '--json'])).out);
      expect(verified.results[0]).toEqual({
        path: join(dir, 'last_checkpoint'),
        target: join(dir, 'epoch_3.safetensors'),
        ok: true,
      });
      const answers = [
        verified,
        JSON.parse((await run(['ls', dir, '--json'])).out),
        JSON.parse((await run(['latest', dir, '--json'])).out),
        JSON.parse((await run(['inspect', join(dir, 'epoch_3.safetensors'), '--json'])).out),
        JSON.parse((await run(['prune', dir, '--keep', '1', '--json'])).out),
        JSON.parse((await run(['publish', join(dir, 'epoch_3.safetensors'), '--keys', 'meta', '--json'])).out),
      ];
      const fields = answers.flatMap((answer) => pathFields(answer));
      expect(fields.length).toBeGreaterThan(10);
      for (const [key, value] of fields) {
        // A path is a path: no arrow, no note, no "(...)" remark, no leading marker.
        expect(value, key).not.toMatch(/ -> |<-| \(|^\s|\s$/);
        if (key !== 'name') expect(value.startsWith(dir), `${key}: ${value}`).toBe(true);
      }
    }));
  it("an error code is a code, like the library errors' (CHECK_FAILED, not the class name CheckFailed)", () =>
    inLocalFolder('json-code', async (dir, store) => {
      await store.put(join(dir, 'notes.txt'), 'not a run yet');
      const latest = await run(['latest', dir, '--json']);
      expect(latest.code).toBe(1);
      expect(JSON.parse(latest.err).error).toMatchObject({ code: 'CHECK_FAILED', exitCode: 1 });
      expect(JSON.parse((await run(['ls', join(dir, 'nothing'), '--json'])).err).error.code).toBe('NOT_FOUND');
    }));
});

describe('--help on every command (issue 27)', () => {
  const commands = ['ls', 'latest', 'inspect', 'verify', 'prune', 'publish', 'cp'];
  it('prints the help, exit 0, in every form commander offers', async () => {
    for (const argv of [
      ['help'],
      ['-h'],
      ...commands.flatMap((c) => [
        [c, '--help'],
        [c, '-h'],
        ['help', c],
        [c, 'x', '--help'],
      ]),
    ]) {
      const result = await run(argv);
      expect(result.code, argv.join(' ')).toBe(0);
      expect(result.out, argv.join(' ')).toMatch(/^Usage: savepoint/);
      expect(result.err, argv.join(' ')).toBe('');
    }
  });
  it('the binary piped into a reader that stops early (savepoint ls --help | head -1) prints no stack trace', async () => {
    const { spawn } = await import('node:child_process');
    const bin = join(import.meta.dirname, '..', 'dist', 'bin.js');
    // The children at once: nine Node.js starts one after the other took over 30 s on a busy machine.
    const runs = [['--help'], ...commands.map((c) => [c, '--help'])].map(async (argv) => {
      const child = spawn(process.execPath, [bin, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      // The reader goes away before the first byte: every write of the child meets a closed pipe.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      return { argv, stderr, code };
    });
    for (const { argv, stderr, code } of await Promise.all(runs)) {
      expect(stderr, argv.join(' ')).toBe('');
      expect(code, argv.join(' ')).toBe(0);
    }
  }, 120_000);
});

describe('the help examples run as written inside the repo', () => {
  it('`savepoint` is on the PATH of pnpm scripts and pnpm exec (node_modules/.bin)', async () => {
    const { spawnSync } = await import('node:child_process');
    const root = join(import.meta.dirname, '..', '..', '..');
    const bin = join(root, 'node_modules', '.bin', 'savepoint');
    const result = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = spawnSync(bin, ['ls', '--help'], { encoding: 'utf8' });
    expect(help.stdout).toMatch(/Examples:\n\s+savepoint ls /);
  });
});

describe('paths typed on the command line (issue 27)', () => {
  it('a local path with ".." resolves against the working directory, as the shell would: every command', () =>
    inLocalFolder('dotdot', async (dir, store) => {
      const runDir = join(dir, 'x');
      await trainToy(runDir, store, { interval: 1 }, 2);
      // Absolute with "..", and relative to the working directory with "..". (Not path.join: it would resolve the "..".)
      const viaParent = [dir, 'elsewhere', '..', 'x'].join(sep);
      expect(viaParent.split(sep)).toContain('..');
      const relativeToCwd = relative(process.cwd(), runDir);
      expect(relativeToCwd.split(sep)).toContain('..');
      for (const path of [viaParent, relativeToCwd]) {
        const listed = await run(['ls', path, '--json']);
        expect(listed.code, listed.err).toBe(0);
        expect(JSON.parse(listed.out).pointer).toBe(join(runDir, 'epoch_2.safetensors'));
        expect((await run(['latest', path])).out.trim()).toBe(join(runDir, 'epoch_2.safetensors'));
        expect((await run(['verify', path])).code).toBe(0);
        expect((await run(['inspect', `${path}${sep}epoch_2.safetensors`])).code).toBe(0);
        expect((await run(['prune', path, '--keep', '1'])).out).toContain(join(runDir, 'epoch_1.safetensors'));
      }
      const copied = await run(['cp', `${viaParent}${sep}epoch_2.safetensors`, [dir, 'y', '..', 'z', 'e.safetensors'].join(sep)]);
      expect(copied.code, copied.err).toBe(0);
      expect(await readFile(join(dir, 'z', 'e.safetensors'))).toEqual(await readFile(join(runDir, 'epoch_2.safetensors')));
    }));
  it('".." inside an object-store URI is still refused: it is a hostile path, not a folder on this machine', async () => {
    for (const uri of ['s3://bucket/runs/../x', 'gs://bucket/a/../../x', 'az://container/../x']) {
      const result = await run(['ls', uri]);
      expect(result.code, uri).toBe(2);
      expect(result.err, uri).toMatch(/"\.\." segments are not allowed/);
    }
  });
});
