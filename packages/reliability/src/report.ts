// Reliability figures: each test records what it tried and survived; the test
// command turns them into docs/reliability.md (scripts/reliability-report.mjs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DIR = fileURLToPath(new URL('../../../test-results/reliability/', import.meta.url));

export function recordFigures(name: string, figures: Record<string, unknown>): void {
  // The serverless runs on the other Node versions (scripts/test-all.sh) would overwrite
  // the full run's figures with their local-disk-only subset.
  if (process.env.SAVEPOINT_TEST_SERVERS === 'none') return;
  mkdirSync(DIR, { recursive: true });
  writeFileSync(`${DIR}${name}.json`, `${JSON.stringify({ name, ...figures }, null, 2)}\n`);
}
