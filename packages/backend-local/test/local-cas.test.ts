// Compare-and-swap on disk (local-cas.ts), beyond the contract suite: writers in
// separate processes, a stranger's in-place edit, and the claims a killed writer
// leaves behind: passed over when its process is provably gone, never broken when
// it cannot be checked (the error names the file to delete).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PreconditionFailedError } from '@savepoint/core';
import { processIdentity } from '@savepoint/core/kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/index.js';
import { claimPath } from '../src/local-cas.js';

const backend = new LocalBackend();
const DIST = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;
const me = processIdentity();

/** One conditional put in a fresh node process, started at `startAt` so that all of them race. */
function racer(path: string, version: string, body: string, startAt: number): Promise<string> {
  const script = `const { LocalBackend } = await import(${JSON.stringify(DIST)});
while (Date.now() < ${startAt});
try { await new LocalBackend().put(${JSON.stringify(path)}, ${JSON.stringify(body)}, { ifMatch: ${JSON.stringify(version)} }); console.log('won'); }
catch (e) { console.log(e.code ?? String(e)); }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', () => resolve(out.trim()));
  });
}

describe('local compare-and-swap', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'savepoint-cas-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('of writers in separate processes starting from one version, exactly one wins, round after round', async () => {
    const path = join(root, 'savepoint.lease');
    for (let round = 0; round < 4; round++) {
      await backend.put(path, `round ${round}`);
      const { version } = await backend.stat(path);
      const startAt = Date.now() + 700;
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => racer(path, version, `r${round} p${i}`, startAt)));
      expect(
        results.filter((r) => r === 'won'),
        results.join(', '),
      ).toHaveLength(1);
      expect(results.filter((r) => r === 'PRECONDITION_FAILED')).toHaveLength(5);
      expect(await readFile(path, 'utf8')).toBe(`r${round} p${results.indexOf('won')}`);
      expect(await readdir(root), 'no claim or temp file left').toEqual(['savepoint.lease']);
    }
  }, 60_000);

  it("a stranger's in-place edit changes the version, so a writer that read before it is refused", async () => {
    const path = join(root, 'pointer');
    await backend.put(path, 'epoch_1.safetensors');
    const { version } = await backend.stat(path);
    await writeFile(path, 'epoch_9.safetensors');
    await expect(backend.put(path, 'epoch_2.safetensors', { ifMatch: version })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await readFile(path, 'utf8')).toBe('epoch_9.safetensors');
  });

  it.runIf(!!me.bootId && !!me.pidNamespace)(
    "a killed writer's claim is passed over; removeIncompleteWrites removes it and keeps a live one",
    async () => {
      const path = join(root, 'savepoint.lease');
      await backend.put(path, 'v1');
      const { version } = await backend.stat(path);
      const gone = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' }).pid as number;
      await writeFile(claimPath(path, version, 1), JSON.stringify({ ...me, pid: gone }));
      await backend.put(path, 'v2', { ifMatch: version });
      expect(await readFile(path, 'utf8')).toBe('v2');
      expect(await readdir(root), 'the dead claim went with the version').toEqual(['savepoint.lease']);
      // Leftovers: a dead claim on some version, and a live one (this process, mid-write).
      await writeFile(claimPath(path, 'x', 1), JSON.stringify({ ...me, pid: gone }));
      await writeFile(claimPath(path, 'y', 1), JSON.stringify(me));
      expect(await backend.removeIncompleteWrites(root)).toBe(1);
      expect((await readdir(root)).sort()).toEqual([basename(claimPath(path, 'y', 1)), 'savepoint.lease'].sort());
    },
  );

  it('a claim of a process this host cannot check is never broken: the error names the file to delete', async () => {
    const path = join(root, 'savepoint.lease');
    await backend.put(path, 'v1');
    const { version } = await backend.stat(path);
    const claim = claimPath(path, version, 1);
    await writeFile(claim, JSON.stringify({ host: 'trainer-9', pid: 77, bootId: 'another-machine', pidNamespace: '1' }));
    const error = await backend.put(path, 'v2', { ifMatch: version }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect(String((error as Error).message)).toContain(
      `pid 77 on trainer-9 (claim ${claim}); if no such process is writing, delete that file`,
    );
    expect(await readFile(path, 'utf8')).toBe('v1');
    await rm(claim);
    await backend.put(path, 'v2', { ifMatch: version });
    expect(await readFile(path, 'utf8')).toBe('v2');
  });
});
