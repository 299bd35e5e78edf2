// When a lease may be taken over before it expires, and what a job is told when it
// may not. A holder is judged dead only where that is certain: this kernel boot,
// this PID namespace, and no process with its pid and start time. Two trainers with
// one hostname in different PID namespaces (hostNetwork pods) each see the other's
// lease as live until it expires.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseHeldError } from '@savepoint/core';
import { processIdentity, processState } from '@savepoint/core/kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { RunLease } from '../src/run/index.js';

const store = new LocalBackend();
const me = processIdentity();
const hasProc = !!me.bootId && !!me.pidNamespace;

/** A pid that no process has right now: a child that has exited. */
function exitedPid(): number {
  return spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' }).pid as number;
}

function lease(over: Record<string, unknown>): string {
  return JSON.stringify({
    format: 'savepoint.lease',
    owner: 'someone-else',
    host: hostname(),
    pid: 1,
    purpose: 'training',
    acquiredAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    generation: 5,
    ...over,
  });
}

describe('lease liveness and messages', () => {
  let root: string;
  let path: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'savepoint-liveness-'));
    path = join(root, 'savepoint.lease');
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const acquire = (extra: { minGeneration?: number } = {}) =>
    RunLease.acquire(store, path, { ttlMs: 30_000, purpose: 'training', ...extra });

  it.runIf(hasProc)(
    'this process is alive; an exited pid, or a reused one, is dead; other namespaces and boots are unknown',
    () => {
      expect(processState(me)).toBe('alive');
      expect(processState({ ...me, pid: exitedPid() })).toBe('dead');
      expect(processState({ ...me, startTime: '1' }), 'our pid, another start time').toBe('dead');
      expect(processState({ ...me, pidNamespace: '1' })).toBe('unknown');
      expect(processState({ ...me, bootId: 'another-boot' })).toBe('unknown');
      expect(processState({ host: me.host, pid: me.pid }), 'host and pid alone').toBe('unknown');
    },
  );

  it('host and pid alone never decide: a lease naming this host and a gone pid is not taken over', async () => {
    await writeFile(path, lease({ pid: exitedPid() }));
    const error = await acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseHeldError);
    expect((error as LeaseHeldError).holder).toMatchObject({ owner: 'someone-else' });
  });

  it('the same hostname and pid in another PID namespace is someone else: not taken over', async () => {
    await writeFile(path, lease({ pid: process.pid, process: { ...me, pidNamespace: '4026531999' } }));
    await expect(acquire()).rejects.toBeInstanceOf(LeaseHeldError);
  });

  it.runIf(hasProc)(
    'a holder provably gone (this boot and namespace, pid exited) is taken over at once, one generation up',
    async () => {
      const pid = exitedPid();
      await writeFile(path, lease({ pid, process: { ...me, pid } }));
      const taken = await acquire();
      expect(taken.generation).toBe(6);
      expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ owner: taken.record.owner, generation: 6 });
      await taken.release();
      expect(await readdir(root), 'no claim files left behind').toEqual([]);
    },
  );

  it('the message says who holds the lease, until when, and which file to delete', async () => {
    await writeFile(path, lease({ host: 'trainer-3', pid: 4242 }));
    const message = String(((await acquire().catch((e: unknown) => e)) as Error).message);
    expect(message).toMatch(/held by training \(owner someone-else, host trainer-3, pid 4242, generation 5\) until \d{4}-/);
    expect(message).toContain(`delete ${path}`);
    expect(message).not.toMatch(/taken over automatically/);
  });

  it('a lease that will not expire (year 9999) says so, and what to delete', async () => {
    await writeFile(path, lease({ expiresAt: '9999-12-31T00:00:00.000Z' }));
    const message = String(((await acquire().catch((e: unknown) => e)) as Error).message);
    expect(message).toContain('will not expire on its own');
    expect(message).toContain(`If no job is writing this run, delete ${path}`);
  });

  it('generations count take-overs, never go below minGeneration, and an old lease without one counts as 0', async () => {
    await writeFile(path, lease({ expiresAt: new Date(Date.now() - 1).toISOString(), generation: undefined }));
    const first = await acquire();
    expect(first.generation).toBe(1);
    await first.release();
    const fresh = await acquire({ minGeneration: 9 });
    expect(fresh.generation, 'a new lease starts at the floor the run gives').toBe(9);
    await fresh.release();
  });

  it('renew moves the version; release deletes only that version', async () => {
    const held = await acquire();
    const before = held.version;
    await held.renew();
    expect(held.version).not.toBe(before);
    expect(held.version).toBe((await store.stat(path)).version);
    await held.release();
    expect(await readdir(root)).toEqual([]);
  });
});
