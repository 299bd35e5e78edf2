import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testBackend } from '@savepoint/backend-test-suite';
import { LocalBackend } from '../src/index.js';
import { localScratchStore } from './local-setup.js';

testBackend(
  'local',
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'savepoint-local-'));
    return {
      backend: new LocalBackend({ root }),
      root,
      storeRoot: root,
      scratchStore: localScratchStore,
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
  { capabilities: { fileAndFolderSameName: false, http: false } },
);
