import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCheckpointPolicy } from '@savepoint/backend-test-suite';
import { LocalBackend } from '../src/index.js';
import { localScratchStore } from './local-setup.js';

testCheckpointPolicy('local', async () => {
  const root = await mkdtemp(join(tmpdir(), 'savepoint-policy-'));
  return {
    backend: new LocalBackend(),
    root,
    storeRoot: '/',
    scratchStore: localScratchStore,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});
