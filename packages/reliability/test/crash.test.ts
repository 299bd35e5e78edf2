// Crash tests with real processes: a child trains against each store and is
// killed with SIGKILL at seeded moments (during uploads, pointer moves and
// deletes). After every kill: the pointer names a complete checkpoint that loads,
// a complete regular checkpoint exists, and resuming brings rotation back down to
// maxKeepCkpts with one best, whatever the killed save left behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBackend } from '@savepoint/backend-local';
import { ToyModel } from '@savepoint/backend-test-suite';
import { CheckpointHook, checkpointShape, loadCheckpoint, ReferenceTrainer, Run, type StorageBackend } from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { CRASH_MAX_KEEP, type CrashConfig, crashHookOptions, crashMetrics, recordFigures, seededRandom } from '../src/index.js';
import { NETWORK_STORES_BOTH_S3 } from './stores.js';

const CHILD = fileURLToPath(new URL('../dist/crash-child.js', import.meta.url));
const KILLS = 20;
const EPOCHS = 6;

function describeWrite(op: string, path: string): string {
  if (path === 'save-worker') return 'a save point on the save worker';
  if (path.endsWith('/savepoint.lease')) return 'lease write';
  if (op === 'remove' || op === 'rmtree') return `delete (${op})`;
  if (path.endsWith('/last_checkpoint')) return 'pointer move';
  if (path.endsWith('/savepoint-manifest.json')) return 'manifest write';
  if (/\/shard-[^/]+$/.test(path)) return 'shard upload';
  return 'checkpoint upload';
}

/** Runs the child and SIGKILLs it `delayMs` after it announces store write number `killAt`. */
function runChild(
  config: CrashConfig,
  killAt: number,
  delayMs: number,
): Promise<{ killed: boolean; interrupted: string | undefined }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CHILD], {
      env: { ...process.env, SAVEPOINT_CRASH_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let interrupted: string | undefined;
    let buffer = '';
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += d));
    child.stdout?.on('data', (data) => {
      buffer += data;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const match = /^op (\d+) (\w+) (.*)$/.exec(line);
        if (match && Number(match[1]) === killAt && !interrupted) {
          interrupted = describeWrite(match[2] as string, match[3] as string);
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
        newline = buffer.indexOf('\n');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ killed: true, interrupted });
      else if (code === 0) resolve({ killed: false, interrupted });
      else reject(new Error(`crash child exited ${code}: ${stderr}`));
    });
  });
}

async function regularCheckpoints(store: StorageBackend, dir: string) {
  const complete: string[] = [];
  for await (const entry of store.list(dir)) {
    if (!/^epoch_\d+\.safetensors$/.test(entry.name)) continue;
    const shape = await checkpointShape(store, entry.path);
    if (shape === 'file' || shape === 'directory') complete.push(entry.name);
  }
  return complete;
}

async function bests(store: StorageBackend, dir: string) {
  const out: string[] = [];
  for await (const entry of store.list(dir)) if (entry.name.startsWith('best_acc_')) out.push(entry.name);
  return out;
}

const figures: Record<string, unknown> = {};
afterAll(() => recordFigures('crash', { stores: figures }));

interface CrashTarget {
  name: string;
  skipReason: string | undefined;
  setup(): Promise<{ root: string; store: StorageBackend; args: Record<string, unknown>; cleanup?: () => Promise<void> }>;
}

const targets: CrashTarget[] = [
  {
    name: 'local',
    skipReason: undefined,
    async setup() {
      const root = await mkdtemp(join(tmpdir(), 'savepoint-crash-'));
      return { root, store: new LocalBackend(), args: {}, cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  },
  ...NETWORK_STORES_BOTH_S3.map((net) => ({
    name: net.name,
    skipReason: net.skipReason,
    async setup() {
      await net.prepare();
      const args = net.args(net.origin as string, { retries: 3, minDelayMs: 5, maxDelayMs: 50 });
      return { root: `${net.root}/crash-${Date.now()}`, store: net.make(net.origin as string), args };
    },
  })),
];

for (const target of targets) {
  describe.skipIf(!!target.skipReason)(
    `SIGKILL crash tests on ${target.name}${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`,
    () => {
      it(`${KILLS} seeded kills: the pointer always names a loadable checkpoint and rotation recovers`, async () => {
        const { root, store, args, cleanup } = await target.setup();
        const random = seededRandom(Number(process.env.SAVEPOINT_CRASH_SEED ?? 0xc0ffee));
        const interrupted: Record<string, number> = {};
        let kills = 0;
        let asyncKills = 0;
        let recoveries = 0;
        try {
          for (let i = 0; i < KILLS; i++) {
            // One run in three of each layout: a file, (ours) incremental objects, a folder of shards.
            const layout = (['file', 'incremental', 'directory'] as const)[i % 3] as CrashConfig['layout'];
            // Every other run saves in the background: the same guarantees must hold in both modes.
            const asyncSave = i % 2 === 1;
            // One async run in two saves on the save worker thread (stores from backendArgs):
            // it is killed a few milliseconds after a save point is handed over.
            const saveWorker = asyncSave && i % 4 === 3;
            const workDir = store.joinPath(root, `run${i}`);
            const config: CrashConfig = { workDir, backendArgs: args, epochs: EPOCHS, layout, asyncSave, saveWorker };
            const killAt = Math.floor(random() * (saveWorker ? 2 * EPOCHS : layout === 'file' ? 28 : 45));
            const outcome = await runChild(config, killAt, Math.floor(random() * (saveWorker ? 40 : 12)));
            if (outcome.killed) {
              kills++;
              if (asyncSave) asyncKills++;
              interrupted[outcome.interrupted ?? 'before any write'] =
                (interrupted[outcome.interrupted ?? 'before any write'] ?? 0) + 1;
            }
            const context = `kill ${i} (${layout}, ${saveWorker ? 'save worker' : asyncSave ? 'async' : 'sync'}, at write ${killAt}, ${outcome.interrupted})`;
            const pointer = await Run.open(workDir, { backend: store }).latest();
            if (pointer !== undefined) {
              const checkpoint = await loadCheckpoint(store, pointer);
              expect(checkpoint.state_dict, context).toBeDefined();
              expect((await regularCheckpoints(store, workDir)).length, context).toBeGreaterThanOrEqual(1);
            }
            // (ours) Incremental: no checkpoint the kill left names a missing object.
            if (layout === 'incremental') {
              expect((await Run.open(workDir, { backend: store }).objectUsage()).missing, context).toEqual([]);
            }
            // Resume in this process on a healthy store and train two more epochs.
            const trainer = new ReferenceTrainer({
              workDir,
              model: new ToyModel(crashMetrics),
              checkpointHook: new CheckpointHook({ ...crashHookOptions(config), backend: store }),
              itersPerEpoch: 1,
              maxEpochs: EPOCHS + 2,
              valInterval: 1,
              resume: true,
              backend: store,
            });
            await trainer.train();
            expect(await regularCheckpoints(store, workDir), context).toEqual(
              [`epoch_${EPOCHS + 1}.safetensors`, `epoch_${EPOCHS + 2}.safetensors`].slice(-CRASH_MAX_KEEP),
            );
            expect(await bests(store, workDir), context).toHaveLength(1);
            const last = await Run.open(workDir, { backend: store }).latest();
            expect(last, context).toBe(store.joinPath(workDir, `epoch_${EPOCHS + 2}.safetensors`));
            await loadCheckpoint(store, last as string);
            // (ours) What the kill left unreferenced was collected by the resumed run.
            if (layout === 'incremental') {
              const usage = await Run.open(workDir, { backend: store }).objectUsage();
              expect(usage.missing, context).toEqual([]);
              expect(usage.unreferenced, context).toEqual([]);
            }
            recoveries++;
            await store.rmtree(workDir);
          }
          expect(kills).toBeGreaterThanOrEqual(KILLS - 3);
          expect(asyncKills).toBeGreaterThanOrEqual(KILLS / 2 - 3);
          figures[target.name] = { runs: KILLS, kills, asyncKills, recoveries, interruptedDuring: interrupted };
        } finally {
          await store.rmtree(root).catch(() => {});
          await cleanup?.();
        }
      }, 900_000);
    },
  );
}
