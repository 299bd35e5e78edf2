// Exact resume with real processes: a model.fit child is killed with SIGKILL after a
// seeded epoch (with synchronous and with asynchronous saves), a second child resumes
// from the run's last checkpoint, and its final weights equal an uninterrupted run's.
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
}

/** Runs a fit child; with `killAfterEpoch`, SIGKILLs it `delayMs` after it announces that epoch. */
function runChild(
  config: ChildConfig,
  kill?: { afterEpoch: number; delayMs: number },
): Promise<{ killed: boolean; result?: { initialEpoch: number; weights: number[][] } }> {
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
      if (kill && out.includes(`epoch ${kill.afterEpoch}\n`) && !child.killed) {
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

let straight: number[][] | undefined;
async function uninterrupted(): Promise<number[][]> {
  if (!straight) {
    const model = buildModel();
    const { x, y } = dataset();
    await model.fit(x, y, { epochs: EPOCHS, batchSize: 32, shuffle: false, verbose: 0 });
    straight = await weightsOf(model);
  }
  return straight;
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
    },
  );
}
