// The loser of a race for a run's lease on local disk (issue 27). The winner takes the
// lease and, holding it, sweeps the folder's unfinished writes: among them the temp
// file of the loser's own lease write, deleted before the loser could link it in. The
// loser must be told who holds the run, not "put: no file at .../savepoint.lease".
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseHeldError, Run } from '@savepoint/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalBackend } from '../src/index.js';

/** Runs once, just before the next `link` of the local backend (the move of a finished temp file into place). */
const beforeLink: { run?: (() => Promise<void>) | undefined } = {};

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const link = async (existing: string, target: string) => {
    const hook = beforeLink.run;
    beforeLink.run = undefined;
    await hook?.();
    return real.link(existing, target);
  };
  return { ...real, default: { ...real, link }, link };
});

describe('a lost race for the lease on local disk', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-lease-race-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("tells the loser who holds the run (its temp file was swept by the winner's cleanup)", async () => {
    const winner = Run.open(dir, { backend: new LocalBackend() });
    const loser = Run.open(dir, { backend: new LocalBackend() });
    let held: Awaited<ReturnType<Run['acquireLease']>> | undefined;
    beforeLink.run = async () => {
      // The loser's lease is written to its temp file; before it is linked in, the
      // winner takes the lease and clears the unfinished writes it finds.
      held = await winner.acquireLease({ ttlMs: 60_000, purpose: 'the winning job' });
      expect(await winner.removeIncompleteWrites()).toBeGreaterThan(0);
    };
    const lost = await loser.acquireLease({ ttlMs: 60_000, purpose: 'the losing job' }).catch((error: unknown) => error);
    expect(held).toBeDefined();
    expect(lost).toBeInstanceOf(LeaseHeldError);
    expect((lost as Error).message).toMatch(/savepoint\.lease is held by the winning job .*another job is writing this run/);
    await held?.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('a streamed write whose temp file is deleted says what happened and what to do', async () => {
    const store = new LocalBackend();
    async function* body() {
      yield new Uint8Array(16);
    }
    beforeLink.run = async () => {
      await store.removeIncompleteWrites(dir);
    };
    const failed = await store.putIfAbsent(join(dir, 'x.bin'), body() as never).catch((error: unknown) => error);
    expect((failed as Error).message).toMatch(
      /the temp file of this write \(.*\) was deleted by another process before it was moved in, so nothing was written\. Another job is clearing this folder's unfinished writes.*Make sure only one job writes this folder, then try again/,
    );
  });
});
