// Ownership attacks on every store, counted for docs/reliability.md: hostile
// pointers, hostile runtime info, a copied run, strangers' files in the run folder,
// and a concurrent writer. After each attack nothing outside the run changed, and
// the attack was refused (pointer, writer) or ignored with a warning (runtime info).
import { rm } from 'node:fs/promises';
import { ToyModel } from '@savepoint/backend-test-suite';
import {
  CheckpointHook,
  ForeignPathError,
  LeaseHeldError,
  ReferenceTrainer,
  type StorageBackend,
  saveCheckpointFile,
} from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { prune } from '../../cli/src/commands.js';
import { recordFigures } from '../src/index.js';
import { storeTargets } from './stores.js';

interface Counts {
  hostilePointers: number;
  hostileRuntimeInfo: number;
  copiedRuns: number;
  foreignFiles: number;
  concurrentWriters: number;
}
const figures: Record<string, Counts> = {};
afterAll(() => recordFigures('ownership', { stores: figures }));

async function snapshot(store: StorageBackend, dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of store.list(dir, { recursive: true })) out.push(`${entry.path}:${entry.size}`);
  return out.sort();
}

function trainer(store: StorageBackend, workDir: string, maxEpochs: number, resume: boolean, logs: string[] = []) {
  return new ReferenceTrainer({
    workDir,
    model: new ToyModel((p) => ({ acc: p.epoch / 10 })),
    checkpointHook: new CheckpointHook({ interval: 1, maxKeepCkpts: 1, saveBest: 'acc', backend: store }),
    itersPerEpoch: 1,
    maxEpochs,
    valInterval: 1,
    resume,
    backend: store,
    logger: { info: () => {}, warn: (m) => logs.push(m) },
  });
}

const targets = storeTargets('ownership');

for (const target of targets) {
  describe.skipIf(!!target.skipReason)(`ownership attacks on ${target.name}`, () => {
    it("hostile pointers and runtime info, a copied run, strangers' files and a second writer change nothing outside the run", async () => {
      const { store, root } = await target.open();
      const counts: Counts = { hostilePointers: 0, hostileRuntimeInfo: 0, copiedRuns: 0, foreignFiles: 0, concurrentWriters: 0 };
      try {
        const victim = store.joinPath(root, 'victim');
        await trainer(store, victim, 3, false).train();
        await store.put(store.joinPath(victim, 'pretrained.safetensors'), 'weights someone downloaded');
        const victimFiles = await snapshot(store, victim);
        const run = store.joinPath(root, 'run');
        await trainer(store, run, 2, false).train();

        // 1. Pointers that name anything but a checkpoint of this run.
        const pointers = [
          store.joinPath(victim, 'epoch_3.safetensors'),
          store.joinPath(victim, 'best_acc_epoch_3.safetensors'),
          `${victim}/../run/epoch_2.safetensors`,
          '../victim/epoch_3.safetensors',
          'savepoint.lease',
          'last_checkpoint',
          '/etc/passwd',
          's3://someone-elses-bucket/run/epoch_1.safetensors',
          'gs://someone-elses-bucket/run/epoch_1.safetensors',
          'az://other/run/epoch_1.safetensors',
          '.',
          '..',
        ];
        for (const text of pointers) {
          await store.put(store.joinPath(run, 'last_checkpoint'), text);
          const error = await trainer(store, run, 4, true)
            .train()
            .catch((e) => e);
          expect(error, text).toBeInstanceOf(ForeignPathError);
          expect(await snapshot(store, victim)).toEqual(victimFiles);
          counts.hostilePointers++;
        }
        await store.put(store.joinPath(run, 'last_checkpoint'), 'epoch_2.safetensors');

        // 2. Our own checkpoint, edited: its runtime info names the victim's files.
        const j = (name: string) => store.joinPath(victim, name);
        const hostileValues: unknown[] = [
          j('epoch_3.safetensors'),
          j('best_acc_epoch_3.safetensors'),
          j('pretrained.safetensors'),
          victim,
          root,
          '../victim/epoch_3.safetensors',
          'pretrained.safetensors',
          42,
          { path: j('epoch_3.safetensors') },
        ];
        for (const value of hostileValues) {
          await saveCheckpointFile(store, store.joinPath(run, 'epoch_2.safetensors'), {
            meta: { epoch: 2, iter: 2 },
            state_dict: { 'fc.weight': new Float32Array(4), 'fc.bias': new Float64Array(1) },
            message_hub: {
              runtime_info: {
                last_ckpt: value,
                best_ckpt: value,
                best_score: 0.2,
                pending_removals: [value],
                keep_ckpt_ids: [2],
              },
            },
          });
          await store.put(store.joinPath(run, 'pretrained.safetensors'), 'a stranger in our folder');
          const logs: string[] = [];
          await trainer(store, run, 2, true, logs).train();
          expect(await snapshot(store, victim)).toEqual(victimFiles);
          expect(await store.isFile(store.joinPath(run, 'pretrained.safetensors'))).toBe(true);
          expect(logs.some((l) => l.includes('never deleted'))).toBe(true);
          counts.hostileRuntimeInfo++;
        }

        // 3. A copied run resumes in its new place and leaves the original alone.
        const copy = store.joinPath(root, 'copy');
        for await (const entry of store.list(victim)) await store.copy(entry.path, store.joinPath(copy, entry.name));
        await trainer(store, copy, 5, true).train();
        expect(await snapshot(store, victim)).toEqual(victimFiles);
        expect(await store.isFile(store.joinPath(copy, 'epoch_5.safetensors'))).toBe(true);
        counts.copiedRuns++;

        // 4. Strangers' files in the run folder survive prune.
        const strangers = ['tokenizer.bin', 'model.pth', 'epoch_final.ckpt', 'notes-epoch_9.txt', 'best_guess.safetensors'];
        for (const name of strangers) await store.put(store.joinPath(copy, name), 'not ours');
        await prune(copy, { keep: 1 }, true, { backend: store });
        for (const name of strangers) expect(await store.isFile(store.joinPath(copy, name)), name).toBe(true);
        counts.foreignFiles += strangers.length + 1; // and pretrained.safetensors in the run above

        // 5. A second writer on a run being trained is refused, and so is prune --yes.
        const hook = new CheckpointHook({ interval: 1, backend: store });
        const first = trainer(store, copy, 9, true);
        await hook.beforeTrain(first);
        try {
          await expect(trainer(store, copy, 9, true).train()).rejects.toBeInstanceOf(LeaseHeldError);
          await expect(prune(copy, { keep: 1 }, true, { backend: store })).rejects.toBeInstanceOf(LeaseHeldError);
          counts.concurrentWriters += 2;
        } finally {
          await hook.close();
        }
        figures[target.name] = counts;
      } finally {
        await store.rmtree(root).catch(() => {});
        if (target.name === 'local') await rm(root, { recursive: true, force: true });
        await store.close?.();
      }
    }, 180_000);
  });
}
