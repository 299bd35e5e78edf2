// Logs speak TypeScript: an option is named as the user wrote it (`publishedKeys`),
// never by the reference's Python name (`published_keys`).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { CHECKPOINT_HOOK_OPTION_NAMES, CheckpointHook, ReferenceTrainer } from '../src/index.js';

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

describe('log messages', () => {
  it('name options by their TypeScript names only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-logs-'));
    const logs: string[] = [];
    try {
      for (const resume of [false, true]) {
        let w = new Float32Array(2);
        const acc = [0.2, 0.5, 0.4, 0.7, 0.6, 0.1];
        await new ReferenceTrainer({
          workDir: dir,
          model: {
            trainStep: () => {
              w = w.map((x) => x + 1);
              return 0;
            },
            evaluate: (p) => ({ acc: acc[p.epoch - 1] ?? 0, loss: 1 }),
            stateDict: () => ({ w }),
            loadStateDict: () => {},
            optimizerState: () => ({ m: new Float32Array(2) }),
          },
          checkpointHook: new CheckpointHook({
            interval: 1,
            maxKeepCkpts: 2,
            saveBest: ['acc', 'loss'],
            publishedKeys: ['meta', 'state_dict'],
            backend: new LocalBackend(),
          }),
          itersPerEpoch: 1,
          maxEpochs: resume ? 6 : 3,
          valInterval: 1,
          resume,
          backend: new LocalBackend(),
          logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
        }).train();
      }
      expect(logs.some((m) => m.includes('publishedKeys'))).toBe(true);
      const pythonNames = CHECKPOINT_HOOK_OPTION_NAMES.map(String)
        .filter((n) => /[A-Z]/.test(n))
        .map(snake);
      expect(pythonNames).toContain('published_keys');
      for (const message of logs) {
        for (const name of pythonNames) expect(message, `log names ${name}`).not.toContain(name);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
