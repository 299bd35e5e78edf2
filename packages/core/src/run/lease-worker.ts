// The main thread's side of the lease renewer: one worker thread per process
// (lease-worker-thread.ts) renews every lease handed to it, so that a training step
// holding the main thread (a synchronous `model.fit` epoch, a CPU-bound loop) does not
// let the lease expire and another job take the run over. One worker for all leases:
// starting one costs tens of milliseconds plus the cloud SDK's import, and test suites
// open hundreds of hooks. It starts with the first lease, is `unref()`'d (it never
// keeps a process alive; it is ref'd only while the main thread awaits an answer, so
// a last `await lease.release()` is not cut short), and stops shortly after the last
// lease is released.
//
// The worker builds its own store through the registry, so the lease's store must be
// one the registry built from plain `backendArgs`, with a backend registered with its
// source module (`registerBackend(..., { source })`, as the four savepoint backends
// do). Otherwise (a store instance passed in, a backend registered without a source,
// arguments holding functions or class instances) `workerBackendFor` says why, and
// the lease is renewed on the main thread as before.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  AbortedError,
  BackendError,
  ConfigError,
  PermissionDeniedError,
  SavepointError,
  type SavepointErrorCode,
  TransientError,
} from '../store/errors.js';
import { type BackendArgs, backendSource, resolveBackendName } from '../store/registry.js';
import type { LeaseCell } from './lease-cell.js';
import type { FromWorker, HandedLease, ToWorker, WireError, WorkerBackend } from './lease-protocol.js';

/** Emitted next to this file by `tsc -b`, in the workspace and in a packed tarball alike. */
const WORKER_URL = new URL('./lease-worker-thread.js', import.meta.url);
/** How long the worker stays after the last lease is released, for the next one (a test suite's next hook). */
const IDLE_MS = 1_000;

/** The worker thread is gone (it crashed or could not start): the main thread takes its leases back. */
export class WorkerGone extends Error {
  override readonly name = 'WorkerGone';
}

/** Whether `value` is made only of what crosses threads unchanged: no functions, no class instances. */
function isPlainData(value: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (value === null || value === undefined) return true;
  const type = typeof value;
  if (type === 'string' || type === 'number' || type === 'boolean') return true;
  if (type !== 'object') return false; // functions, symbols, bigints
  if (Array.isArray(value)) return value.every((item) => isPlainData(item, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  return Object.values(value as Record<string, unknown>).every((item) => isPlainData(item, depth + 1));
}

/**
 * What the worker needs to build the store of the lease at `path` from `backendArgs`
 * (the arguments the main thread built that store with), or why it cannot: then the
 * lease is renewed on the main thread.
 */
export function workerBackendFor(path: string, backendArgs: BackendArgs | undefined): WorkerBackend | string {
  if (backendArgs === undefined) return 'the store was passed in as an instance, which cannot cross to another thread';
  if (!isPlainData(backendArgs)) {
    return 'backendArgs hold functions or class instances, which cannot cross to another thread';
  }
  let name: string;
  try {
    name = resolveBackendName(path, backendArgs);
  } catch (error) {
    return String((error as Error).message);
  }
  const source = backendSource(name);
  if (!source) return `backend "${name}" was registered without a source module (registerBackend's source option)`;
  if (WORKER_URL.protocol === 'file:' && !existsSync(fileURLToPath(WORKER_URL))) {
    return `${fileURLToPath(WORKER_URL)} is not there (core is running from its TypeScript sources, not its build)`;
  }
  return { name, source, args: backendArgs };
}

const ERROR_CLASSES: Partial<Record<SavepointErrorCode, (message: string, backend: string | undefined) => SavepointError>> = {
  TRANSIENT: (m, backend) => new TransientError(m, { backend }),
  PERMISSION_DENIED: (m, backend) => new PermissionDeniedError(m, { backend }),
  CONFIG: (m, backend) => new ConfigError(m, { backend }),
  ABORTED: (m, backend) => new AbortedError(m, { backend }),
};

/** A failure in the worker, as an error of the one hierarchy (the class by its code; the message as it was). */
function fromWire(error: WireError): SavepointError {
  const make = error.code && ERROR_CLASSES[error.code as SavepointErrorCode];
  if (make) return make(error.message, error.backend);
  if (error.code && error.backend) {
    return new SavepointError(error.code as SavepointErrorCode, error.message, { backend: error.backend });
  }
  return new BackendError(`the lease renewer's worker thread: ${error.name}: ${error.message}`);
}

/**
 * The process's node flags for the worker (a loader such as `--import tsx` must apply
 * there too), without `--input-type`, which node refuses for a worker's file: a job
 * started with `node --input-type=module -e ...` would otherwise have no worker.
 */
function workerExecArgv(): string[] {
  const flags: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const flag = process.execArgv[i] as string;
    if (flag === '--input-type') i++;
    else if (!flag.startsWith('--input-type=')) flags.push(flag);
  }
  return flags;
}

interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

class LeaseRenewer {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  /** The leases the worker renews, each with what to do if the worker goes away. */
  readonly #leases = new Map<number, () => void>();
  #nextId = 1;
  #nextRequest = 1;
  #idle: ReturnType<typeof setTimeout> | undefined;

  /** Hands a lease to the worker. Resolves once the worker built its store and renews it; rejects if it cannot. */
  async start(lease: HandedLease, backend: WorkerBackend, cell: LeaseCell, onGone: () => void): Promise<number> {
    const id = this.#nextId++;
    this.#leases.set(id, onGone);
    clearTimeout(this.#idle);
    try {
      await this.#send((request) => ({ kind: 'start', request, id, lease, backend, cell: cell.buffer }));
      return id;
    } catch (error) {
      this.#leases.delete(id);
      this.#stopWhenIdle();
      throw error;
    }
  }

  /** Renews now (an explicit `renew()`, or a hook call that found the worker late). */
  renew(id: number): Promise<void> {
    return this.#send((request) => ({ kind: 'renew', request, id }));
  }

  /** Stops renewing the lease and, with `remove`, deletes it while it is still the worker's version. */
  async release(id: number, remove: boolean): Promise<void> {
    try {
      await this.#send((request) => ({ kind: 'release', request, id, remove }));
    } finally {
      this.#leases.delete(id);
      this.#stopWhenIdle();
    }
  }

  #send(build: (request: number) => ToWorker): Promise<void> {
    const worker = this.#spawn();
    const request = this.#nextRequest++;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(request, { resolve, reject });
      if (this.#pending.size === 1) worker.ref(); // an answer is awaited: the process must wait for it
      try {
        worker.postMessage(build(request));
      } catch (error) {
        this.#settle(request)?.reject(error as Error);
      }
    });
  }

  #settle(request: number): Pending | undefined {
    const pending = this.#pending.get(request);
    this.#pending.delete(request);
    if (this.#pending.size === 0) this.#worker?.unref();
    return pending;
  }

  #spawn(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_URL, { name: 'savepoint lease renewer', execArgv: workerExecArgv() });
    worker.unref();
    worker.on('message', (message: FromWorker) => {
      const pending = this.#settle(message.request);
      if (message.ok) pending?.resolve();
      else pending?.reject(fromWire(message.error));
    });
    const gone = (why: string) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      clearTimeout(this.#idle);
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending) p.reject(new WorkerGone(why));
      const leases = [...this.#leases.values()];
      this.#leases.clear();
      for (const takeBack of leases) takeBack();
    };
    worker.on('error', (error) => gone(`the lease renewer's worker thread failed: ${error.message}`));
    worker.on('exit', (code) => gone(`the lease renewer's worker thread exited with code ${code}`));
    this.#worker = worker;
    return worker;
  }

  #stopWhenIdle(): void {
    if (this.#leases.size > 0 || this.#pending.size > 0 || !this.#worker) return;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      const worker = this.#worker;
      if (!worker || this.#leases.size > 0 || this.#pending.size > 0) return;
      this.#worker = undefined;
      void worker.terminate();
    }, IDLE_MS);
    this.#idle.unref();
  }
}

let renewer: LeaseRenewer | undefined;

/** The process's renewer (one per copy of core: two copies each start their own worker). */
export function leaseRenewer(): LeaseRenewer {
  renewer ??= new LeaseRenewer();
  return renewer;
}

export type { LeaseRenewer };
