// The run's lease on the network stores through a long synchronous step: the lease is
// renewed by core's worker thread, with store clients of its own built from the same
// backendArgs (the backend registered again there from its module), so a 1.5 s lease
// survives a 7.5 s busy loop while another job tries to take it every 200 ms.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { registerAzureBackend } from '@savepoint/backend-azure';
import { registerGcsBackend } from '@savepoint/backend-gcs';
import { registerS3Backend } from '@savepoint/backend-s3';
import { type LeaseRecord, Run } from '@savepoint/core';
import { describe, expect, it } from 'vitest';
import { startContender } from '../../../test-support/lease-contender.js';
import { NETWORK_STORES } from './stores.js';

// 3 s: renewal every second leaves two seconds of slack for a worker thread starved on a loaded 2-core machine.
const TTL_MS = 3_000;
const BLOCK_MS = 2.5 * TTL_MS;
const REGISTER = { s3: 'registerS3Backend', gcs: 'registerGcsBackend', azure: 'registerAzureBackend' } as const;

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
}

for (const target of NETWORK_STORES) {
  describe.skipIf(!!target.skipReason)(`the run's lease on ${target.cloud}, renewed off the main thread`, () => {
    it('a synchronous step of 2.5 TTLs keeps the lease: a job trying every 200 ms all along never takes it', async () => {
      registerS3Backend();
      registerGcsBackend();
      registerAzureBackend();
      await target.prepare();
      const backendArgs = target.args(target.origin as string);
      const workDir = `${target.root}/renewer-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
      const run = Run.open(workDir, { backendArgs });
      const store = run.workDirStore;
      try {
        const lease = await run.acquireLease({ ttlMs: TTL_MS, purpose: 'training' });
        const renewal = await lease.startRenewing();
        const contender = startContender({
          workDir,
          backendModule: pathToFileURL(join(import.meta.dirname, '..', '..', `backend-${target.cloud}`, 'dist', 'index.js')).href,
          register: REGISTER[target.cloud],
          backendArgs,
          everyMs: 200,
        });
        try {
          expect((await contender.ready).code).toBe('LEASE_HELD');
          const blockedAt = Date.now();
          busy(BLOCK_MS);
          const unblockedAt = Date.now();
          expect(lease.lost, 'not lost, read without an event loop turn').toBeUndefined();
          const expiresAt = Date.parse(lease.record.expiresAt);
          const attempts = await contender.stop();
          expect(attempts.filter((a) => a.at > blockedAt && a.at < unblockedAt).length).toBeGreaterThanOrEqual(5);
          expect(
            attempts.filter((a) => a.took),
            'the other job never took the lease',
          ).toEqual([]);
          expect(expiresAt, 'renewed while this thread was blocked').toBeGreaterThan(unblockedAt);
          const now = JSON.parse(new TextDecoder().decode(await store.get(lease.path))) as LeaseRecord;
          expect(now).toMatchObject({ owner: lease.record.owner, generation: 1 });
          // A renewal may land between the two reads: the version this thread knows catches up with the store's.
          await expect
            .poll(async () => lease.version === (await store.stat(lease.path)).version, { timeout: 3 * TTL_MS })
            .toBe(true);
          expect(renewal).toEqual({ thread: 'worker' });
          await lease.release();
          expect(await store.isFile(lease.path), 'released by the worker').toBe(false);
        } finally {
          await contender.stop();
        }
      } finally {
        await store.rmtree(workDir).catch(() => {});
        await run.close();
      }
    }, 60_000);
  });
}
