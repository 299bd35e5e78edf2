// The compare-and-swap rules of the contract: `stat` gives a version, and `put` and
// `remove` with `ifMatch` act only on that version, atomically. The run's lease (and
// the fenced pointer) stand on these: a store that compares and then writes in two
// steps lets two jobs both believe they own a run.
import { PreconditionFailedError, type StorageBackend } from '@savepoint/core';
import { expect } from 'vitest';
import type { ContractCheck } from './contract-check.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function versionOf(backend: StorageBackend, path: string): Promise<string> {
  const { version } = await backend.stat(path);
  expect(typeof version === 'string' && version.length > 0, `stat(${path}) must give a non-empty version`).toBe(true);
  return version;
}

async function* once(body: string): AsyncIterable<Uint8Array> {
  yield new TextEncoder().encode(body);
}

/** Of `racers` settled calls, exactly one fulfilled and every other one refused with PreconditionFailedError. */
function oneWinner(results: PromiseSettledResult<void>[], label: string): number {
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  expect(won, `${label}: exactly one conditional write may win`).toHaveLength(1);
  for (const r of results) {
    if (r.status === 'rejected') expect(r.reason, `${label}: the losers are refused`).toBeInstanceOf(PreconditionFailedError);
  }
  return won[0] as number;
}

export const CAS_CHECKS: readonly ContractCheck[] = [
  {
    name: 'stat gives a version that stays while the object does and changes on every replace',
    async run({ backend, dir }) {
      const path = backend.joinPath(dir, 'versioned.txt');
      await backend.put(path, 'one');
      const v1 = await versionOf(backend, path);
      expect(await versionOf(backend, path), 'reading twice gives the same version').toBe(v1);
      await backend.put(path, 'two');
      const v2 = await versionOf(backend, path);
      expect(v2, 'a replace changes the version').not.toBe(v1);
      await backend.put(path, 'three');
      const v3 = await versionOf(backend, path);
      expect([v1, v2], 'every replace gives a new version').not.toContain(v3);
      // Objects made by the other writing calls have versions too.
      const created = backend.joinPath(dir, 'created.txt');
      await backend.putIfAbsent(created, 'new');
      await versionOf(backend, created);
      const copied = backend.joinPath(dir, 'copied.txt');
      await backend.copy(path, copied);
      await versionOf(backend, copied);
    },
  },
  {
    name: 'put with ifMatch replaces only the current version; a stale or missing one is refused and nothing changes',
    async run({ backend, dir }) {
      const path = backend.joinPath(dir, 'record.json');
      await backend.put(path, 'first');
      const v1 = await versionOf(backend, path);
      await backend.put(path, 'second', { ifMatch: v1, contentType: 'application/json' });
      expect(text(await backend.get(path))).toBe('second');
      const v2 = await versionOf(backend, path);
      expect(v2).not.toBe(v1);
      // A writer that still holds v1 is refused, and the object stays the second one, at v2.
      const stale = await backend.put(path, 'third', { ifMatch: v1 }).catch((e: unknown) => e);
      expect(stale, 'a put with a stale ifMatch must reject').toBeInstanceOf(PreconditionFailedError);
      expect((stale as PreconditionFailedError).code).toBe('PRECONDITION_FAILED');
      expect(text(await backend.get(path))).toBe('second');
      expect(await versionOf(backend, path)).toBe(v2);
      // A small stream is one request too.
      await backend.put(path, once('fourth'), { ifMatch: v2 });
      expect(text(await backend.get(path))).toBe('fourth');
      // Nothing there is not "any version": refused, and nothing is created.
      const absent = backend.joinPath(dir, 'absent.json');
      await expect(backend.put(absent, 'x', { ifMatch: v2 })).rejects.toBeInstanceOf(PreconditionFailedError);
      expect(await backend.isFile(absent)).toBe(false);
    },
  },
  {
    name: 'remove with ifMatch deletes only that version; a missing object succeeds',
    async run({ backend, dir }) {
      const path = backend.joinPath(dir, 'lease.json');
      await backend.put(path, 'old holder');
      const old = await versionOf(backend, path);
      await backend.put(path, 'new holder', { ifMatch: old });
      const current = await versionOf(backend, path);
      await expect(backend.remove(path, { ifMatch: old }), 'a stale ifMatch must not delete').rejects.toBeInstanceOf(
        PreconditionFailedError,
      );
      expect(text(await backend.get(path))).toBe('new holder');
      await backend.remove(path, { ifMatch: current });
      expect(await backend.isFile(path)).toBe(false);
      await backend.remove(path, { ifMatch: current });
    },
  },
  {
    name: 'of concurrent ifMatch writers from one version exactly one wins, round after round',
    timeoutMs: 90_000,
    async run({ backend, dir }) {
      const path = backend.joinPath(dir, 'contended.json');
      for (let round = 0; round < 6; round++) {
        await backend.put(path, `start of round ${round}`);
        const from = await versionOf(backend, path);
        const bodies = Array.from({ length: 8 }, (_, i) => `round ${round} writer ${i}`);
        const results = await Promise.allSettled(bodies.map((body) => backend.put(path, body, { ifMatch: from })));
        const winner = oneWinner(results, `round ${round}`);
        expect(text(await backend.get(path)), "the object is the winner's").toBe(bodies[winner]);
      }
      // A conditional delete among the replaces (a release racing a take-over): still one
      // winner. One delete only: a second delete of a gone object succeeds by the contract.
      await backend.put(path, 'start of the mixed round');
      const from = await versionOf(backend, path);
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          i === 3 ? backend.remove(path, { ifMatch: from }) : backend.put(path, `mixed writer ${i}`, { ifMatch: from }),
        ),
      );
      const winner = oneWinner(results, 'mixed round');
      if (winner === 3) expect(await backend.isFile(path)).toBe(false);
      else expect(text(await backend.get(path))).toBe(`mixed writer ${winner}`);
    },
  },
];
