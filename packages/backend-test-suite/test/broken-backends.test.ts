// The suite must fail a backend that breaks the contract. Each broken backend
// wraps the correct local store and breaks one rule; runChecks must report it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StorageBackend } from '@savepoint/core';
import type {
  CopyOptions,
  ListEntry,
  ListOptions,
  ObjectStat,
  PutBody,
  PutOptions,
  RemoveOptions,
  SignedUrlOptions,
  StoreCapabilities,
} from '@savepoint/core/store';
import { PreconditionFailedError } from '@savepoint/core/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// A relative import, not a package dependency: backend-local depends on this suite for its own tests.
import { LocalBackend } from '../../backend-local/src/index.js';
import { CHECK_NAMES, FAULT_CHECK_NAME, runChecks } from '../src/index.js';

const caps = { largeObjectBytes: 1 << 20, manyKeys: 50, fileAndFolderSameName: false, http: false };

/** Forwards every call to a correct local store, so a subclass breaks exactly one rule. */
class Wrapped implements StorageBackend {
  readonly name = 'broken';
  constructor(protected readonly inner: LocalBackend) {}
  get capabilities(): StoreCapabilities {
    return this.inner.capabilities;
  }
  signedUrl(p: string, o: SignedUrlOptions) {
    return this.inner.signedUrl(p, o);
  }
  move(a: string, b: string, o?: CopyOptions) {
    return this.inner.move(a, b, o);
  }
  joinPath(base: string, ...parts: string[]) {
    return this.inner.joinPath(base, ...parts);
  }
  exists(p: string) {
    return this.inner.exists(p);
  }
  isFile(p: string) {
    return this.inner.isFile(p);
  }
  isDir(p: string) {
    return this.inner.isDir(p);
  }
  stat(p: string): Promise<ObjectStat> {
    return this.inner.stat(p);
  }
  put(p: string, body: PutBody, o?: PutOptions) {
    return this.inner.put(p, body, o);
  }
  putIfAbsent(p: string, body: Uint8Array | string, o?: PutOptions) {
    return this.inner.putIfAbsent(p, body, o);
  }
  get(p: string, o?: { range?: { start: number; end?: number } }) {
    return this.inner.get(p, o);
  }
  getStream(p: string, o?: { range?: { start: number; end?: number } }) {
    return this.inner.getStream(p, o);
  }
  list(p: string, o?: ListOptions): AsyncIterable<ListEntry> {
    return this.inner.list(p, o);
  }
  remove(p: string, o?: RemoveOptions) {
    return this.inner.remove(p, o);
  }
  rmtree(p: string, o?: { allowRoot?: boolean }) {
    return this.inner.rmtree(p, o);
  }
  copy(a: string, b: string, o?: CopyOptions) {
    return this.inner.copy(a, b, o);
  }
}

/** A store that declares its own part size: the torn-write checks must write several of these. */
const OWN_PART = 64 * 1024;

/**
 * A multipart upload that makes each part visible as it is written (a put per part over
 * what came before), and deletes it again on failure: after the failure nothing is left,
 * but a reader saw parts while it ran.
 */
class PartsVisibleAsWritten extends Wrapped {
  override get capabilities(): StoreCapabilities {
    return { ...this.inner.capabilities, partSizeBytes: OWN_PART };
  }
  override async put(p: string, body: PutBody, o?: PutOptions) {
    if (typeof body === 'string' || body instanceof Uint8Array) return this.inner.put(p, body, o);
    const had = await this.inner.isFile(p);
    const seen: Uint8Array[] = [];
    let pending = 0;
    try {
      for await (const chunk of body) {
        seen.push(chunk.slice());
        pending += chunk.byteLength;
        if (pending >= OWN_PART) {
          await this.inner.put(p, Buffer.concat(seen), o);
          pending = 0;
        }
      }
      await this.inner.put(p, Buffer.concat(seen), o);
    } catch (error) {
      if (!had) await this.inner.remove(p);
      throw error;
    }
  }
}

/** Pages by itself at 20 entries, and when given startAfter returns only its first page. */
class ListStopsAfterFirstPage extends Wrapped {
  override async *list(p: string, o?: ListOptions): AsyncIterable<ListEntry> {
    let count = 0;
    for await (const entry of this.inner.list(p, o)) {
      if (o?.startAfter !== undefined && count++ >= 20) return;
      yield entry;
    }
  }
}

/** A copy implemented as a rename. */
class CopyIsMove extends Wrapped {
  override copy(a: string, b: string, o?: CopyOptions) {
    return this.inner.move(a, b, o);
  }
}

/** Drops the caller's signal on a streamed put, though it honours one already aborted. */
class PutDropsSignal extends Wrapped {
  override put(p: string, body: PutBody, o?: PutOptions) {
    if (o?.signal?.aborted) return this.inner.put(p, body, o);
    return this.inner.put(p, body, { ...o, signal: undefined });
  }
}

/** A move that copies and leaves the source, as a backend missing its delete would. */
class MoveKeepsSource extends Wrapped {
  override move(a: string, b: string, o?: CopyOptions) {
    return this.inner.copy(a, b, o);
  }
}

/** Calls onProgress never: a backend that accepts the option and ignores it. */
class NoProgress extends Wrapped {
  override put(p: string, body: PutBody, o?: PutOptions) {
    return this.inner.put(p, body, { ...o, onProgress: undefined });
  }
}

/** Claims signed URLs on a store that cannot make them, and answers with a file path. */
class FakeSignedUrl extends Wrapped {
  override get capabilities(): StoreCapabilities {
    return { ...this.inner.capabilities, signedUrl: true };
  }
  override async signedUrl(p: string) {
    return `file://${p}`;
  }
}

/** Takes metadata and drops it silently, where the store should refuse it. */
class DropsMetadata extends Wrapped {
  override put(p: string, body: PutBody, o?: PutOptions) {
    return this.inner.put(p, body, { ...o, metadata: undefined });
  }
}

/** Deletes by raw string prefix, as a naive `ListObjects(prefix)` + delete would. */
class RawPrefixRmtree extends Wrapped {
  override async rmtree(p: string) {
    const parent = p.slice(0, p.lastIndexOf('/'));
    const stem = p.slice(p.lastIndexOf('/') + 1);
    for await (const entry of this.inner.list(parent)) {
      if (entry.name.startsWith(stem)) {
        if (entry.type === 'dir') await this.inner.rmtree(entry.path);
        else await this.inner.remove(entry.path);
      }
    }
  }
}

/** Fails a range that starts at or past the end, as a raw HTTP 416 would, instead of reading no bytes. */
class RefusesRangePastEnd extends Wrapped {
  override async get(p: string, o?: { range?: { start: number; end?: number } }) {
    if (o?.range && o.range.start >= (await this.inner.stat(p)).size) throw new Error('416 Range Not Satisfiable');
    return this.inner.get(p, o);
  }
}

/** Resolves `undefined` for a missing key instead of rejecting with NotFoundError. */
class UndefinedOnMissing extends Wrapped {
  override async get(p: string, o?: { range?: { start: number; end?: number } }) {
    if (!(await this.inner.isFile(p))) return undefined as unknown as Uint8Array;
    return this.inner.get(p, o);
  }
}

/** Writes straight to the final name, so a failed stream leaves a half-written object. */
class HalfWrittenPut extends Wrapped {
  override async put(p: string, body: PutBody, o?: PutOptions) {
    if (typeof body === 'string' || body instanceof Uint8Array) return this.inner.put(p, body, o);
    const seen: Uint8Array[] = [];
    try {
      for await (const chunk of body) {
        seen.push(chunk);
        await this.inner.put(p, Buffer.concat(seen), o);
      }
    } catch (error) {
      throw error;
    }
  }
}

/** Checks, then writes: two racing creators both "win", as a naive exists() + put() would. */
class CheckThenPut extends Wrapped {
  override async putIfAbsent(p: string, body: Uint8Array | string, o?: PutOptions) {
    if (await this.inner.isFile(p)) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await this.inner.put(p, body, o);
    return true;
  }
}

/** Drops the caller's signal on the read-only checks: an aborted job keeps issuing requests. */
class IgnoresAbort extends Wrapped {
  override exists(p: string) {
    return this.inner.exists(p);
  }
}

/** Resolves put before it has copied the caller's buffer, and writes it a moment later. */
class KeepsCallerBuffer extends Wrapped {
  override async put(p: string, body: PutBody, o?: PutOptions) {
    if (!(body instanceof Uint8Array)) return this.inner.put(p, body, o);
    const pending = new Promise((resolve) => setTimeout(resolve, 1)).then(() => this.inner.put(p, body, o));
    this.writes.push(pending);
  }
  override async get(p: string, o?: { range?: { start: number; end?: number } }) {
    await Promise.all(this.writes);
    return this.inner.get(p, o);
  }
  readonly writes: Promise<void>[] = [];
}

/**
 * Subscribes to the caller's signal on a get and never lets go, as a naive
 * `signal.addEventListener` would (on the first few gets only: enough to be left
 * behind, too few for Node to print a warning into the test log).
 */
class LeaksAbortListeners extends Wrapped {
  #leaked = 0;
  override get(p: string, o?: { range?: { start: number; end?: number }; signal?: AbortSignal }) {
    if (o?.signal && this.#leaked++ < 3) o.signal.addEventListener('abort', () => {});
    return this.inner.get(p, o);
  }
}

/** Answers stat of a folder with a size, as if it were a file. */
class StatsFolders extends Wrapped {
  override async stat(p: string) {
    if (await this.inner.isDir(p)) return { path: p, size: 0, version: 'folder' };
    return this.inner.stat(p);
  }
}

/** Drops `ifMatch`: every conditional put and remove goes through, as a backend that never heard of it would. */
class IgnoresIfMatch extends Wrapped {
  override put(p: string, body: PutBody, o?: PutOptions) {
    return this.inner.put(p, body, { ...o, ifMatch: undefined });
  }
  override remove(p: string, o?: RemoveOptions) {
    return this.inner.remove(p, { ...o, ifMatch: undefined });
  }
}

/** A stat without the version, as a backend written before compare-and-swap would answer. */
class StatDropsVersion extends Wrapped {
  override async stat(p: string) {
    const { version: _dropped, ...rest } = await this.inner.stat(p);
    return rest as ObjectStat;
  }
}

/** Compares with a stat, then writes without a condition: two writers from one version both win. */
class CompareThenPut extends Wrapped {
  override async put(p: string, body: PutBody, o?: PutOptions) {
    if (o?.ifMatch === undefined) return this.inner.put(p, body, o);
    const now = await this.inner.stat(p).then(
      (st) => st.version,
      () => undefined,
    );
    if (now !== o.ifMatch) throw new PreconditionFailedError(p, o.ifMatch, { backend: this.name });
    await new Promise((resolve) => setTimeout(resolve, 5));
    return this.inner.put(p, body, { ...o, ifMatch: undefined });
  }
}

/** With `allowRoot`, deletes only the files directly in the root, as a non-recursive sweep would. */
class ShallowRootRmtree extends Wrapped {
  override async rmtree(p: string, o?: { allowRoot?: boolean }) {
    if (!o?.allowRoot) return this.inner.rmtree(p, o);
    for await (const entry of this.inner.list(p)) if (entry.type === 'file') await this.inner.remove(entry.path);
  }
}

/** A scratch store for the `allowRoot` check: a new root folder, wrapped like the backend under test. */
function scratchFor(wrap: (inner: LocalBackend) => StorageBackend = (inner) => inner) {
  return async () => {
    const storeRoot = await mkdtemp(join(tmpdir(), 'savepoint-broken-scratch-'));
    return {
      backend: wrap(new LocalBackend({ root: storeRoot })),
      storeRoot,
      dispose: () => rm(storeRoot, { recursive: true, force: true }),
    };
  };
}

describe('the contract suite fails broken backends', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'savepoint-broken-'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('passes the correct local backend (the control)', async () => {
    const failures = await runChecks(new LocalBackend({ root }), root, { caps, storeRoot: root, scratchStore: scratchFor() });
    expect(failures.map((f) => `${f.check}: ${String(f.error)}`)).toEqual([]);
  }, 60_000);

  it('fails an rmtree that deletes by raw prefix', async () => {
    const failures = await runChecks(new RawPrefixRmtree(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain('rmtree deletes exactly the folder: run1 never touches run10/ or run1.txt');
  }, 60_000);

  it('fails a get that resolves undefined for a missing key', async () => {
    const failures = await runChecks(new UndefinedOnMissing(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain(
      'not found: get, getStream and stat reject with NotFoundError; checks resolve false; deletes succeed',
    );
  }, 60_000);

  it('fails a get that rejects a range past the end instead of reading no bytes', async () => {
    const failures = await runChecks(new RefusesRangePastEnd(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain(
      'ranges at or past the end read no bytes; an empty range of a missing object is still NotFoundError',
    );
  }, 60_000);

  it('fails a backend that ignores an aborted signal', async () => {
    const failures = await runChecks(new IgnoresAbort(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain('every method honours an aborted signal with AbortedError');
  }, 60_000);

  it("fails a put that keeps the caller's buffer", async () => {
    const failures = await runChecks(new KeepsCallerBuffer(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain(
      "put never keeps the caller's buffers: a producer reusing its buffer cannot corrupt the object",
    );
  }, 60_000);

  it("fails a backend that leaves a listener on the caller's signal for every call", async () => {
    const failures = await runChecks(new LeaksAbortListeners(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain(
      'one signal shared by many concurrent calls: no MaxListenersExceededWarning, and no listener left on it after',
    );
  }, 60_000);

  it('fails a stat that answers for a folder', async () => {
    const failures = await runChecks(new StatsFolders(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain('stat of a folder is NotFoundError (a folder is not a file)');
  }, 60_000);

  it('fails a backend whose test context names no store root, rather than skipping the check', async () => {
    const failures = await runChecks(new LocalBackend(), root, { caps });
    expect(failures.map((f) => f.check)).toContain('rmtree of the store root is refused unless asked for');
  }, 60_000);

  it('fails an rmtree with allowRoot that leaves nested objects behind', async () => {
    const failures = await runChecks(new ShallowRootRmtree(new LocalBackend()), root, {
      caps,
      scratchStore: scratchFor((inner) => new ShallowRootRmtree(inner)),
    });
    expect(failures.map((f) => f.check)).toContain('rmtree of a store root with { allowRoot: true } empties it');
  }, 60_000);

  it('fails a backend whose test context gives no scratch store, rather than skipping the allowRoot check', async () => {
    const failures = await runChecks(new LocalBackend(), root, {
      caps,
      only: ['rmtree of a store root with { allowRoot: true } empties it'],
    });
    expect(failures.map((f) => f.check)).toEqual(['rmtree of a store root with { allowRoot: true } empties it']);
  }, 60_000);

  it('fails a conditional create that checks and then writes', async () => {
    const failures = await runChecks(new CheckThenPut(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain(
      'putIfAbsent creates only when nothing is there; of racing creators exactly one wins',
    );
  }, 60_000);

  it('fails a backend that ignores ifMatch on put and remove', async () => {
    const failures = (await runChecks(new IgnoresIfMatch(new LocalBackend()), root, { caps })).map((f) => f.check);
    expect(failures).toContain(
      'put with ifMatch replaces only the current version; a stale or missing one is refused and nothing changes',
    );
    expect(failures).toContain('remove with ifMatch deletes only that version; a missing object succeeds');
    expect(failures).toContain('of concurrent ifMatch writers from one version exactly one wins, round after round');
  }, 60_000);

  it('fails a stat that drops the version', async () => {
    const failures = await runChecks(new StatDropsVersion(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain(
      'stat gives a version that stays while the object does and changes on every replace',
    );
  }, 60_000);

  it('fails a conditional put that compares and then writes', async () => {
    const failures = await runChecks(new CompareThenPut(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain(
      'of concurrent ifMatch writers from one version exactly one wins, round after round',
    );
  }, 60_000);

  it('fails a put that is visible half-written', async () => {
    const failures = await runChecks(new HalfWrittenPut(new LocalBackend()), root, { caps });
    expect(failures.map((f) => f.check)).toContain('a put whose stream fails leaves nothing visible, and keeps the old object');
  }, 60_000);

  it('fails an HTTP backend whose test context gives no throughProxy, rather than skipping the fault check', async () => {
    const failures = await runChecks(new LocalBackend(), root, { caps: { ...caps, http: true }, only: [FAULT_CHECK_NAME] });
    expect(failures.map((f) => f.check)).toEqual([FAULT_CHECK_NAME]);
    expect(String(failures[0]?.error)).toMatch(/throughProxy/);
  }, 60_000);

  // The classes of mutants a backend author's own mutants survived (issue 28), each killed.
  const mutants: [string, StorageBackend, string][] = [
    [
      'a streamed put that makes each part visible as it is written',
      new PartsVisibleAsWritten(new LocalBackend()),
      CHECK_NAMES.tornFailed,
    ],
    [
      'a list that stops after the first page when given startAfter',
      new ListStopsAfterFirstPage(new LocalBackend()),
      CHECK_NAMES.listPagingMany,
    ],
    ['a copy implemented as a move', new CopyIsMove(new LocalBackend()), CHECK_NAMES.copyKeepsSource],
    ["a put that drops the caller's signal", new PutDropsSignal(new LocalBackend()), CHECK_NAMES.tornAborted],
    ['a move that keeps its source', new MoveKeepsSource(new LocalBackend()), CHECK_NAMES.move],
    ['a put that never reports progress', new NoProgress(new LocalBackend()), CHECK_NAMES.progress],
    ['a signed URL that no HTTP client can fetch', new FakeSignedUrl(new LocalBackend()), CHECK_NAMES.signedUrl],
    ['a put that drops metadata instead of refusing it', new DropsMetadata(new LocalBackend()), CHECK_NAMES.metadata],
  ];
  for (const [what, backend, check] of mutants) {
    it(`fails ${what}`, async () => {
      const failures = await runChecks(backend, root, { caps, only: [check] });
      expect(failures.map((f) => f.check)).toEqual([check]);
    }, 60_000);
  }
});
