// A store wrapper that records every call and can make one fail: the tool behind
// the policy engine's crash-ordering tests and its store-calls-per-save benchmark.
import type { SignalOptions, StorageBackend } from '@savepoint/core';
import type {
  CopyOptions,
  GetOptions,
  ListEntry,
  ListOptions,
  ObjectStat,
  PutBody,
  PutOptions,
  RemoveOptions,
  RmtreeOptions,
  SignedUrlOptions,
  StoreCapabilities,
} from '@savepoint/core/store';

export type Operation =
  | 'exists'
  | 'isFile'
  | 'isDir'
  | 'stat'
  | 'put'
  | 'putIfAbsent'
  | 'get'
  | 'getStream'
  | 'list'
  | 'remove'
  | 'rmtree'
  | 'copy'
  | 'move'
  | 'signedUrl'
  | 'removeIncompleteWrites';

export interface Call {
  op: Operation;
  path: string;
}

/** `before`: the call fails without touching the store. `after`: it takes effect, then fails (a crash before the answer). */
export type Fault = 'before' | 'after' | undefined;

export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

export const MUTATING_OPERATIONS: readonly Operation[] = ['put', 'putIfAbsent', 'remove', 'rmtree', 'copy', 'move'];

export class InstrumentedBackend implements StorageBackend {
  readonly calls: Call[] = [];
  /** Once set, every later call fails too: the process is "dead". */
  stopped = false;

  constructor(
    readonly inner: StorageBackend,
    private readonly decide: (call: Call, index: number) => Fault = () => undefined,
  ) {}

  get name(): string {
    return this.inner.name;
  }
  get capabilities(): StoreCapabilities {
    return this.inner.capabilities;
  }

  async #run<T>(op: Operation, path: string, action: () => Promise<T>): Promise<T> {
    if (this.stopped) throw new InjectedFault(`store stopped (${op} ${path})`);
    const call = { op, path };
    this.calls.push(call);
    const fault = this.decide(call, this.calls.length - 1);
    if (fault === 'before') {
      this.stopped = true;
      throw new InjectedFault(`injected failure before ${op} ${path}`);
    }
    const result = await action();
    if (fault === 'after') {
      this.stopped = true;
      throw new InjectedFault(`injected failure after ${op} ${path}`);
    }
    return result;
  }

  joinPath(base: string, ...parts: string[]): string {
    return this.inner.joinPath(base, ...parts);
  }
  exists(path: string, o?: SignalOptions) {
    return this.#run('exists', path, () => this.inner.exists(path, o));
  }
  isFile(path: string, o?: SignalOptions) {
    return this.#run('isFile', path, () => this.inner.isFile(path, o));
  }
  isDir(path: string, o?: SignalOptions) {
    return this.#run('isDir', path, () => this.inner.isDir(path, o));
  }
  stat(path: string, o?: SignalOptions): Promise<ObjectStat> {
    return this.#run('stat', path, () => this.inner.stat(path, o));
  }
  put(path: string, body: PutBody, o?: PutOptions) {
    return this.#run('put', path, () => this.inner.put(path, body, o));
  }
  putIfAbsent(path: string, body: Uint8Array | string, o?: PutOptions) {
    return this.#run('putIfAbsent', path, () => this.inner.putIfAbsent(path, body, o));
  }
  removeIncompleteWrites(path: string, o?: SignalOptions): Promise<number> {
    return this.#run('removeIncompleteWrites', path, async () => (await this.inner.removeIncompleteWrites?.(path, o)) ?? 0);
  }
  get(path: string, o?: GetOptions) {
    return this.#run('get', path, () => this.inner.get(path, o));
  }
  getStream(path: string, o?: GetOptions) {
    return this.#run('getStream', path, () => this.inner.getStream(path, o));
  }
  async *list(path: string, o?: ListOptions): AsyncIterable<ListEntry> {
    const entries = await this.#run('list', path, async () => {
      const out: ListEntry[] = [];
      for await (const entry of this.inner.list(path, o)) out.push(entry);
      return out;
    });
    yield* entries;
  }
  remove(path: string, o?: RemoveOptions) {
    return this.#run('remove', path, () => this.inner.remove(path, o));
  }
  rmtree(path: string, o?: RmtreeOptions) {
    return this.#run('rmtree', path, () => this.inner.rmtree(path, o));
  }
  copy(source: string, destination: string, o?: CopyOptions) {
    return this.#run('copy', source, () => this.inner.copy(source, destination, o));
  }
  move(source: string, destination: string, o?: CopyOptions) {
    return this.#run('move', source, () => this.inner.move(source, destination, o));
  }
  signedUrl(path: string, o: SignedUrlOptions) {
    return this.#run('signedUrl', path, () => this.inner.signedUrl(path, o));
  }
}
