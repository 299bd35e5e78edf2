import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Network backends share one local server each; files run in parallel, tests in a file in order.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
