// The entry points list their names and keep the floors apart, checked on the built
// files as a consumer gets them: `@savepoint/core/store` (the contract, for adopters of
// the storage packages) and `@savepoint/core/kit` (for backend authors) load none of
// the policy engine, the format or the training loop; every backend imports core only
// through those two; the root exports what a training loop needs and no internals.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

/** Every module `entry` loads, following relative static imports and re-exports. */
function moduleGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/g)) {
      visit(resolve(dirname(file), match[1] as string));
    }
  };
  visit(join(DIST, entry));
  return new Set([...seen].map((f) => f.slice(DIST.length)));
}

describe('core entry points', () => {
  it('store and kit load no engine, run, format or loop module', () => {
    for (const entry of ['store/index.js', 'kit/index.js']) {
      const loaded = [...moduleGraph(entry)];
      expect(loaded.length, entry).toBeGreaterThan(3);
      for (const floor of ['engine/', 'run/', 'format/', 'loop/']) {
        expect(
          loaded.filter((f) => f.startsWith(floor)),
          `${entry} loads ${floor}`,
        ).toEqual([]);
      }
    }
    expect(moduleGraph('kit/index.js')).toContain('kit/adapter.js');
  });

  it('every backend imports core only through the store and kit entries', () => {
    for (const backend of ['backend-local', 'backend-s3', 'backend-gcs', 'backend-azure']) {
      const dir = fileURLToPath(new URL(`../../${backend}/dist/`, import.meta.url));
      const source =
        readFileSync(join(dir, 'index.js'), 'utf8') +
        readFileSync(join(dir, `${backend.replace('backend-', '')}-backend.js`), 'utf8');
      expect(source, backend).not.toMatch(/from '@savepoint\/core'/);
      expect(source, backend).toMatch(/from '@savepoint\/core\/(store|kit)'/);
    }
  });

  it('no entry re-exports everything, and the root leaves internals out', async () => {
    for (const entry of ['index.js', 'store/index.js', 'kit/index.js']) {
      expect(readFileSync(join(DIST, entry), 'utf8'), entry).not.toMatch(/export \*/);
    }
    const root = await import('../dist/index.js');
    for (const name of [
      'CheckpointHook',
      'ReferenceTrainer',
      'Run',
      'loadCheckpoint',
      'openCheckpoint',
      'Tensor',
      'NotFoundError',
    ]) {
      expect(root, name).toHaveProperty(name);
    }
    for (const internal of [
      'SaveQueue',
      'BestTracker',
      'restoreRunState',
      'writeLastCheckpoint',
      'readPointerText',
      'SnapshotPool',
      'ObjectStoreBackend',
    ]) {
      expect(root, internal).not.toHaveProperty(internal);
    }
  });
});
