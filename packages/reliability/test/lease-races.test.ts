// The run's lease on every store, where issue 23 saw it split: two jobs taking over
// one expired lease at once (a delete + create let both hold it), and a holder paused
// past its expiry that came back after a take-over (it renewed and wrote on). Each
// test uses the lease as a job does, through Run.acquireLease, with no test-only
// option: the store's compare-and-swap alone must make exactly one holder.
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { LeaseHeldError, PreconditionFailedError, Run, type RunLease, type StorageBackend } from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { recordFigures } from '../src/index.js';
import { storeTargets } from './stores.js';

const targets = storeTargets('lease');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits `ms` with sub-millisecond steps (a local store answers in a fraction of one). */
async function pause(ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) await new Promise((resolve) => setImmediate(resolve));
}

/** The store as a job on a slow link sees it: every `slow` call waits `ms` before it is sent. */
function slowLink(store: StorageBackend, slow: readonly string[], ms: number): StorageBackend {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      if (!slow.includes(String(key))) return value.bind(target);
      return async (...args: unknown[]) => {
        await pause(ms);
        return value.apply(target, args);
      };
    },
  });
}

/** Mean time of one request to the store: the unit the slow link's delays are counted in. */
async function roundTrip(store: StorageBackend, path: string): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < 10; i++) await store.isFile(path);
  return (performance.now() - start) / 10;
}

/** A lease left by a job on another machine that stopped renewing it a while ago. */
function expiredLease(generation: number): string {
  return JSON.stringify({
    format: 'savepoint.lease',
    owner: `crashed-${generation}`,
    host: 'trainer-7.elsewhere',
    pid: 1,
    purpose: 'training',
    acquiredAt: new Date(Date.now() - 120_000).toISOString(),
    expiresAt: new Date(Date.now() - 1_000).toISOString(),
    generation,
  });
}

async function holder(store: StorageBackend, path: string): Promise<{ owner: string; generation: number }> {
  return JSON.parse(new TextDecoder().decode(await store.get(path)));
}

async function withStore(target: (typeof targets)[number], body: (store: StorageBackend, root: string) => Promise<void>) {
  const { store, root } = await target.open();
  try {
    await body(store, root);
  } finally {
    await store.rmtree(root).catch(() => {});
    if (target.name === 'local') await rm(root, { recursive: true, force: true });
    await store.close?.();
  }
}

/** Take-over races run and the rounds that ended with exactly one holder, per store (docs/reliability.md). */
const races: Record<string, { rounds: number; oneHolder: number }> = {};
afterAll(() => recordFigures('lease-races', { stores: races }));

for (const target of targets) {
  describe.skipIf(!!target.skipReason)(`the run's lease on ${target.name}`, () => {
    it('two jobs taking over the same expired lease at once: exactly one holds it, one generation up', async () => {
      await withStore(target, async (store, root) => {
        // The second job's link is slow on one kind of request per round, by 1-3 round trips:
        // its steps then land before, between and after the first's. (The old delete + create
        // take-over split whenever the second's delete landed after the first's create.)
        const rtt = await roundTrip(store, store.joinPath(root, 'probe'));
        const kinds = [[], ['remove'], ['put'], ['putIfAbsent'], ['get', 'stat']];
        const ROUNDS = 16;
        const row = { rounds: 0, oneHolder: 0 };
        races[target.name] = row;
        for (let round = 0; round < ROUNDS; round++) {
          row.rounds++;
          const path = Run.open(store.joinPath(root, `run-${round}`), { backend: store }).layout.leasePath;
          await store.put(path, expiredLease(round + 3));
          const slow = slowLink(store, kinds[round % kinds.length] as string[], rtt * (1 + (round % 3)));
          const job = (backend: StorageBackend) =>
            Run.open(store.joinPath(root, `run-${round}`), { backend }).acquireLease({ ttlMs: 30_000, purpose: 'training' });
          const results = await Promise.allSettled([job(store), job(slow)]);
          const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
          expect(won, `round ${round}: exactly one job holds the lease`).toHaveLength(1);
          const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
          expect(lost.reason, `round ${round}: the other is refused`).toBeInstanceOf(LeaseHeldError);
          row.oneHolder++;
          const lease = won[0] as RunLease;
          expect(lease.generation).toBe(round + 4);
          expect(await holder(store, path)).toMatchObject({ owner: lease.record.owner, generation: round + 4 });
          expect(lease.version).toBe((await store.stat(path)).version);
          await lease.release();
          expect(await store.isFile(path), 'released: the lease is gone').toBe(false);
        }
      });
    }, 120_000);

    it('a holder paused past its lease and taken over can no longer renew: LeaseHeldError, and lost is set', async () => {
      await withStore(target, async (store, root) => {
        const run = Run.open(store.joinPath(root, 'run'), { backend: store });
        const path = run.layout.leasePath;
        // No background renewal: this holder is "paused" (SIGSTOP, a long synchronous epoch).
        const paused = await run.acquireLease({ ttlMs: 1_000, purpose: 'training' });
        expect(paused.generation).toBe(1);
        await sleep(1_300);
        const successor = await run.acquireLease({ ttlMs: 30_000, purpose: 'training' });
        expect(successor.generation).toBe(2);
        // The paused holder wakes up and renews on the version it last wrote: refused.
        const error = await paused.renew().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(LeaseHeldError);
        expect(String((error as Error).message)).toContain(successor.record.owner);
        expect(paused.lost).toBe(error);
        await expect(paused.renew(), 'and it stays lost').rejects.toBe(error);
        // Its release deletes nothing of its successor's; the successor renews on.
        await paused.release();
        expect(await holder(store, path)).toMatchObject({ owner: successor.record.owner, generation: 2 });
        await successor.renew();
        expect(successor.lost).toBeUndefined();
        await successor.release();
        expect(await store.isFile(path)).toBe(false);

        // Paused in the middle of a renewal (its write sent, then stopped for 2 s): the
        // write lands after the take-over and must not overwrite the successor's lease.
        const dir = store.joinPath(root, 'midway');
        const midway = await Run.open(dir, { backend: slowLink(store, ['put'], 2_000) }).acquireLease({
          ttlMs: 1_000,
          purpose: 'training',
        });
        const renewing = midway.renew().catch((e: unknown) => e);
        await sleep(1_200);
        const next = await Run.open(dir, { backend: store }).acquireLease({ ttlMs: 30_000, purpose: 'training' });
        expect(await renewing).toBeInstanceOf(LeaseHeldError);
        expect(midway.lost).toBeInstanceOf(LeaseHeldError);
        expect(await holder(store, next.path)).toMatchObject({ owner: next.record.owner, generation: 2 });
        await midway.release();
        await next.release();
      });
    }, 60_000);

    it('a taken-over holder that has not noticed yet releases nothing of its successor (conditional delete)', async () => {
      await withStore(target, async (store, root) => {
        const run = Run.open(store.joinPath(root, 'run'), { backend: store });
        const path = run.layout.leasePath;
        const paused = await run.acquireLease({ ttlMs: 1_000, purpose: 'training' });
        const pausedVersion = paused.version;
        await sleep(1_300);
        const successor = await run.acquireLease({ ttlMs: 30_000, purpose: 'training' });
        // The store's own answer first: a delete on the paused holder's version must be refused.
        const refused = await store.remove(path, { ifMatch: pausedVersion }).catch((e: unknown) => e);
        expect(
          refused,
          `${target.name}: remove with ifMatch of a replaced version must be refused (a server that ignores the condition deletes the successor's lease)`,
        ).toBeInstanceOf(PreconditionFailedError);
        await paused.release();
        expect(await store.isFile(path), "the successor's lease survives").toBe(true);
        expect(await holder(store, path)).toMatchObject({ owner: successor.record.owner });
        await successor.release();
      });
    }, 60_000);
  });
}
