// Checks of the storage API beyond the checkpoint engine's needs (metadata, move,
// progress, list paging, signed URLs), and of torn writes at the store's own part size.
// Each reads the backend's declared `capabilities`: a store is tested at its own sizes
// and for what it says it does; what it says it cannot do must fail with UnsupportedError.
import {
  ConfigError,
  type ListEntry,
  type ListOptions,
  NotFoundError,
  type StorageBackend,
  type TransferProgress,
  UnsupportedError,
} from '@savepoint/core/store';
import { expect } from 'vitest';
import type { ContractCheck } from './contract-check.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Part size used where a store writes streams whole (local disk): still several chunks. */
const WHOLE_STREAM_PART = 256 * 1024;

/** The part size a torn-write check writes several of: the store's own, as declared. */
export function partSizeOf(backend: StorageBackend): number {
  return backend.capabilities.partSizeBytes ?? WHOLE_STREAM_PART;
}

async function entries(backend: StorageBackend, dir: string, options: ListOptions = {}): Promise<ListEntry[]> {
  const out: ListEntry[] = [];
  for await (const entry of backend.list(dir, options)) out.push(entry);
  return out;
}

/** Paths as listed, a folder's with a `/` after it. */
async function names(backend: StorageBackend, dir: string, options: ListOptions = {}): Promise<string[]> {
  return (await entries(backend, dir, options)).map((entry) => `${entry.path}${entry.type === 'dir' ? '/' : ''}`);
}

/** Every page of `limit` entries, each started after the last entry of the one before. */
async function paged(backend: StorageBackend, dir: string, limit: number, recursive: boolean): Promise<string[][]> {
  const pages: string[][] = [];
  let startAfter: ListEntry | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await entries(backend, dir, { recursive, limit, ...(startAfter === undefined ? {} : { startAfter }) });
    if (page.length === 0) break;
    pages.push(page.map((entry) => `${entry.path}${entry.type === 'dir' ? '/' : ''}`));
    startAfter = page.at(-1);
  }
  return pages;
}

/** `parts` full parts of `part` bytes each (part i filled with i+1), then `tail` bytes; `pause(i)` runs before part i. */
async function* partsOf(part: number, parts: number, tail: number, pause?: (index: number) => Promise<void>) {
  const chunk = Math.min(part, 1 << 20);
  for (let index = 0; index < parts; index++) {
    await pause?.(index);
    for (let sent = 0; sent < part; sent += chunk) yield new Uint8Array(Math.min(chunk, part - sent)).fill(index + 1);
  }
  if (tail > 0) yield new Uint8Array(tail).fill(parts + 1);
}

function recorder() {
  const events: TransferProgress[] = [];
  return {
    events,
    onProgress: (progress: TransferProgress) => events.push({ ...progress }),
    /** Called at least once, never going back, ending at `total`. */
    expectComplete(total: number, what: string) {
      expect(events.length, `${what}: onProgress was never called`).toBeGreaterThan(0);
      for (let i = 1; i < events.length; i++)
        expect((events[i] as TransferProgress).bytes, `${what}: progress went back`).toBeGreaterThanOrEqual(
          (events[i - 1] as TransferProgress).bytes,
        );
      expect(events.at(-1)?.bytes, `${what}: the last progress is not the whole`).toBe(total);
    },
  };
}

export const CHECK_NAMES = {
  metadata: 'put stores contentType and metadata and stat returns them (or the store declares it keeps none)',
  move: 'move: the destination gets the whole object and the source is gone; a missing source moves nothing',
  copyKeepsSource: 'copy leaves the source as it was (a copy is not a move)',
  progress: 'onProgress on put, get, getStream and copy reports bytes up to the whole',
  listPaging: 'list with limit and startAfter pages through one level and a whole tree',
  /** In contract-checks.ts: it reuses the keys that check writes past one page of the store. */
  listPagingMany: 'listing and rmtree page past 1,000 keys, also from a startAfter',
  signedUrl: 'signedUrl: a plain fetch reads and writes through the URL (or the store declares it cannot)',
  tornFailed: 'a streamed put of several parts that fails shows no part while it runs or after, and keeps the old object',
  tornAborted: 'an abort in the middle of a put of several parts stops it: nothing visible, the old object kept',
} as const;

export const STORAGE_API_CHECKS: readonly ContractCheck[] = [
  {
    name: CHECK_NAMES.metadata,
    async run({ backend, dir }) {
      const p = backend.joinPath(dir, 'meta.json');
      const metadata = { step: '1200', runid: 'abc-1' };
      if (!backend.capabilities.metadata) {
        await expect(backend.put(p, '{}', { metadata })).rejects.toBeInstanceOf(UnsupportedError);
        expect(await backend.exists(p)).toBe(false);
        return;
      }
      await backend.put(p, '{}', { contentType: 'application/json', metadata });
      const stat = await backend.stat(p);
      expect(stat.contentType).toBe('application/json');
      expect(stat.metadata).toEqual(metadata);
      // A streamed put (past one request) keeps them too.
      const big = backend.joinPath(dir, 'meta-stream.bin');
      await backend.put(big, partsOf(partSizeOf(backend), 1, 10), { contentType: 'application/x-test', metadata });
      const bigStat = await backend.stat(big);
      expect(bigStat.contentType).toBe('application/x-test');
      expect(bigStat.metadata).toEqual(metadata);
      // A copy keeps them; a put without them stores none.
      const copied = backend.joinPath(dir, 'meta-copy.json');
      await backend.copy(p, copied);
      expect((await backend.stat(copied)).metadata).toEqual(metadata);
      await backend.put(p, '{}');
      expect((await backend.stat(p)).metadata ?? {}).toEqual({});
      // Refused before any request: a key no store keeps as written, a value no header carries.
      await expect(backend.put(p, 'x', { metadata: { 'Bad-Key': 'v' } })).rejects.toBeInstanceOf(ConfigError);
      await expect(backend.put(p, 'x', { metadata: { k: 'é\n' } })).rejects.toBeInstanceOf(ConfigError);
      expect(text(await backend.get(p))).toBe('{}');
    },
  },
  {
    name: CHECK_NAMES.move,
    async run({ backend, dir }) {
      const src = backend.joinPath(dir, 'from.bin');
      const dst = backend.joinPath(dir, 'to', 'moved.bin');
      await backend.put(src, 'moving bytes');
      await backend.move(src, dst);
      expect(text(await backend.get(dst))).toBe('moving bytes');
      expect(await backend.exists(src)).toBe(false);
      // Over an existing destination: replaced whole.
      await backend.put(src, 'second');
      await backend.move(src, dst);
      expect(text(await backend.get(dst))).toBe('second');
      await expect(backend.move(backend.joinPath(dir, 'nothing'), dst)).rejects.toBeInstanceOf(NotFoundError);
      expect(text(await backend.get(dst))).toBe('second');
      // Onto itself: still there.
      await backend.move(dst, dst);
      expect(text(await backend.get(dst))).toBe('second');
    },
  },
  {
    name: CHECK_NAMES.copyKeepsSource,
    async run({ backend, dir }) {
      const src = backend.joinPath(dir, 'original.bin');
      await backend.put(src, 'source bytes');
      const before = await backend.stat(src);
      await backend.copy(src, backend.joinPath(dir, 'duplicate.bin'));
      expect(await backend.isFile(src)).toBe(true);
      expect(text(await backend.get(src))).toBe('source bytes');
      expect((await backend.stat(src)).version, 'copy rewrote its source').toBe(before.version);
    },
  },
  {
    name: CHECK_NAMES.progress,
    timeoutMs: 120_000,
    async run({ backend, dir }) {
      const small = backend.joinPath(dir, 'progress-small.bin');
      const put = recorder();
      await backend.put(small, new Uint8Array(1000), { onProgress: put.onProgress });
      put.expectComplete(1000, 'put of bytes');
      const part = partSizeOf(backend);
      const total = 2 * part + 10;
      const big = backend.joinPath(dir, 'progress-big.bin');
      const stream = recorder();
      await backend.put(big, partsOf(part, 2, 10), { onProgress: stream.onProgress });
      stream.expectComplete(total, 'streamed put');
      expect(stream.events.length, 'a streamed put of several parts reports before its end').toBeGreaterThan(1);
      const get = recorder();
      expect((await backend.get(big, { onProgress: get.onProgress })).byteLength).toBe(total);
      get.expectComplete(total, 'get');
      const read = recorder();
      let bytes = 0;
      for await (const chunk of await backend.getStream(big, { onProgress: read.onProgress })) bytes += chunk.byteLength;
      expect(bytes).toBe(total);
      read.expectComplete(total, 'getStream');
      const copy = recorder();
      await backend.copy(small, backend.joinPath(dir, 'progress-copy.bin'), { onProgress: copy.onProgress });
      copy.expectComplete(1000, 'copy');
    },
  },
  {
    name: CHECK_NAMES.listPaging,
    async run({ backend, dir }) {
      // A folder `b` beside `b.txt`, which sorts before it: the order must hold across pages.
      const keys = ['a.txt', 'b/1', 'b/2', 'b.txt', 'b-c', 'c/d/e', 'f', 'g/h', 'i'];
      for (const key of keys) await backend.put(backend.joinPath(dir, key), key);
      for (const recursive of [false, true]) {
        const all = await names(backend, dir, { recursive });
        for (const limit of [1, 2, 3]) {
          const pages = await paged(backend, dir, limit, recursive);
          expect(pages.flat(), `pages of ${limit}${recursive ? ', recursive' : ''}`).toEqual(all);
          // Only the last page may be short.
          for (const page of pages.slice(0, -1)) expect(page.length).toBe(limit);
        }
      }
      await expect(names(backend, dir, { limit: 0 })).rejects.toBeInstanceOf(ConfigError);
      await expect(names(backend, dir, { limit: 1.5 })).rejects.toBeInstanceOf(ConfigError);
    },
  },
  {
    name: CHECK_NAMES.signedUrl,
    async run({ backend, dir }) {
      const p = backend.joinPath(dir, 'signed.bin');
      if (!backend.capabilities.signedUrl) {
        await expect(backend.signedUrl(p, { action: 'read', expiresInMs: 60_000 })).rejects.toBeInstanceOf(UnsupportedError);
        return;
      }
      await expect(backend.signedUrl(p, { action: 'read', expiresInMs: 0 })).rejects.toBeInstanceOf(ConfigError);
      await expect(backend.signedUrl(p, { action: 'delete' as 'read', expiresInMs: 60_000 })).rejects.toBeInstanceOf(ConfigError);
      const write = await backend.signedUrl(p, { action: 'write', expiresInMs: 60_000 });
      const body = new Uint8Array(3000).map((_, i) => i % 251);
      // Azure needs its blob type on a plain PUT; other stores ignore the header.
      const put = await fetch(write, { method: 'PUT', body, headers: { 'x-ms-blob-type': 'BlockBlob' } });
      expect(put.status, `PUT through the signed URL: ${await put.clone().text()}`).toBeLessThan(300);
      expect([...(await backend.get(p))]).toEqual([...body]);
      const read = await backend.signedUrl(p, { action: 'read', expiresInMs: 60_000 });
      const got = await fetch(read);
      expect(got.status).toBe(200);
      expect([...new Uint8Array(await got.arrayBuffer())]).toEqual([...body]);
    },
  },
  {
    name: CHECK_NAMES.tornFailed,
    timeoutMs: 240_000,
    async run({ backend, dir }) {
      const part = partSizeOf(backend);
      const fresh = backend.joinPath(dir, 'torn-fresh.bin');
      const existing = backend.joinPath(dir, 'torn-existing.bin');
      await backend.put(existing, 'old content');
      for (const target of [fresh, existing]) {
        // Three whole parts, then (while the put runs) a look at what a reader sees, then the source fails.
        const body = partsOf(part, 4, 0, async (index) => {
          if (index < 3) return;
          if (target === fresh) expect(await backend.exists(fresh), 'parts of a running put are visible').toBe(false);
          else expect(text(await backend.get(existing)), 'parts of a running put replaced the object').toBe('old content');
          throw new Error('source failed after three parts');
        });
        await expect(backend.put(target, body)).rejects.toThrow();
      }
      expect(await backend.exists(fresh), 'a failed put of several parts left an object').toBe(false);
      expect(text(await backend.get(existing))).toBe('old content');
      expect((await names(backend, dir)).map((p) => p.slice(p.lastIndexOf('/') + 1))).toEqual(['torn-existing.bin']);
    },
  },
  {
    name: CHECK_NAMES.tornAborted,
    timeoutMs: 240_000,
    async run({ backend, dir }) {
      const part = partSizeOf(backend);
      const existing = backend.joinPath(dir, 'abort-existing.bin');
      const fresh = backend.joinPath(dir, 'abort-fresh.bin');
      await backend.put(existing, 'old content');
      for (const target of [fresh, existing]) {
        const controller = new AbortController();
        // The source goes on to its end after the abort: only the signal can stop the put.
        const body = partsOf(part, 4, 10, async (index) => {
          if (index === 3) controller.abort(new Error('stop after three parts'));
        });
        await expect(backend.put(target, body, { signal: controller.signal }), 'an aborted put succeeded').rejects.toThrow();
      }
      expect(await backend.exists(fresh), 'an aborted put of several parts left an object').toBe(false);
      expect(text(await backend.get(existing))).toBe('old content');
    },
  },
];
