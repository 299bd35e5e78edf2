// Only the main process writes, deletes, moves the pointer and publishes.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { CheckpointHook, ReferenceTrainer } from '../src/index.js';

const model = () => {
  let w = new Float32Array(2);
  return {
    trainStep: () => {
      w = w.map((x) => x + 1);
      return 0;
    },
    evaluate: () => ({ acc: Math.random() }),
    stateDict: () => ({ w }),
    loadStateDict() {},
  };
};

describe('ranks', () => {
  it('rank 1 keeps the same bookkeeping as rank 0 but writes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-rank-'));
    try {
      const options = { interval: 1, maxKeepCkpts: 2, saveBest: 'acc', publishedKeys: ['meta'], backend: new LocalBackend() };
      const worker = new ReferenceTrainer({
        workDir: join(dir, 'worker'),
        model: model(),
        checkpointHook: new CheckpointHook(options),
        itersPerEpoch: 1,
        maxEpochs: 4,
        valInterval: 1,
        rank: 1,
      });
      await worker.train();
      await expect(readdir(join(dir, 'worker'))).rejects.toThrow();
      expect(worker.runtimeInfo.get('keep_ckpt_ids')).toEqual([3, 4]);
      const main = new ReferenceTrainer({
        workDir: join(dir, 'main'),
        model: model(),
        checkpointHook: new CheckpointHook(options),
        itersPerEpoch: 1,
        maxEpochs: 4,
        valInterval: 1,
        rank: 0,
      });
      await main.train();
      expect((await readdir(join(dir, 'main'))).filter((n) => /^epoch_\d\.safetensors$/.test(n)).sort()).toEqual([
        'epoch_3.safetensors',
        'epoch_4.safetensors',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
