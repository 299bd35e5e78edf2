// Every rule of the StorageBackend contract as a plain async check that throws on
// failure. `testBackend` turns each into a vitest test; the suite's own tests run
// them directly against deliberately broken backends to prove each can fail.
import { createHash, randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { AbortedError, InvalidPathError, NotFoundError, type StorageBackend } from '@savepoint/core';
import fc from 'fast-check';
import pMap from 'p-map';
import { expect } from 'vitest';
import { CAS_CHECKS } from './cas-checks.js';
import type { ContractCheck, ScratchStore } from './contract-check.js';
import { FAULT_CHECKS } from './fault-checks.js';
import { STORAGE_API_CHECKS } from './storage-api-checks.js';

export {
  type Capabilities,
  type CheckContext,
  type ContractCheck,
  DEFAULT_CAPABILITIES,
  type ScratchStore,
} from './contract-check.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function* chunked(data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < data.byteLength; offset += size) yield data.subarray(offset, offset + size);
}

/** Deterministic pseudo-random bytes, generated chunk by chunk so 64 MiB never sits in memory twice. */
async function* patternStream(total: number, seed: number): AsyncIterable<Uint8Array> {
  let state = seed >>> 0;
  let left = total;
  while (left > 0) {
    // Odd chunk sizes, so that part boundaries never line up with chunk boundaries.
    const size = Math.min(left, 1_048_573);
    const chunk = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      chunk[i] = state >>> 24;
    }
    left -= size;
    yield chunk;
  }
}

async function hashStream(chunks: AsyncIterable<Uint8Array>): Promise<{ sha: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha: hash.digest('hex'), size };
}

async function listNames(backend: StorageBackend, dir: string, recursive = false, startAfter?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of backend.list(dir, { recursive, ...(startAfter === undefined ? {} : { startAfter }) })) {
    out.push(
      recursive ? entry.path.slice(dir.replace(/\/+$/, '').length + 1) : `${entry.name}${entry.type === 'dir' ? '/' : ''}`,
    );
  }
  return out;
}

/** Path segments that share prefixes and carry separators-in-disguise, unicode and reserved characters. */
const SEGMENT = fc.constantFrom(
  'a',
  'a1',
  'a.b',
  'ab',
  'a-b',
  'run1',
  'run10',
  'é',
  '模型',
  'x y',
  'p+q',
  '50%',
  'h#t',
  'k=v&w',
  '~',
  '_',
);

/** Drops keys that would need a file and a folder of the same name (`a` and `a/b`) where the store cannot hold both. */
function storable(keys: string[][], sameName: boolean): string[][] {
  const unique = [...new Map(keys.map((k) => [k.join('/'), k])).values()];
  if (sameName) return unique;
  return unique.filter(
    (k) => !unique.some((other) => other.length > k.length && other.slice(0, k.length).join('/') === k.join('/')),
  );
}

export const CONTRACT_CHECKS: readonly ContractCheck[] = [
  {
    name: 'put and get bytes, a string and a stream of unknown length',
    async run({ backend, dir }) {
      const a = backend.joinPath(dir, 'bytes.bin');
      await backend.put(a, new Uint8Array([0, 1, 2, 255]));
      expect([...(await backend.get(a))]).toEqual([0, 1, 2, 255]);
      const b = backend.joinPath(dir, 'text.txt');
      await backend.put(b, 'héllo');
      expect(text(await backend.get(b))).toBe('héllo');
      const c = backend.joinPath(dir, 'stream.bin');
      await backend.put(c, chunked(new TextEncoder().encode('abcdefghij'), 3));
      expect(text(await backend.get(c))).toBe('abcdefghij');
    },
  },
  {
    name: 'overwrite replaces the whole object, and empty objects exist',
    async run({ backend, dir }) {
      const p = backend.joinPath(dir, 'over.txt');
      await backend.put(p, 'a long first version');
      await backend.put(p, 'short');
      expect(text(await backend.get(p))).toBe('short');
      const empty = backend.joinPath(dir, 'empty');
      await backend.put(empty, new Uint8Array(0));
      expect((await backend.get(empty)).byteLength).toBe(0);
      expect(await backend.isFile(empty)).toBe(true);
      expect((await backend.stat(empty)).size).toBe(0);
      await backend.put(empty, chunked(new Uint8Array(0), 1));
      expect(await backend.isFile(empty)).toBe(true);
    },
  },
  {
    name: 'not found: get, getStream and stat reject with NotFoundError; checks resolve false; deletes succeed',
    async run({ backend, dir }) {
      const missing = backend.joinPath(dir, 'missing.bin');
      await expect(backend.get(missing)).rejects.toBeInstanceOf(NotFoundError);
      await expect(backend.get(missing, { range: { start: 0, end: 4 } })).rejects.toBeInstanceOf(NotFoundError);
      await expect(backend.getStream(missing)).rejects.toBeInstanceOf(NotFoundError);
      await expect(backend.stat(missing)).rejects.toBeInstanceOf(NotFoundError);
      expect(await backend.exists(missing)).toBe(false);
      expect(await backend.isFile(missing)).toBe(false);
      expect(await backend.isDir(missing)).toBe(false);
      await expect(backend.remove(missing)).resolves.toBeUndefined();
      await expect(backend.rmtree(backend.joinPath(dir, 'no-such-folder'))).resolves.toBeUndefined();
      expect(await listNames(backend, backend.joinPath(dir, 'no-such-folder'))).toEqual([]);
    },
  },
  {
    name: 'isFile, isDir and exists tell files from folders',
    async run({ backend, dir }) {
      await backend.put(backend.joinPath(dir, 'folder', 'inner', 'leaf.txt'), 'x');
      await backend.put(backend.joinPath(dir, 'file.txt'), 'x');
      expect(await backend.isFile(backend.joinPath(dir, 'file.txt'))).toBe(true);
      expect(await backend.isDir(backend.joinPath(dir, 'file.txt'))).toBe(false);
      expect(await backend.isDir(backend.joinPath(dir, 'folder'))).toBe(true);
      expect(await backend.isDir(backend.joinPath(dir, 'folder', 'inner'))).toBe(true);
      expect(await backend.isFile(backend.joinPath(dir, 'folder'))).toBe(false);
      expect(await backend.exists(backend.joinPath(dir, 'folder'))).toBe(true);
      expect(await backend.exists(backend.joinPath(dir, 'file.txt'))).toBe(true);
      // A prefix that is not a whole segment is no folder.
      expect(await backend.isDir(backend.joinPath(dir, 'fold'))).toBe(false);
      expect(await backend.isFile(backend.joinPath(dir, 'file'))).toBe(false);
    },
  },
  {
    name: 'rmtree deletes exactly the folder: run1 never touches run10/ or run1.txt',
    async run({ backend, dir }) {
      const keep = ['run10/a.bin', 'run1.txt', 'run1-b/x', 'run0/run1/y'];
      const gone = ['run1/a.bin', 'run1/deep/b.bin', 'run1/deep/deeper/c'];
      for (const key of [...keep, ...gone]) await backend.put(backend.joinPath(dir, key), key);
      await backend.rmtree(backend.joinPath(dir, 'run1'));
      for (const key of gone) expect(await backend.isFile(backend.joinPath(dir, key)), key).toBe(false);
      for (const key of keep) {
        expect(await backend.isFile(backend.joinPath(dir, key)), `rmtree(run1) deleted its sibling ${key}`).toBe(true);
        expect(text(await backend.get(backend.joinPath(dir, key))), key).toBe(key);
      }
      expect(await backend.isDir(backend.joinPath(dir, 'run1'))).toBe(false);
      expect(await backend.isDir(backend.joinPath(dir, 'run10'))).toBe(true);
    },
  },
  {
    name: 'remove and rmtree keep a/b, a/b.txt and a/b/ apart',
    async run({ backend, dir }) {
      await backend.put(backend.joinPath(dir, 'a', 'b.txt'), 'txt');
      await backend.put(backend.joinPath(dir, 'a', 'b', 'c'), 'c');
      await backend.remove(backend.joinPath(dir, 'a', 'b'));
      expect(text(await backend.get(backend.joinPath(dir, 'a', 'b', 'c')))).toBe('c');
      expect(text(await backend.get(backend.joinPath(dir, 'a', 'b.txt')))).toBe('txt');
      await backend.rmtree(backend.joinPath(dir, 'a', 'b'));
      expect(await backend.isDir(backend.joinPath(dir, 'a', 'b'))).toBe(false);
      expect(text(await backend.get(backend.joinPath(dir, 'a', 'b.txt')))).toBe('txt');
      await backend.rmtree(backend.joinPath(dir, 'a', 'b.txt'));
      expect(text(await backend.get(backend.joinPath(dir, 'a', 'b.txt')))).toBe('txt');
      await backend.remove(backend.joinPath(dir, 'a', 'b.txt'));
      expect(await backend.exists(backend.joinPath(dir, 'a', 'b.txt'))).toBe(false);
    },
  },
  {
    name: 'a file and a folder may share a name on object stores',
    requires: 'fileAndFolderSameName',
    async run({ backend, dir }) {
      await backend.put(backend.joinPath(dir, 'x'), 'file');
      await backend.put(backend.joinPath(dir, 'x', 'y'), 'child');
      expect(await backend.isFile(backend.joinPath(dir, 'x'))).toBe(true);
      expect(await backend.isDir(backend.joinPath(dir, 'x'))).toBe(true);
      await backend.rmtree(backend.joinPath(dir, 'x'));
      expect(await backend.isFile(backend.joinPath(dir, 'x'))).toBe(true);
      await backend.put(backend.joinPath(dir, 'x', 'y'), 'child');
      await backend.remove(backend.joinPath(dir, 'x'));
      expect(await backend.isFile(backend.joinPath(dir, 'x', 'y'))).toBe(true);
    },
  },
  {
    name: 'keys with spaces, unicode, +, %, # and = round-trip and list by name',
    async run({ backend, dir }) {
      const names = ['with space.bin', 'ünïcödé-模型.bin', 'a+b.bin', '100%.bin', 'hash#tag.bin', 'k=v&x.bin', "quote'.bin"];
      for (const name of names) await backend.put(backend.joinPath(dir, 'odd', name), name);
      for (const name of names) expect(text(await backend.get(backend.joinPath(dir, 'odd', name))), name).toBe(name);
      expect((await listNames(backend, backend.joinPath(dir, 'odd'))).sort()).toEqual([...names].sort());
      await backend.rmtree(backend.joinPath(dir, 'odd'));
      expect(await listNames(backend, backend.joinPath(dir, 'odd'))).toEqual([]);
    },
  },
  {
    name: 'range reads at the start, middle and end',
    async run({ backend, dir }) {
      const p = backend.joinPath(dir, 'range.bin');
      const data = new Uint8Array(1000).map((_, i) => i % 251);
      await backend.put(p, data);
      expect([...(await backend.get(p, { range: { start: 0, end: 8 } }))]).toEqual([...data.subarray(0, 8)]);
      expect([...(await backend.get(p, { range: { start: 500, end: 510 } }))]).toEqual([...data.subarray(500, 510)]);
      expect([...(await backend.get(p, { range: { start: 990 } }))]).toEqual([...data.subarray(990)]);
      expect([...(await backend.get(p, { range: { start: 995, end: 5000 } }))]).toEqual([...data.subarray(995)]);
      const streamed: number[] = [];
      for await (const chunk of await backend.getStream(p, { range: { start: 100, end: 120 } })) streamed.push(...chunk);
      expect(streamed).toEqual([...data.subarray(100, 120)]);
    },
  },
  {
    name: 'ranges at or past the end read no bytes; an empty range of a missing object is still NotFoundError',
    async run({ backend, dir }) {
      const p = backend.joinPath(dir, 'edges.bin');
      await backend.put(p, new Uint8Array(1000).fill(3));
      const empty = backend.joinPath(dir, 'edges-empty.bin');
      await backend.put(empty, new Uint8Array(0));
      const cases: [string, string, { start: number; end?: number }][] = [
        ['start at the end', p, { start: 1000 }],
        ['start past the end', p, { start: 5000, end: 6000 }],
        ['empty range inside', p, { start: 10, end: 10 }],
        ['range of an empty object', empty, { start: 0, end: 4 }],
        ['open range of an empty object', empty, { start: 0 }],
      ];
      for (const [what, path, range] of cases) {
        expect((await backend.get(path, { range })).byteLength, what).toBe(0);
        const chunks: Uint8Array[] = [];
        for await (const chunk of await backend.getStream(path, { range })) chunks.push(chunk);
        expect(
          chunks.reduce((n, c) => n + c.byteLength, 0),
          `${what} (stream)`,
        ).toBe(0);
      }
      const missing = backend.joinPath(dir, 'edges-missing.bin');
      await expect(backend.get(missing, { range: { start: 10, end: 10 } })).rejects.toBeInstanceOf(NotFoundError);
      await expect(backend.get(missing, { range: { start: 5000 } })).rejects.toBeInstanceOf(NotFoundError);
    },
  },
  {
    name: 'a streamed put of unknown length reads back byte-identical',
    timeoutMs: 240_000,
    async run({ backend, dir, caps }) {
      const p = backend.joinPath(dir, 'large.bin');
      const expected = await hashStream(patternStream(caps.largeObjectBytes, 42));
      await backend.put(p, patternStream(caps.largeObjectBytes, 42));
      expect((await backend.stat(p)).size).toBe(caps.largeObjectBytes);
      expect(await hashStream(await backend.getStream(p))).toEqual(expected);
    },
  },
  {
    name: 'a put whose stream fails leaves nothing visible, and keeps the old object',
    async run({ backend, dir }) {
      const fresh = backend.joinPath(dir, 'fresh.bin');
      const existing = backend.joinPath(dir, 'existing.bin');
      await backend.put(existing, 'old content');
      async function* failing() {
        yield new Uint8Array(1024).fill(7);
        yield new Uint8Array(1024).fill(8);
        throw new Error('source failed mid-stream');
      }
      await expect(backend.put(fresh, failing())).rejects.toThrow();
      await expect(backend.put(existing, failing())).rejects.toThrow();
      expect(await backend.exists(fresh)).toBe(false);
      expect(text(await backend.get(existing))).toBe('old content');
      expect(await listNames(backend, dir)).toEqual(['existing.bin']);
    },
  },
  {
    name: 'an aborted put leaves nothing visible',
    async run({ backend, dir }) {
      const p = backend.joinPath(dir, 'aborted.bin');
      const controller = new AbortController();
      async function* slow() {
        yield new Uint8Array(4096);
        controller.abort(new Error('stop'));
        yield new Uint8Array(4096);
      }
      await expect(backend.put(p, slow(), { signal: controller.signal })).rejects.toThrow();
      expect(await backend.exists(p)).toBe(false);
      const already = new AbortController();
      already.abort();
      await expect(backend.put(p, 'x', { signal: already.signal })).rejects.toThrow();
      expect(await backend.exists(p)).toBe(false);
    },
  },
  {
    name: 'list: one level with folders, recursive with every file, sorted',
    async run({ backend, dir }) {
      for (const key of ['b.txt', 'a.txt', 'sub/c.txt', 'sub/deep/d.txt', 'sub2/e.txt']) {
        await backend.put(backend.joinPath(dir, key), key);
      }
      expect(await listNames(backend, dir)).toEqual(['a.txt', 'b.txt', 'sub/', 'sub2/']);
      expect(await listNames(backend, dir, true)).toEqual(['a.txt', 'b.txt', 'sub/c.txt', 'sub/deep/d.txt', 'sub2/e.txt']);
      const entries = [];
      for await (const entry of backend.list(dir)) entries.push(entry);
      const file = entries.find((e) => e.name === 'a.txt');
      expect(file?.type).toBe('file');
      expect(file?.size).toBe(5);
      expect(await backend.isFile(file?.path ?? '')).toBe(true);
      const folder = entries.find((e) => e.name === 'sub');
      expect(folder?.type).toBe('dir');
      expect(await backend.isDir(folder?.path ?? '')).toBe(true);
    },
  },
  {
    name: 'listing and rmtree page past 1,000 keys, also from a startAfter',
    timeoutMs: 300_000,
    async run({ backend, dir, caps }) {
      const many = backend.joinPath(dir, 'many');
      const keys = Array.from({ length: caps.manyKeys }, (_, i) => `k${String(i).padStart(5, '0')}`);
      await pMap(keys, (key) => backend.put(backend.joinPath(many, key), key), { concurrency: 32 });
      await backend.put(backend.joinPath(dir, 'many.txt'), 'neighbour');
      const names = await listNames(backend, many);
      expect(names.length).toBe(keys.length);
      expect(names).toEqual(keys);
      // Resumed after the first key, the listing still goes past the store's first page.
      const rest = await listNames(backend, many, false, backend.joinPath(many, keys[0] as string));
      expect(rest.length, 'a listing given startAfter stopped early').toBe(keys.length - 1);
      expect(rest).toEqual(keys.slice(1));
      expect((await listNames(backend, dir, true)).length).toBe(keys.length + 1);
      await backend.rmtree(many);
      expect(await listNames(backend, many)).toEqual([]);
      expect(await backend.isDir(many)).toBe(false);
      expect(text(await backend.get(backend.joinPath(dir, 'many.txt')))).toBe('neighbour');
    },
  },
  {
    name: 'concurrent puts to distinct keys all land',
    async run({ backend, dir }) {
      const keys = Array.from({ length: 40 }, (_, i) => `c${i}`);
      await Promise.all(
        keys.map((key) => backend.put(backend.joinPath(dir, 'conc', key), `${key}:${randomBytes(8).toString('hex')}`)),
      );
      for (const key of keys)
        expect(text(await backend.get(backend.joinPath(dir, 'conc', key))).startsWith(`${key}:`)).toBe(true);
    },
  },
  {
    name: 'putIfAbsent creates only when nothing is there; of racing creators exactly one wins',
    async run({ backend, dir }) {
      const path = backend.joinPath(dir, 'lease');
      expect(await backend.putIfAbsent(path, 'first')).toBe(true);
      expect(await backend.putIfAbsent(path, 'second')).toBe(false);
      expect(text(await backend.get(path))).toBe('first');
      // Ten creators at once on a fresh key: one true, nine false, and the object is the winner's.
      const race = backend.joinPath(dir, 'race');
      const bodies = Array.from({ length: 10 }, (_, i) => `creator-${i}`);
      const results = await Promise.all(bodies.map((body) => backend.putIfAbsent(race, body)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(text(await backend.get(race))).toBe(bodies[results.indexOf(true)]);
      // Once removed, the name can be created again.
      await backend.remove(path);
      expect(await backend.putIfAbsent(path, new TextEncoder().encode('third'))).toBe(true);
      expect(text(await backend.get(path))).toBe('third');
    },
  },
  ...CAS_CHECKS,
  {
    name: 'copy within the store',
    async run({ backend, dir }) {
      const src = backend.joinPath(dir, 'src.bin');
      const dst = backend.joinPath(dir, 'nested', 'dst.bin');
      await backend.put(src, 'copied bytes');
      await backend.copy(src, dst);
      expect(text(await backend.get(dst))).toBe('copied bytes');
      expect(text(await backend.get(src))).toBe('copied bytes');
      await expect(backend.copy(backend.joinPath(dir, 'nope'), dst)).rejects.toBeInstanceOf(NotFoundError);
    },
  },
  {
    name: 'paths that escape the root, hold NUL or are empty are refused',
    async run({ backend, dir }) {
      const outside = `${dir.replace(/\/+$/, '')}/../escaped.txt`;
      await expect(backend.put(outside, 'x')).rejects.toBeInstanceOf(InvalidPathError);
      await expect(backend.get(outside)).rejects.toBeInstanceOf(InvalidPathError);
      await expect(backend.remove(outside)).rejects.toBeInstanceOf(InvalidPathError);
      await expect(backend.rmtree(`${dir.replace(/\/+$/, '')}/..`)).rejects.toBeInstanceOf(InvalidPathError);
      expect(() => backend.joinPath(dir, '..', 'x')).toThrow(InvalidPathError);
      await expect(backend.put(`${dir}/nul\0byte`, 'x')).rejects.toBeInstanceOf(InvalidPathError);
      // A backslash never smuggles a ".." past the check (Azure stores "a\..\b" as "a/../b").
      await expect(backend.put(`${dir}/a\\..\\b`, 'x')).rejects.toBeInstanceOf(InvalidPathError);
      await expect(backend.rmtree(`${dir}/a\\..\\..`)).rejects.toBeInstanceOf(InvalidPathError);
      await expect(backend.put('', 'x')).rejects.toBeInstanceOf(InvalidPathError);
      await expect(backend.rmtree('')).rejects.toBeInstanceOf(InvalidPathError);
    },
  },
  {
    name: 'rmtree of the store root is refused unless asked for',
    async run({ backend, dir, storeRoot }) {
      // Every backend names its root: a check that could skip itself would prove nothing.
      expect(storeRoot, 'the test context must give storeRoot (the bucket, container or root folder)').toBeTruthy();
      await backend.put(backend.joinPath(dir, 'survivor.txt'), 'still here');
      await expect(backend.rmtree(storeRoot as string)).rejects.toBeInstanceOf(InvalidPathError);
      await expect(backend.rmtree(`${(storeRoot as string).replace(/\/+$/, '')}/`)).rejects.toBeInstanceOf(InvalidPathError);
      expect(text(await backend.get(backend.joinPath(dir, 'survivor.txt')))).toBe('still here');
    },
  },
  {
    name: 'rmtree of a store root with { allowRoot: true } empties it',
    async run({ scratchStore }) {
      // Every backend can make a scratch store: a check that could skip itself would prove nothing.
      expect(scratchStore, 'the test context must give scratchStore (a new, empty store root)').toBeTypeOf('function');
      const scratch = await (scratchStore as () => Promise<ScratchStore>)();
      const { backend, storeRoot } = scratch;
      try {
        const names = ['top.bin', 'a/one.bin', 'a/b/two.bin', 'z/three.bin'];
        for (const name of names) await backend.put(backend.joinPath(storeRoot, name), name);
        expect((await listNames(backend, storeRoot, true)).sort()).toEqual([...names].sort());
        await expect(backend.rmtree(storeRoot)).rejects.toBeInstanceOf(InvalidPathError);
        await backend.rmtree(storeRoot, { allowRoot: true });
        expect(await listNames(backend, storeRoot, true)).toEqual([]);
        for (const name of names) expect(await backend.exists(backend.joinPath(storeRoot, name))).toBe(false);
      } finally {
        await scratch.dispose?.();
        await backend.close?.();
      }
    },
  },
  {
    name: 'every method honours an aborted signal with AbortedError',
    async run({ backend, dir }) {
      const file = backend.joinPath(dir, 'abort.txt');
      await backend.put(file, 'kept');
      const signal = AbortSignal.abort(new Error('stop'));
      const calls: [string, () => Promise<unknown>][] = [
        ['exists', () => backend.exists(file, { signal })],
        ['isFile', () => backend.isFile(file, { signal })],
        ['isDir', () => backend.isDir(dir, { signal })],
        ['stat', () => backend.stat(file, { signal })],
        ['put', () => backend.put(file, 'replaced', { signal })],
        ['putIfAbsent', () => backend.putIfAbsent(backend.joinPath(dir, 'abort-new.txt'), 'x', { signal })],
        ['get', () => backend.get(file, { signal })],
        [
          'getStream',
          async () => {
            for await (const _ of await backend.getStream(file, { signal }));
          },
        ],
        [
          'list',
          async () => {
            for await (const _ of backend.list(dir, { signal }));
          },
        ],
        ['remove', () => backend.remove(file, { signal })],
        ['rmtree', () => backend.rmtree(dir, { signal })],
        ['copy', () => backend.copy(file, backend.joinPath(dir, 'abort-copy.txt'), { signal })],
      ];
      for (const [name, call] of calls) await expect(call(), name).rejects.toBeInstanceOf(AbortedError);
      expect(text(await backend.get(file))).toBe('kept');
      expect(await backend.exists(backend.joinPath(dir, 'abort-new.txt'))).toBe(false);
      expect(await backend.exists(backend.joinPath(dir, 'abort-copy.txt'))).toBe(false);
    },
  },
  {
    name: 'one signal shared by many concurrent calls: no MaxListenersExceededWarning, and no listener left on it after',
    timeoutMs: 120_000,
    async run({ backend, dir }) {
      // A training run's signal covers every call it makes: Node warns at its 11th
      // listener, and a listener left behind per call grows with the run.
      const { signal } = new AbortController();
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
      process.on('warning', onWarning);
      try {
        const files = Array.from({ length: 24 }, (_, i) => backend.joinPath(dir, `shared-${i}.bin`));
        await Promise.all(files.map((file, i) => backend.put(file, new Uint8Array(1000).fill(i), { signal })));
        // Streams long enough for every store's multipart path.
        const big = (i: number) => backend.joinPath(dir, `shared-big-${i}.bin`);
        await Promise.all(
          [0, 1].map((i) => backend.put(big(i), patternStream(12 * 1024 * 1024, i + 1), { signal, contentType: 'x/y' })),
        );
        await Promise.all(files.map((file) => backend.get(file, { signal })));
        await Promise.all(files.map((file) => backend.get(file, { signal, range: { start: 10, end: 20 } })));
        await Promise.all([0, 1].map((i) => backend.get(big(i), { signal })));
        await Promise.all(files.map((file) => backend.stat(file, { signal })));
        await Promise.all(files.map((file) => backend.exists(file, { signal })));
        await Promise.all(files.map((file) => backend.isDir(file, { signal })));
        await Promise.all(files.map((file) => backend.putIfAbsent(`${file}.new`, 'x', { signal })));
        await Promise.all(files.map((file) => backend.copy(file, `${file}.copy`, { signal })));
        await Promise.all(
          files.map(async (file) => {
            for await (const _ of await backend.getStream(file, { signal }));
          }),
        );
        await Promise.all(
          files.slice(0, 12).map(async () => {
            for await (const _ of backend.list(dir, { signal }));
          }),
        );
        await Promise.all(files.map((file) => backend.remove(file, { signal })));
        await backend.rmtree(dir, { signal });
        // Warnings are emitted on a later tick.
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off('warning', onWarning);
      }
      expect(warnings).toEqual([]);
      expect(getEventListeners(signal, 'abort'), "abort listeners left on the caller's signal").toHaveLength(0);
    },
  },
  {
    name: 'stat of a folder is NotFoundError (a folder is not a file)',
    async run({ backend, dir }) {
      await backend.put(backend.joinPath(dir, 'folder', 'leaf'), 'x');
      await expect(backend.stat(backend.joinPath(dir, 'folder'))).rejects.toBeInstanceOf(NotFoundError);
    },
  },
  {
    name: 'put with stableChunks: chunks of odd sizes, past the multipart size, land byte for byte and are left unchanged',
    timeoutMs: 120_000,
    async run({ backend, dir }) {
      // What a checkpoint save sends: a small header, then views of tensors of every size;
      // a store may send them as views (no copies), so parts span chunks at odd offsets.
      const sizes = [37, 3 * 1024 * 1024 + 7, ...Array.from({ length: 100 }, () => 1024 + 3), 9 * 1024 * 1024 + 1, 5];
      const chunks = sizes.map((size, i) => randomBytes(size + (i % 3)).subarray(i % 3));
      const before = createHash('sha256');
      for (const chunk of chunks) before.update(chunk);
      const expected = before.digest('hex');
      async function* body() {
        yield* chunks;
      }
      const path = backend.joinPath(dir, 'stable-chunks.bin');
      await backend.put(path, body(), { stableChunks: true });
      const back = await backend.get(path);
      expect(back.byteLength).toBe(sizes.reduce((a, b) => a + b, 0));
      expect(createHash('sha256').update(back).digest('hex')).toBe(expected);
      const after = createHash('sha256');
      for (const chunk of chunks) after.update(chunk);
      expect(after.digest('hex'), "the caller's chunks were changed").toBe(expected);
    },
  },
  {
    name: "put never keeps the caller's buffers: a producer reusing its buffer cannot corrupt the object",
    timeoutMs: 120_000,
    async run({ backend, dir }) {
      const buffer = new Uint8Array(1000).fill(1);
      const small = backend.joinPath(dir, 'reused-small.bin');
      await backend.put(small, buffer);
      buffer.fill(2);
      expect((await backend.get(small)).every((b) => b === 1)).toBe(true);
      // A stream long enough to take every store's multipart path, from one reused buffer.
      const part = 256 * 1024;
      const parts = 48;
      const shared = new Uint8Array(part);
      async function* reuse() {
        for (let i = 0; i < parts; i++) {
          shared.fill(i);
          yield shared;
        }
      }
      const big = backend.joinPath(dir, 'reused-stream.bin');
      await backend.put(big, reuse());
      const back = await backend.get(big);
      expect(back.byteLength).toBe(part * parts);
      for (let i = 0; i < parts; i++) {
        const slice = back.subarray(i * part, (i + 1) * part);
        expect(
          slice.every((b) => b === i),
          `part ${i} holds another part's bytes`,
        ).toBe(true);
      }
    },
  },
  {
    name: 'property: rmtree and remove never delete outside their target (random keys with shared prefixes and odd characters)',
    timeoutMs: 600_000,
    async run({ backend, dir, caps }) {
      let round = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(SEGMENT, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 12 }),
          fc.array(SEGMENT, { minLength: 1, maxLength: 2 }),
          fc.nat(),
          async (rawKeys, target, pick) => {
            const base = backend.joinPath(dir, `p${round++}`);
            const usable = storable(rawKeys, caps.fileAndFolderSameName);
            const paths = usable.map((k) => backend.joinPath(base, ...k));
            for (const p of paths) await backend.put(p, p);
            const targetPath = backend.joinPath(base, ...target);
            const targetKey = target.join('/');
            await backend.rmtree(targetPath);
            for (const [i, k] of usable.entries()) {
              const inside = k.join('/').startsWith(`${targetKey}/`);
              expect(await backend.isFile(paths[i] as string), `${k.join('/')} after rmtree(${targetKey})`).toBe(!inside);
            }
            const survivors = usable.filter((k) => !k.join('/').startsWith(`${targetKey}/`));
            if (survivors.length > 0) {
              const victim = survivors[pick % survivors.length] as string[];
              await backend.remove(backend.joinPath(base, ...victim));
              for (const k of survivors) {
                expect(
                  await backend.isFile(backend.joinPath(base, ...k)),
                  `${k.join('/')} after remove(${victim.join('/')})`,
                ).toBe(k.join('/') !== victim.join('/'));
              }
            }
            await backend.rmtree(base);
          },
        ),
        { numRuns: caps.propertyRuns, seed: 20261129 },
      );
    },
  },
  ...STORAGE_API_CHECKS,
  ...FAULT_CHECKS,
];
