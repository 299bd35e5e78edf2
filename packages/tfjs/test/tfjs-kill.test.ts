// Exact resume with real processes: a model.fit child is killed with SIGKILL after a
// seeded epoch (with synchronous and with asynchronous saves), a second child resumes
// from the run's last checkpoint, and its final weights equal an uninterrupted run's.
// In iteration mode the kill comes mid-epoch and the resume continues at the next batch
// (checkpoint.fit), bit-identical to an uninterrupted SGD run.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Run } from '@savepoint/core';
import { describe, expect, it } from 'vitest';
import { buildModel, dataset, TF_STORES, weightsOf } from './tfjs-setup.js';

const CHILD = fileURLToPath(new URL('./fit-child.mjs', import.meta.url));
const EPOCHS = 6;

interface ChildConfig {
  workDir: string;
  backendArgs: Record<string, unknown>;
  epochs: number;
  asyncSave: boolean;
  resume: boolean;
  byBatch?: boolean;
}

/** Runs a fit child; with `kill`, SIGKILLs it `delayMs` after it announces that epoch (or iteration). */
function runChild(
  config: ChildConfig,
  kill?: { afterEpoch?: number; afterIter?: number; delayMs: number },
): Promise<{ killed: boolean; result?: { initialEpoch: number; batchInEpoch: number; weights: number[][] } }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], {
      env: { ...process.env, SAVEPOINT_FIT_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const mark = kill?.afterIter !== undefined ? `iter ${kill.afterIter}\n` : `epoch ${kill?.afterEpoch}\n`;
      if (kill && out.includes(mark) && !child.killed) {
        setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') return resolve({ killed: true });
      if (code !== 0) return reject(new Error(`fit child exited ${code}: ${err}`));
      const line = out.split('\n').find((l) => l.startsWith('weights '));
      resolve({ killed: false, result: line ? JSON.parse(line.slice('weights '.length)) : undefined });
    });
  });
}

const straight = new Map<string, number[][]>();
async function uninterrupted(optimizer: 'momentum' | 'sgd' = 'momentum'): Promise<number[][]> {
  if (!straight.has(optimizer)) {
    const model = buildModel(optimizer);
    const { x, y } = dataset();
    await model.fit(x, y, { epochs: EPOCHS, batchSize: 32, shuffle: false, verbose: 0 });
    straight.set(optimizer, await weightsOf(model));
  }
  return straight.get(optimizer) as number[][];
}

for (const target of TF_STORES) {
  describe.skipIf(!!target.skipReason)(
    `model.fit killed with SIGKILL and resumed on ${target.name}${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`,
    () => {
      it.each([
        [false, 2, 0],
        [true, 3, 5],
      ] as const)(
        'asyncSave %s: killed after epoch %i (+%i ms), resumed: the same weights as an uninterrupted run',
        async (asyncSave, afterEpoch, delayMs) => {
          const { store, dir, args, cleanup } = await target.open();
          try {
            const config: ChildConfig = { workDir: dir, backendArgs: args, epochs: EPOCHS, asyncSave, resume: false };
            const first = await runChild(config, { afterEpoch, delayMs });
            expect(first.killed).toBe(true);
            const pointer = await Run.open(dir, { backend: store }).latest();
            expect(pointer, 'a checkpoint was committed before the kill').toBeDefined();
            const second = await runChild({ ...config, resume: true });
            expect(second.result?.initialEpoch).toBeGreaterThanOrEqual(afterEpoch - 1);
            expect(second.result?.initialEpoch).toBeLessThan(EPOCHS);
            expect(second.result?.weights).toEqual(await uninterrupted());
          } finally {
            await cleanup();
          }
        },
        120_000,
      );

      // 96 samples in batches of 32: 3 batches an epoch; iteration 8 is batch 2 of epoch 3.
      it.skipIf(target.name !== 'local' && target.name !== 's3').each([
        [false, 8, 0],
        [true, 8, 5],
      ] as const)(
        'iteration mode, asyncSave %s: killed after iteration %i (+%i ms), mid-epoch; resumed at the next batch: bit-identical SGD weights',
        async (asyncSave, afterIter, delayMs) => {
          const { store, dir, args, cleanup } = await target.open();
          try {
            const config: ChildConfig = {
              workDir: dir,
              backendArgs: args,
              epochs: EPOCHS,
              asyncSave,
              resume: false,
              byBatch: true,
            };
            const first = await runChild(config, { afterIter, delayMs });
            expect(first.killed).toBe(true);
            const pointer = await Run.open(dir, { backend: store }).latest();
            expect(pointer, 'a checkpoint was committed before the kill').toBeDefined();
            const second = await runChild({ ...config, resume: true });
            if (!asyncSave) {
              // A synchronous save of iteration 8 committed before the child announced it.
              expect(second.result).toMatchObject({ initialEpoch: 2, batchInEpoch: 2 });
            }
            expect(second.result?.weights).toEqual(await uninterrupted('sgd'));
          } finally {
            await cleanup();
          }
        },
        180_000,
      );
    },
  );
}
