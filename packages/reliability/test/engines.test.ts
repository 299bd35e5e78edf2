// Each package's `engines.node` states what its dependencies need: the oldest Node
// it accepts is accepted by every package it pulls in (dependencies and peers,
// followed through node_modules), so `npm install --engine-strict` of a packed
// tarball never fails on a Node the package claims. Dev dependencies are not
// followed: they never reach a user.
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** The Node versions CI tests (scripts/test-all.sh): every published package must accept them. */
const TESTED_MAJORS = ['20', '22', '24'];

interface Manifest {
  name: string;
  private?: boolean;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const readManifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** Node's own lookup: `node_modules/<name>` in this folder or any above it (pnpm's layout follows it). */
function findPackage(fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

/** Every installed package `dir` needs at run time, with the range of Node it declares. */
function runtimeClosure(dir: string): Map<string, { name: string; node: string | undefined; via: string }> {
  const seen = new Map<string, { name: string; node: string | undefined; via: string }>();
  const queue: { dir: string; via: string }[] = [{ dir, via: readManifest(dir).name }];
  while (queue.length > 0) {
    const current = queue.shift() as { dir: string; via: string };
    const manifest = readManifest(current.dir);
    const names = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})];
    for (const name of names) {
      const found = findPackage(current.dir, name);
      // An optional dependency (a platform binary) or an optional peer may be absent.
      if (!found || seen.has(found)) continue;
      const dep = readManifest(found);
      const via = `${current.via} > ${dep.name}`;
      seen.set(found, { name: dep.name, node: dep.engines?.node, via });
      queue.push({ dir: found, via });
    }
  }
  return seen;
}

const packageDirs = ['packages', 'examples'].flatMap((group) =>
  readdirSync(join(REPO, group))
    .map((name) => join(REPO, group, name))
    .filter((dir) => existsSync(join(dir, 'package.json')) && readManifest(dir).engines?.node !== undefined),
);

describe("each package's engines.node states what its dependencies need", () => {
  it('finds the packages', () => {
    expect(packageDirs.length).toBeGreaterThanOrEqual(10);
  });

  for (const dir of packageDirs) {
    const manifest = readManifest(dir);
    it(`${manifest.name}: its oldest Node is accepted by every runtime dependency, and the tested versions by it`, () => {
      const ours = manifest.engines?.node as string;
      expect(semver.validRange(ours), `"${ours}" is not a semver range`).not.toBeNull();
      const oldest = semver.minVersion(ours)?.version as string;
      const refused = [...runtimeClosure(dir).values()]
        .filter((dep) => dep.node !== undefined && semver.validRange(dep.node) && !semver.satisfies(oldest, dep.node))
        .map((dep) => `${dep.via} needs node ${dep.node}`);
      expect(refused, `${manifest.name} says node ${ours}, but`).toEqual([]);
      if (!manifest.private) {
        const newest = TESTED_MAJORS.filter((major) => semver.intersects(ours, `^${major}`));
        expect(newest, `${manifest.name} (node ${ours}) accepts the newest tested versions`).toEqual(
          expect.arrayContaining(['22', '24']),
        );
      }
    });
  }
});
