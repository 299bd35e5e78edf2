// Scratch stores for this package's contract and policy tests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../src/index.js';

/** A new root folder and a backend confined to it, for the contract's `allowRoot` check. */
export async function localScratchStore() {
  const root = await mkdtemp(join(tmpdir(), 'savepoint-scratch-'));
  return { backend: new LocalBackend({ root }), storeRoot: root, dispose: () => rm(root, { recursive: true, force: true }) };
}
