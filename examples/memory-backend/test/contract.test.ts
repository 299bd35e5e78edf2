// A third party's whole test file: build the backend, hand it to the suite.
import { testBackend, testCheckpointPolicy } from '@savepoint/backend-test-suite';
import { MemoryBackend } from '../src/index.js';

const factory = () => ({
  backend: new MemoryBackend(),
  root: 'mem://bucket/',
  storeRoot: 'mem://bucket',
  // A new, empty store the suite may wipe with rmtree(root, { allowRoot: true }).
  scratchStore: async () => ({ backend: new MemoryBackend(), storeRoot: 'mem://scratch' }),
});

testBackend('memory (example)', factory, { capabilities: { largeObjectBytes: 16 * 1024 * 1024, http: false } });
testCheckpointPolicy('memory (example)', factory);
