// A folder in the run folder that is named like a checkpoint but is not one
// (`epoch_50.safetensors/` holding someone's notes, no manifest) is not the run's to
// delete: resume keeps it and its files. A folder holding nothing but the shard files
// of an interrupted save of a folder checkpoint is what the run left, and is removed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '@savepoint/backend-local';
import { ToyModel } from '@savepoint/backend-test-suite';
import { CheckpointHook, ReferenceTrainer, type StorageBackend } from '@savepoint/core';
import { describe, expect, it } from 'vitest';
import { NETWORK_STORES } from './stores.js';

const s3 = NETWORK_STORES.find((s) => s.cloud === 's3');
const targets: { name: string; skipReason: string | undefined; open(): Promise<{ store: StorageBackend; root: string }> }[] = [
  {
    name: 'local',
    skipReason: undefined,
    async open() {
      return { store: new LocalBackend(), root: await mkdtemp(join(tmpdir(), 'savepoint-named-folders-')) };
    },
  },
  {
    name: 's3',
    skipReason: s3 ? s3.skipReason : 'no S3 store in NETWORK_STORES',
    async open() {
      const store = s3 as NonNullable<typeof s3>;
      await store.prepare();
      const backend = store.make(store.origin as string);
      return { store: backend, root: backend.joinPath(store.root, `named-folders-${Date.now()}`) };
    },
  },
];

/** Every file below `dir`, relative, with its text. */
async function files(store: StorageBackend, dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const entry of store.list(dir, { recursive: true })) {
    if (entry.type === 'dir') continue;
    out[entry.path.slice(dir.replace(/[\\/]+$/, '').length + 1).replaceAll('\\', '/')] = new TextDecoder().decode(
      await store.get(entry.path),
    );
  }
  return out;
}

function trainer(store: StorageBackend, workDir: string, maxEpochs: number, resume: boolean, logs: string[]) {
  return new ReferenceTrainer({
    workDir,
    model: new ToyModel((p) => ({ acc: p.epoch / 10 })),
    checkpointHook: new CheckpointHook({ interval: 1, maxKeepCkpts: 2, saveBest: 'acc', backend: store }),
    itersPerEpoch: 1,
    maxEpochs,
    valInterval: 1,
    resume,
    backend: store,
    logger: { info: (m) => logs.push(`info: ${m}`), warn: (m) => logs.push(`warn: ${m}`) },
  });
}

for (const target of targets) {
  describe.skipIf(!!target.skipReason)(`resume and folders named like checkpoints on ${target.name}`, () => {
    it('resume keeps a folder named like a checkpoint that holds other files, and removes one holding only the shards of an interrupted save', async () => {
      const { store, root } = await target.open();
      try {
        const workDir = store.joinPath(root, 'run');
        await trainer(store, workDir, 2, false, []).train();
        const at = (...segments: string[]) => store.joinPath(workDir, ...segments);
        // Someone's folders, named like a regular checkpoint past the resumed step and like a best.
        const strangers = {
          'epoch_50.safetensors': { 'notes.txt': 'what I tried at epoch 50', 'plots/loss.csv': '1,0.5\n2,0.25\n' },
          'best_acc_epoch_40.safetensors': { 'README.md': 'the weights are elsewhere' },
        };
        for (const [folder, content] of Object.entries(strangers))
          for (const [name, text] of Object.entries(content)) await store.put(at(folder, ...name.split('/')), text);
        // What a killed save of a folder checkpoint leaves: one of two shards, no manifest.
        const shard = at('epoch_60.safetensors', 'shard-00001-of-00002-0123abcd.safetensors');
        await store.put(shard, new Uint8Array(64));
        expect(await store.isDir(at('epoch_60.safetensors'))).toBe(true);

        const logs: string[] = [];
        const resumed = trainer(store, workDir, 3, true, logs);
        await resumed.train();
        expect(resumed.resumedFrom).toBe(at('epoch_2.safetensors'));

        for (const [folder, content] of Object.entries(strangers)) {
          expect(await files(store, at(folder)), folder).toEqual(content);
          expect(logs.join('\n')).toContain(`warn: ${at(folder)} is named like a checkpoint of this run but is a folder`);
        }
        expect(await store.isFile(shard)).toBe(false);
        expect(await store.isDir(at('epoch_60.safetensors'))).toBe(false);
        expect(logs.join('\n')).toContain(`${at('epoch_60.safetensors')} is removed`);
        // The run itself went on as usual: two regular checkpoints, the pointer on the newest.
        const names: string[] = [];
        for await (const entry of store.list(workDir)) names.push(entry.name);
        expect(names.filter((n) => /^epoch_\d+\.safetensors$/.test(n)).sort()).toEqual([
          'epoch_2.safetensors',
          'epoch_3.safetensors',
          'epoch_50.safetensors',
        ]);
        // Name and fencing generation (a third line carries the new best's bookkeeping).
        const pointer = new TextDecoder().decode(await store.get(at('last_checkpoint'))).split('\n');
        expect(pointer.slice(0, 2)).toEqual(['epoch_3.safetensors', 'generation: 2']);

        // A second resume (and its rotation) keeps them too.
        await trainer(store, workDir, 5, true, []).train();
        for (const [folder, content] of Object.entries(strangers))
          expect(await files(store, at(folder)), folder).toEqual(content);
        expect(await store.isFile(at('epoch_3.safetensors'))).toBe(false);
        expect(await store.isFile(at('epoch_5.safetensors'))).toBe(true);
      } finally {
        await store.rmtree(root).catch(() => {});
        await store.close?.();
        if (target.name === 'local') await rm(root, { recursive: true, force: true });
      }
    }, 60_000);
  });
}
