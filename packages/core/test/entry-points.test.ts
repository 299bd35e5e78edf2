// `@savepoint/core/store` loads none of the policy engine: a team adopting only the
// store API (and every backend, which imports only it) never pulls in the hook, the
// codec or the training loop. Checked on the built files, as a consumer gets them.
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
  it('store loads no engine module', () => {
    const loaded = moduleGraph('store.js');
    expect(loaded).toContain('object-store.js');
    for (const engine of ['checkpoint-hook.js', 'reference-trainer.js', 'safetensors-codec.js', 'checkpoint-io.js', 'lease.js']) {
      expect(loaded, engine).not.toContain(engine);
    }
  });

  it('every backend imports core only through the store entry', () => {
    for (const backend of ['backend-local', 'backend-s3', 'backend-gcs', 'backend-azure']) {
      const dir = fileURLToPath(new URL(`../../${backend}/dist/`, import.meta.url));
      const source =
        readFileSync(join(dir, 'index.js'), 'utf8') +
        readFileSync(join(dir, `${backend.replace('backend-', '')}-backend.js`), 'utf8');
      expect(source, backend).not.toMatch(/from '@savepoint\/core'/);
      expect(source, backend).toMatch(/from '@savepoint\/core\/store'/);
    }
  });

  it('the package root exports both halves', async () => {
    const root = await import('../dist/index.js');
    const store = await import('../dist/store.js');
    const checkpoint = await import('../dist/checkpoint.js');
    for (const name of Object.keys(store)) expect(root, name).toHaveProperty(name);
    for (const name of Object.keys(checkpoint)) expect(root, name).toHaveProperty(name);
  });
});
