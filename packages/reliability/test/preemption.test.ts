// saveOnSignals with real processes: a child trains (synchronous steps, as a
// TensorFlow.js batch holds the thread) on each store, sync and with the save worker;
// the parent sends SIGTERM mid-run. The child must save where training stood, commit the
// pointer, release the lease and exit 143 (128 + SIGTERM); the newest checkpoint holds
// exactly the state at that position. With a store that hangs after the signal it gives
// up after preemptionGraceMs and the previous checkpoint and pointer are untouched.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registerLocalBackend } from '@savepoint/backend-local';
import { loadCheckpoint, Run, type StorageBackend } from '@savepoint/core';
import { describe, expect, it } from 'vitest';
import { PREEMPT_INTERVAL, type PreemptConfig } from '../src/index.js';
import { NETWORK_STORES_BOTH_S3, type StoreTarget, storeTargets } from './stores.js';

const CHILD = fileURLToPath(new URL('../dist/preempt-child.js', import.meta.url));
/** The child is signalled once it has trained this many steps past its first regular save. */
const SIGNAL_AT = PREEMPT_INTERVAL + 2;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The step printed last (training had completed it) and the one printed when the signal was sent. */
  lastStep: number;
  signalledAt: number;
  log: string[];
  stderr: string;
}

function runChild(config: PreemptConfig): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], {
      env: { ...process.env, SAVEPOINT_PREEMPT_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffer = '';
    let stderr = '';
    let lastStep = -1;
    let signalledAt = -1;
    const log: string[] = [];
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (data) => {
      buffer += data;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const step = /^step (\d+)$/.exec(line);
        if (!step) {
          log.push(line);
          continue;
        }
        lastStep = Number(step[1]);
        if (lastStep >= SIGNAL_AT && signalledAt < 0) {
          signalledAt = lastStep;
          child.kill('SIGTERM');
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, lastStep, signalledAt, log, stderr }));
  });
}

/** The state the toy model holds after `steps` steps (its weights move by a fixed amount each step). */
const weightsAfter = (steps: number) => Array.from({ length: 4 }, (_, i) => steps * (i + 1) * 0.5);

async function leaseHeld(store: StorageBackend, workDir: string): Promise<boolean> {
  return store.exists(store.joinPath(workDir, 'savepoint.lease'));
}

const argsFor = (name: string) => {
  if (name === 'local') return {};
  // By store name, not cloud: the two S3 servers share a cloud.
  const network = NETWORK_STORES_BOTH_S3.find((s) => s.name === name);
  return network?.args(network.origin as string) ?? {};
};

describe('SIGTERM to a training child with saveOnSignals', () => {
  registerLocalBackend();
  for (const target of storeTargets('preempt')) {
    const suite = target.skipReason ? describe.skip : describe;
    suite(`${target.name}${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`, () => {
      for (const asyncSave of [false, true]) {
        it(`${asyncSave ? 'async (save worker)' : 'sync'}: saves the position at the signal, commits the pointer, releases the lease, exits 143`, async () => {
          const { store, root } = await target.open();
          const workDir = store.joinPath(root, `run-${asyncSave ? 'async' : 'sync'}`);
          const outcome = await runChild({ workDir, backendArgs: argsFor(target.name), asyncSave, stepMs: 20 });
          expect({ code: outcome.code, signal: outcome.signal }, outcome.stderr).toEqual({ code: 143, signal: null });
          // Saved at the next step boundary: where training stood (between steps), or after the step running then.
          const run = Run.open(workDir, { backend: store });
          const pointer = (await run.latest()) as string;
          const ckpt = await loadCheckpoint(store, pointer);
          const meta = ckpt.meta as { epoch: number; saved_on?: string };
          expect(meta.saved_on).toBe('signal');
          expect(meta.epoch).toBeGreaterThanOrEqual(outcome.signalledAt);
          expect([outcome.lastStep, outcome.lastStep + 1]).toContain(meta.epoch);
          expect(pointer).toBe(store.joinPath(workDir, `epoch_${meta.epoch}.safetensors`));
          expect([...((ckpt.state_dict as Record<string, Float32Array>)['fc.weight'] ?? [])]).toEqual(weightsAfter(meta.epoch));
          expect(await leaseHeld(store, workDir)).toBe(false);
          expect(outcome.log.some((l) => /Checkpoint committed and lease released after SIGTERM/.test(l))).toBe(true);
          await run.close();
        }, 90_000);
      }
    });
  }

  it('past preemptionGraceMs (a store that hangs after the signal) gives up: the previous checkpoint and the pointer stay (local disk)', async () => {
    const local = storeTargets('preempt-grace')[0] as StoreTarget;
    const { store, root } = await local.open();
    const outcome = await runChild({
      workDir: root,
      backendArgs: {},
      asyncSave: false,
      stepMs: 20,
      graceMs: 300,
      hangAfterSignal: true,
    });
    expect(outcome.code).toBe(143);
    expect(outcome.log.some((l) => /did not commit within preemptionGraceMs: giving up/.test(l))).toBe(true);
    const pointer = (await Run.open(root, { backend: store }).latest()) as string;
    // The last regular save before the signal (every PREEMPT_INTERVAL steps), whole.
    const before = Math.floor(outcome.signalledAt / PREEMPT_INTERVAL) * PREEMPT_INTERVAL;
    expect(pointer).toBe(store.joinPath(root, `epoch_${before}.safetensors`));
    const ckpt = await loadCheckpoint(store, pointer);
    expect([...((ckpt.state_dict as Record<string, Float32Array>)['fc.weight'] ?? [])]).toEqual(weightsAfter(before));
  }, 60_000);
});
