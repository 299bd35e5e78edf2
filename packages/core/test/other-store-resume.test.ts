// With outDir on another store than the work dir, the pointer stays in the work dir
// and resume loads the checkpoint from the store it names.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The package by name (its build), like the backends imported here: one registry for all.
import { CheckpointHook, ReferenceTrainer, registerBackend, unregisterBackend } from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../examples/memory-backend/src/index.js';
import { registerLocalBackend } from '../../backend-local/src/index.js';

const shared = new MemoryBackend();
registerBackend('memory', { schemes: ['mem'], create: () => shared }, { replace: true });
registerLocalBackend();
afterAll(() => unregisterBackend('memory'));

function run(workDir: string, maxEpochs: number, resume: boolean) {
  let w = new Float32Array(1);
  const model = {
    trainStep: () => {
      w = w.map((x) => x + 1);
      return 0;
    },
    stateDict: () => ({ w }),
    loadStateDict: (s: Record<string, unknown>) => {
      w = new Float32Array(s.w as Float32Array);
    },
  };
  const trainer = new ReferenceTrainer({
    workDir,
    model,
    checkpointHook: new CheckpointHook({ interval: 1, outDir: 'mem://bucket/out' }),
    itersPerEpoch: 1,
    maxEpochs,
    resume,
  });
  return { trainer, weight: () => w[0] };
}

describe('outDir on another store', () => {
  it('keeps the pointer in the work dir and resumes from the checkpoint store', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'savepoint-other-'));
    try {
      await run(workDir, 2, false).trainer.train();
      const base = workDir.split('/').pop();
      // The first line names the checkpoint; the second is the fencing generation of the job that wrote it.
      // (ours) The third line is the checkpoint's seal (format/seal.ts).
      expect(await readFile(join(workDir, 'last_checkpoint'), 'utf8')).toMatch(
        new RegExp(`^mem://bucket/out/${base}/epoch_2\\.safetensors\ngeneration: 1\nseal: [0-9a-f]{64}$`),
      );
      const second = run(workDir, 3, true);
      await second.trainer.train();
      expect(second.trainer.resumedFrom).toBe(`mem://bucket/out/${base}/epoch_2.safetensors`);
      expect(second.weight()).toBe(3);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
