// A paused writer must not destroy the run that took it over. A real job (a child
// process training with synchronous steps) stops itself with SIGSTOP at a chosen
// moment: just before it moves the pointer, just before it deletes a rotated
// checkpoint, or in the middle of a step. Its lease expires; another job takes the run
// over and trains on; then the first is continued with SIGCONT. Whatever it was about
// to do, it must stop with a lease error and leave every object of the run as the
// second job left it: the pointer, every checkpoint, every best. A third job then
// resumes from the second job's newest checkpoint.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBackend } from '@savepoint/backend-local';
import { ToyModel } from '@savepoint/backend-test-suite';
import { type BackendArgs, CheckpointHook, ReferenceTrainer, type StorageBackend } from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { serversRequired } from '../../../test-support/servers.js';
import { PAUSED_HOOK, type PausedConfig, pausedMetrics, recordFigures } from '../src/index.js';
import { NETWORK_STORES } from './stores.js';

const CHILD = fileURLToPath(new URL('../dist/paused-child.js', import.meta.url));
const LEASE_TTL_MS = 1500;
const STEP_MS = 60;
/** The paused job stops at its third save point; the one that takes over trains to this epoch. */
const PAUSE_AT = 3;
const TAKEOVER_EPOCHS = 8;

interface Scenario {
  name: string;
  asyncSave: boolean;
  storesFromArgs?: boolean;
  pause: PausedConfig['pause'];
}

const SCENARIOS: Scenario[] = [
  {
    name: 'just before it moves the pointer',
    asyncSave: false,
    pause: { op: 'put', pathEnd: '/last_checkpoint', occurrence: PAUSE_AT - 1 },
  },
  {
    name: 'just before it moves the pointer, with asyncSave',
    asyncSave: true,
    pause: { op: 'put', pathEnd: '/last_checkpoint', occurrence: PAUSE_AT - 1 },
  },
  {
    name: 'just before it deletes a rotated checkpoint',
    asyncSave: false,
    pause: { op: 'remove', pathEnd: '.safetensors', occurrence: 2 },
  },
  { name: 'in the middle of a synchronous step', asyncSave: false, pause: { epoch: PAUSE_AT } },
  {
    name: 'in the middle of a synchronous step, with asyncSave on the save worker thread',
    asyncSave: true,
    storesFromArgs: true,
    pause: { epoch: PAUSE_AT },
  },
];

/** Process state from /proc (Linux): 'T' once SIGSTOP has taken effect. */
function processState(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Child {
  process: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startChild(config: PausedConfig): Child {
  const child = spawn(process.execPath, [CHILD], {
    env: { ...process.env, SAVEPOINT_PAUSED_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Every object under `dir` and the SHA-256 of its bytes: what "changes nothing" is checked against. */
async function snapshot(store: StorageBackend, dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (at: string): Promise<void> => {
    for await (const entry of store.list(at)) {
      const path = store.joinPath(at, entry.name);
      if (entry.type === 'dir') await walk(path);
      else
        out[path.slice(dir.length)] = createHash('sha256')
          .update(await store.get(path))
          .digest('hex');
    }
  };
  await walk(dir);
  // The lease is the successor's, released at its end; it is not part of the run's data.
  delete out['/savepoint.lease'];
  return out;
}

async function train(store: StorageBackend, dir: string, epochs: number) {
  const model = new ToyModel(pausedMetrics);
  const trainer = new ReferenceTrainer({
    workDir: dir,
    model,
    checkpointHook: new CheckpointHook({ ...PAUSED_HOOK, leaseTtlMs: LEASE_TTL_MS, backend: store }),
    itersPerEpoch: 1,
    maxEpochs: epochs,
    valInterval: 1,
    resume: true,
    backend: store,
  });
  await trainer.train();
  return trainer;
}

/** Waits until the lease in `dir` has expired by this machine's clock (the paused holder can no longer renew it). */
async function leaseExpired(store: StorageBackend, dir: string): Promise<void> {
  const lease = JSON.parse(new TextDecoder().decode(await store.get(store.joinPath(dir, 'savepoint.lease')))) as {
    expiresAt: string;
  };
  const left = Date.parse(lease.expiresAt) - Date.now();
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

const figures: Record<string, { scenarios: number; pausedWriterStopped: number; runUnchanged: number }> = {};
afterAll(() => recordFigures('paused-writer', { stores: figures }));

const TARGETS: Array<{
  name: string;
  skipReason: string | undefined;
  setup: () => Promise<{ store: StorageBackend; root: string; args: BackendArgs; cleanup: () => Promise<void> }>;
}> = [
  {
    name: 'local',
    skipReason: undefined,
    async setup() {
      const root = await mkdtemp(join(tmpdir(), 'savepoint-paused-'));
      return { store: new LocalBackend(), root, args: {}, cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  },
  ...NETWORK_STORES.map((s) => ({
    name: s.cloud,
    skipReason: s.skipReason,
    async setup() {
      await s.prepare();
      const origin = s.origin as string;
      const store = s.make(origin);
      const root = store.joinPath(s.root, `paused-${Date.now().toString(36)}`);
      return {
        store,
        root,
        args: s.args(origin) as BackendArgs,
        cleanup: async () => {
          await store.rmtree(root).catch(() => {});
          await store.close?.();
        },
      };
    },
  })),
];

for (const target of TARGETS) {
  describe.skipIf(target.skipReason !== undefined && !serversRequired())(`a paused writer on ${target.name}`, () => {
    it.each(SCENARIOS)(
      'continued after a take-over, a job paused $name stops with a lease error and changes nothing',
      async (scenario) => {
        if (target.skipReason) throw new Error(target.skipReason);
        const { store, root, args, cleanup } = await target.setup();
        figures[target.name] ??= { scenarios: 0, pausedWriterStopped: 0, runUnchanged: 0 };
        const row = figures[target.name] as { scenarios: number; pausedWriterStopped: number; runUnchanged: number };
        row.scenarios++;
        const dir = store.joinPath(root, scenario.name.replace(/\W+/g, '-'));
        const paused = startChild({
          workDir: dir,
          backendArgs: args,
          epochs: 20,
          leaseTtlMs: LEASE_TTL_MS,
          stepMs: STEP_MS,
          asyncSave: scenario.asyncSave,
          storesFromArgs: scenario.storesFromArgs,
          pause: scenario.pause,
        });
        try {
          await until('the job to pause', () => paused.stdout().includes('paused') || paused.process.exitCode !== null);
          expect(paused.stdout(), paused.stderr()).toContain('paused');
          await until('SIGSTOP to take effect', () => processState(paused.process.pid as number) === 'T');
          await leaseExpired(store, dir);

          // The successor takes the run over and trains on, past the paused job's steps.
          const successor = await train(store, dir, TAKEOVER_EPOCHS);
          expect(successor.resumedFrom).toBeDefined();
          const before = await snapshot(store, dir);
          const pointerBefore = before['/last_checkpoint'];
          expect(Object.keys(before)).toContain(`/epoch_${TAKEOVER_EPOCHS}.safetensors`);

          paused.process.kill('SIGCONT');
          const code = await paused.exited;
          expect(code, `the paused job must fail, not finish: ${paused.stdout()}`).not.toBe(0);
          expect(paused.stderr()).toMatch(/LeaseHeldError: .*(taken over|was moved by)/);
          row.pausedWriterStopped++;

          const after = await snapshot(store, dir);
          expect(after['/last_checkpoint'], 'the pointer is where the successor left it').toBe(pointerBefore);
          expect(after, 'no object of the run changed, appeared or went').toEqual(before);
          row.runUnchanged++;

          // And the run goes on from the successor's newest checkpoint.
          const next = await train(store, dir, TAKEOVER_EPOCHS + 1);
          expect(next.resumedFrom).toBe(store.joinPath(dir, `epoch_${TAKEOVER_EPOCHS}.safetensors`));
        } finally {
          if (paused.process.exitCode === null) paused.process.kill('SIGKILL');
          await cleanup();
        }
      },
      60_000,
    );
  });
}
