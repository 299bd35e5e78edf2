// The lease is renewed by a worker thread, so a synchronous training step that holds
// the main thread far past the lease's TTL (a TensorFlow.js `model.fit` epoch: no
// timer fires, no hook is called) keeps it: another job trying all along never gets
// in. Scaled down: a 3 s lease held through a 7.5 s busy loop. A store instance passed
// in cannot cross threads: that lease is renewed by the main thread's timer, as before.
// The built packages, by name: the worker thread loads core's build and the backend's.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalBackend, registerLocalBackend } from '@savepoint/backend-local';
import {
  CheckpointHook,
  LeaseHeldError,
  type LeaseRecord,
  Run,
  type RunLease,
  type Runner,
  RuntimeInfo,
  registerBackend,
  unregisterBackend,
} from '@savepoint/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startContender } from '../../../test-support/lease-contender.js';
import { takeOverLease } from '../../../test-support/take-over-lease.js';

// 3 s: renewal every second leaves two seconds of slack for a worker thread starved on a loaded 2-core machine.
const TTL_MS = 3_000;
/** The synchronous step: two and a half TTLs, in which a lease renewed only by this thread lapses. */
const BLOCK_MS = 2.5 * TTL_MS;
const LOCAL_MODULE = pathToFileURL(join(import.meta.dirname, '..', '..', 'backend-local', 'dist', 'index.js')).href;

/** Holds this thread as a synchronous training step does: no timer, no I/O callback, no hook call. */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
}

async function leaseIn(dir: string): Promise<LeaseRecord> {
  return JSON.parse(await readFile(join(dir, 'savepoint.lease'), 'utf8'));
}

/** A runner whose loop position the test moves. */
function runner(workDir: string, logs: string[]): { -readonly [K in keyof Runner]: Runner[K] } {
  return {
    workDir,
    epoch: 0,
    iter: 0,
    maxEpochs: 2,
    maxIters: 2,
    runtimeInfo: new RuntimeInfo(),
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(`WARN ${m}`) },
    rank: 0,
    modelState: () => ({ w: new Float32Array(2) }),
  };
}

describe('the lease renewed off the main thread', () => {
  let dir: string;
  const held: RunLease[] = [];
  beforeEach(async () => {
    registerLocalBackend();
    dir = await mkdtemp(join(tmpdir(), 'savepoint-renewer-'));
  });
  afterEach(async () => {
    for (const lease of held.splice(0)) await lease.release().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  async function acquire(run: Run): Promise<RunLease> {
    const lease = await run.acquireLease({ ttlMs: TTL_MS, purpose: 'training' });
    held.push(lease);
    return lease;
  }

  it('a synchronous step of 2.5 TTLs keeps the lease: a job trying every 200 ms all along never takes it', async () => {
    const lease = await acquire(Run.open(dir, { backendArgs: {} }));
    const renewal = await lease.startRenewing();
    const contender = startContender({
      workDir: dir,
      backendModule: LOCAL_MODULE,
      register: 'registerLocalBackend',
      backendArgs: {},
      everyMs: 200,
    });
    try {
      expect((await contender.ready).code, 'the other job is refused while the lease is fresh').toBe('LEASE_HELD');
      const blockedAt = Date.now();
      busy(BLOCK_MS);
      const unblockedAt = Date.now();
      // Read before this thread awaits anything: what the worker left in shared memory.
      expect(lease.lost, 'not lost, without an event loop turn').toBeUndefined();
      const expiresAt = Date.parse(lease.record.expiresAt);
      const attempts = await contender.stop();
      const during = attempts.filter((a) => a.at > blockedAt && a.at < unblockedAt);
      expect(during.length, 'the other job kept trying while this thread was blocked').toBeGreaterThanOrEqual(10);
      expect(
        attempts.filter((a) => a.took),
        'the other job never took the lease',
      ).toEqual([]);
      expect(expiresAt, 'renewed while this thread was blocked').toBeGreaterThan(unblockedAt);
      expect(new Set(attempts.map((a) => a.code))).toEqual(new Set(['LEASE_HELD']));
      const now = await leaseIn(dir);
      expect(now).toMatchObject({ owner: lease.record.owner, generation: lease.generation });
      expect(lease.generation).toBe(1);
      expect(lease.version, 'the version the worker wrote is the one in the store').toBe(
        (await new LocalBackend().stat(join(dir, 'savepoint.lease'))).version,
      );
      expect(renewal).toEqual({ thread: 'worker' });
      await lease.renewIfDue();
      await lease.renew();
      await lease.release();
      await expect(readFile(join(dir, 'savepoint.lease')), 'released by a conditional delete').rejects.toThrow(/ENOENT/);
    } finally {
      await contender.stop();
    }
  }, 40_000);

  it('a take-over found by the worker makes lost a LeaseHeldError at once, with no await', async () => {
    const lease = await acquire(Run.open(dir, { backendArgs: {} }));
    expect(await lease.startRenewing()).toEqual({ thread: 'worker' });
    const mine = await leaseIn(dir);
    const intruder = { ...mine, owner: 'intruder', pid: 1, generation: mine.generation + 1 };
    await takeOverLease(join(dir, 'savepoint.lease'), intruder);
    // Blocked from here: only the worker can notice, and only shared memory can say so.
    const end = Date.now() + 3 * TTL_MS;
    while (!lease.lost && Date.now() < end) {}
    const lost = lease.lost;
    expect(lost).toBeInstanceOf(LeaseHeldError);
    expect(String(lost?.message)).toMatch(/this job's lease \(generation 1\) was taken over by training \(owner intruder/);
    expect((lost as LeaseHeldError).holder).toMatchObject({ owner: 'intruder', generation: 2 });
    await expect(lease.renewIfDue()).rejects.toBe(lost);
    await expect(lease.renew()).rejects.toBe(lost);
    await lease.release();
    expect(await leaseIn(dir), "the intruder's lease is left alone").toMatchObject({ owner: 'intruder', generation: 2 });
  });

  it('through the hook: beforeTrain hands the lease to the worker, and an epoch of 2.5 TTLs keeps it', async () => {
    const logs: string[] = [];
    const hook = new CheckpointHook({ interval: 1, leaseTtlMs: TTL_MS, backendArgs: {} });
    const t = runner(dir, logs);
    try {
      await hook.beforeTrain(t);
      const first = await leaseIn(dir);
      busy(BLOCK_MS);
      const after = await leaseIn(dir);
      expect(after).toMatchObject({ owner: first.owner, generation: first.generation });
      expect(Date.parse(after.expiresAt), 'renewed during the epoch').toBeGreaterThan(Date.now());
      t.epoch = 1;
      t.iter = 1;
      await hook.afterTrainEpoch(t);
      expect(logs.filter((m) => m.includes('renewed on the main thread'))).toEqual([]);
    } finally {
      await hook.close();
    }
    await expect(readFile(join(dir, 'savepoint.lease')), 'released by close()').rejects.toThrow(/ENOENT/);
  }, 40_000);

  it('a store instance passed in stays on the main thread and is renewed by its timer, saying why', async () => {
    const lease = await acquire(Run.open(dir, { backend: new LocalBackend() }));
    const renewal = await lease.startRenewing();
    expect(renewal).toMatchObject({ thread: 'main', why: expect.stringMatching(/instance/) });
    const first = Date.parse((await leaseIn(dir)).expiresAt);
    // No hook call, no renew(): only the timer moves the expiry.
    await expect.poll(async () => Date.parse((await leaseIn(dir)).expiresAt), { timeout: 3 * TTL_MS }).toBeGreaterThan(first);
    // A renewal may land between the two reads: the version this thread knows catches up with the store's.
    await expect
      .poll(async () => lease.version === (await new LocalBackend().stat(join(dir, 'savepoint.lease'))).version, {
        timeout: 3 * TTL_MS,
      })
      .toBe(true);

    const logs: string[] = [];
    const hook = new CheckpointHook({ interval: 1, leaseTtlMs: TTL_MS, backend: new LocalBackend() });
    const other = await mkdtemp(join(tmpdir(), 'savepoint-renewer-'));
    try {
      await hook.beforeTrain(runner(other, logs));
      expect(logs.find((m) => m.includes('renewed on the main thread'))).toMatch(/instance.*longer than leaseTtlMs loses it/);
    } finally {
      await hook.close();
      await rm(other, { recursive: true, force: true });
    }
  }, 20_000);

  it('a backend registered without a source module stays on the main thread', async () => {
    registerBackend('third-party', { schemes: [], create: () => new LocalBackend() });
    try {
      const lease = await acquire(Run.open(dir, { backendArgs: { backend: 'third-party' } }));
      expect(await lease.startRenewing()).toMatchObject({ thread: 'main', why: expect.stringMatching(/without a source/) });
      const first = Date.parse((await leaseIn(dir)).expiresAt);
      await expect.poll(async () => Date.parse((await leaseIn(dir)).expiresAt), { timeout: 3 * TTL_MS }).toBeGreaterThan(first);
    } finally {
      unregisterBackend('third-party');
    }
  }, 20_000);

  it('the worker never keeps a process alive: a job that ends holding its lease exits', async () => {
    const core = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;
    const script = `const { Run } = await import(${JSON.stringify(core)});
(await import(${JSON.stringify(LOCAL_MODULE)})).registerLocalBackend();
const lease = await Run.open(${JSON.stringify(dir)}, { backendArgs: {} }).acquireLease({ ttlMs: 60000, purpose: 'training' });
console.log(JSON.stringify(await lease.startRenewing()));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ thread: 'worker' });
    expect((await leaseIn(dir)).purpose, 'left to expire, as by a crash').toBe('training');
  }, 20_000);
});
