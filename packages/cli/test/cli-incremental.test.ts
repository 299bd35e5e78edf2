// (ours) The CLI on incremental runs, on local disk and S3: `ls` reports each checkpoint's
// shared and exclusive bytes, `verify` checks every object a checkpoint names, `cp`
// copies exactly the objects the run's checkpoints name, and `prune` says what the
// deletion frees and collects the objects no kept checkpoint names.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainIncremental } from '@savepoint/backend-test-suite';
import { loadCheckpoint, Run, type StorageBackend } from '@savepoint/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBucket as ensureS3Bucket, s3Args, server as s3Server } from '../../backend-s3/test/s3-setup.js';
import { main, registerAllBackends, storeFor } from '../src/index.js';

const stores = [
  {
    name: 'local',
    skipReason: undefined as string | undefined,
    async setup() {
      const root = await mkdtemp(join(tmpdir(), 'savepoint-cli-incr-'));
      return { root, args: {}, cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  },
  {
    name: 's3',
    skipReason: s3Server.skipReason,
    async setup() {
      await ensureS3Bucket();
      return { root: `s3://savepoint-test/cli-incr-${Date.now()}`, args: { ...s3Args() }, cleanup: undefined };
    },
  },
];

async function cli(argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

for (const config of stores) {
  describe.skipIf(!!config.skipReason)(`savepoint CLI on an incremental run (${config.name})`, () => {
    let root: string;
    let store: StorageBackend;
    let flag: string[];
    let cleanup: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      const ctx = await config.setup();
      ({ root, cleanup } = ctx);
      registerAllBackends();
      store = storeFor(root, ctx.args);
      flag = ['--backend-args', JSON.stringify(ctx.args)];
    }, 60_000);
    afterAll(async () => {
      await store.rmtree(root).catch(() => {});
      await cleanup?.();
    }, 60_000);

    it('ls reports shared and exclusive bytes; verify checks every object; cp copies exactly the referenced objects', async () => {
      const dir = store.joinPath(root, 'run-a');
      await trainIncremental(store, dir, { epochs: 3, hook: { maxKeepCkpts: 2 } });
      const ls = await cli(['ls', dir, '--json', ...flag]);
      expect(ls.code).toBe(0);
      const listed = JSON.parse(ls.out).checkpoints as {
        name: string;
        shape: string;
        sharedBytes: number;
        exclusiveBytes: number;
      }[];
      expect(listed.map((c) => [c.name, c.shape])).toEqual([
        ['epoch_2.safetensors', 'incremental'],
        ['epoch_3.safetensors', 'incremental'],
      ]);
      // The base (4 x 256 floats) is shared; each head (64 floats) is its own.
      for (const c of listed) {
        expect(c.sharedBytes).toBeGreaterThan(4 * 1024);
        expect(c.exclusiveBytes).toBeGreaterThan(256);
        expect(c.exclusiveBytes).toBeLessThan(512);
      }
      expect((await cli(['ls', dir, ...flag])).out).toMatch(/incremental \(shared .*, exclusive .*\)/);
      expect((await cli(['verify', dir, ...flag])).code).toBe(0);

      // A stray object is not copied; every referenced one is, and the copy verifies.
      const run = Run.open(dir, { backend: store });
      await store.put(run.layout.objectPath('F32', 'd'.repeat(64)), 'stray');
      const target = store.joinPath(root, 'run-a-copy');
      expect((await cli(['cp', dir, target, ...flag])).code).toBe(0);
      const copied = await Run.open(target, { backend: store }).objectUsage();
      expect(copied.unreferenced).toEqual([]);
      expect(copied.missing).toEqual([]);
      expect(copied.stored).toBe(6);
      expect((await cli(['verify', target, ...flag])).code).toBe(0);

      // An object gone: verify fails, naming it.
      const [victim] = [...(await run.objectUsage()).referenced.keys()];
      await store.remove(store.joinPath(run.layout.objectsDir, victim as string));
      const broken = await cli(['verify', dir, ...flag]);
      expect(broken.code).toBe(1);
      expect(broken.out + broken.err).toContain(victim as string);
    }, 120_000);

    it('prune says what deleting frees (shared objects stay) and collects the objects no kept checkpoint names', async () => {
      const dir = store.joinPath(root, 'run-b');
      await trainIncremental(store, dir, { epochs: 3 });
      const dry = await cli(['prune', dir, '--keep', '1', '--json', ...flag]);
      const planned = JSON.parse(dry.out);
      // Two heads (64 floats each, plus their object headers) go; the base stays.
      expect(planned.freedBytes).toBeGreaterThan(2 * 256);
      expect(planned.freedBytes).toBeLessThan(2 * 512);
      const done = await cli(['prune', dir, '--keep', '1', '--yes', ...flag]);
      expect(done.code).toBe(0);
      expect(done.out).toMatch(/freed \(2 objects collected\)/);
      const usage = await Run.open(dir, { backend: store }).objectUsage();
      expect(usage.unreferenced).toEqual([]);
      expect(usage.stored).toBe(5);
      expect((await cli(['verify', dir, ...flag])).code).toBe(0);
    }, 120_000);

    it('cp of one incremental checkpoint brings the objects it names (and no others): the copy loads and verifies on its own', async () => {
      const dir = store.joinPath(root, 'run-c');
      await trainIncremental(store, dir, { epochs: 2 });
      const from = store.joinPath(dir, 'epoch_2.safetensors');
      const elsewhere = store.joinPath(root, 'run-c-one');
      const to = store.joinPath(elsewhere, 'epoch_2.safetensors');
      const copy = await cli(['cp', from, to, ...flag]);
      expect(copy.code, copy.err).toBe(0);
      const verified = await cli(['verify', to, ...flag]);
      expect(verified.code, verified.out + verified.err).toBe(0);
      const original = await loadCheckpoint(store, from);
      const copied = await loadCheckpoint(store, to);
      expect(copied.state_dict).toEqual(original.state_dict);
      // Exactly epoch 2's objects: epoch 1's head is not among them.
      const names = async (run: string) => {
        const out: string[] = [];
        for await (const entry of store.list(store.joinPath(run, 'savepoint-objects'))) out.push(entry.name);
        return out.sort();
      };
      const epoch2 = (await Run.open(dir, { backend: store }).objectUsage()).referenced;
      const own = [...epoch2].filter(([, ref]) => ref.by.includes('epoch_2.safetensors')).map(([name]) => name);
      expect(await names(elsewhere)).toEqual(own.sort());
      expect((await names(dir)).length).toBeGreaterThan(own.length);
    }, 120_000);
  });
}
