// The packed tarballs, installed with npm into a project outside the workspace, work:
// an ESM smoke test (save, load, open, the registry, errors, both core entry points,
// require() where Node supports it) and a TypeScript compile under nodenext, bundler
// and node10 resolution. This is what a team adopting savepoint from npm gets.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixture/', import.meta.url));
const PACKAGES = ['core', 'backend-local', 'backend-s3'];
const TYPESCRIPT = (await import('typescript/package.json', { with: { type: 'json' } })).default.version;

const work = mkdtempSync(join(tmpdir(), 'savepoint-consumer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a command; a failure shows what it printed (tsc prints its errors on stdout). */
function run(command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_loglevel: 'error' },
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

describe('the packed packages in a project outside the workspace', () => {
  let tarballs: Record<string, string> = {};

  it('pack with license, README, types and no workspace: ranges', () => {
    const packs = join(work, 'packs');
    for (const name of PACKAGES) run('pnpm', ['pack', '--pack-destination', packs], join(ROOT, 'packages', name));
    tarballs = Object.fromEntries(
      readdirSync(packs).map((file) => [
        `@savepoint/${file.replace(/^savepoint-/, '').replace(/-\d+\.\d+\.\d+\.tgz$/, '')}`,
        join(packs, file),
      ]),
    );
    expect(Object.keys(tarballs).sort()).toEqual(PACKAGES.map((p) => `@savepoint/${p}`).sort());
    for (const tarball of Object.values(tarballs)) {
      const listing = run('tar', ['-tzf', tarball], work);
      for (const file of ['package/LICENSE', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts']) {
        expect(listing, `${tarball} holds ${file}`).toContain(file);
      }
      const manifest = JSON.parse(run('tar', ['-xzOf', tarball, 'package/package.json'], work));
      expect(JSON.stringify(manifest), tarball).not.toContain('workspace:');
      expect(manifest).toMatchObject({ license: 'Apache-2.0', main: './dist/index.js', types: './dist/index.d.ts' });
      expect(manifest.repository?.url).toBeTruthy();
    }
  }, 120_000);

  it('install with npm and pass the ESM smoke test', () => {
    const app = join(work, 'app');
    cpSync(FIXTURE, app, { recursive: true });
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`])),
        devDependencies: { typescript: TYPESCRIPT, '@types/node': '^20.11.0' },
      }),
    );
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], app);
    expect(run('node', ['smoke.mjs'], app)).toContain('smoke ok');
  }, 300_000);

  it.each([
    ['nodenext', 'nodenext'],
    ['esnext', 'bundler'],
    ['commonjs', 'node10'],
  ])(
    'compile with TypeScript, module %s, moduleResolution %s',
    (module, resolution) => {
      const app = join(work, 'app');
      const config = join(app, `tsconfig.${resolution}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          compilerOptions: {
            module,
            moduleResolution: resolution,
            target: 'es2022',
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            types: ['node'],
            ...(resolution === 'node10' ? { ignoreDeprecations: '5.0' } : {}),
          },
          files: ['consumer.ts'],
        }),
      );
      run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', config], app);
    },
    120_000,
  );
});
