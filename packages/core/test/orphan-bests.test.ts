// (ours) A best written just before a crash, and named by no runtime info, is removed
// on resume, so one best per metric remains: for named metrics and for 'auto'.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { CheckpointHook, type CheckpointHookOptions, ReferenceTrainer } from '../src/index.js';

function trainer(workDir: string, hook: CheckpointHookOptions, maxEpochs: number, resume: boolean) {
  let w = new Float32Array(2);
  const acc = [0.1, 0.5, 0.3, 0.2, 0.2, 0.2];
  return new ReferenceTrainer({
    workDir,
    model: {
      trainStep: () => {
        w = w.map((x) => x + 1);
        return 0;
      },
      evaluate: (p) => ({ acc: acc[p.epoch - 1] ?? 0, loss: 1 }),
      stateDict: () => ({ w }),
      loadStateDict: (s) => {
        w = new Float32Array(s.w as Float32Array);
      },
    },
    checkpointHook: new CheckpointHook({ interval: 1, ...hook, backend: new LocalBackend() }),
    itersPerEpoch: 1,
    maxEpochs,
    valInterval: 1,
    resume,
    backend: new LocalBackend(),
  });
}

describe.each([['acc'], ['auto']])('orphaned bests on resume (saveBest %s)', (saveBest) => {
  it('are removed, leaving the one the runtime info names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-orphan-'));
    try {
      await trainer(dir, { saveBest }, 3, false).train();
      // What a crash between writing a new best and re-saving the regular checkpoint leaves.
      await writeFile(join(dir, 'best_acc_epoch_3.safetensors'), 'orphan');
      await trainer(dir, { saveBest }, 5, true).train();
      expect((await readdir(dir)).filter((n) => n.startsWith('best_'))).toEqual(['best_acc_epoch_2.safetensors']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
