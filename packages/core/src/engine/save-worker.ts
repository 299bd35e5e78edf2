// (ours) Background saves off the main thread. A training step that holds the thread
// (a TensorFlow.js `fit` epoch, a synchronous loop) also stops every upload running on
// it: its sockets are only served when the event loop is free. With `asyncSave`, the
// hook hands each save point to this worker thread instead, and the worker encodes,
// hashes, uploads, moves the pointer and deletes, in the same commit-before-delete
// order, with its own store clients built from `backendArgs` by the registry. It moves
// the pointer for the hook's lease (the fence is handed over, fenced-pointer.ts, and
// back when the hook closes).
//
// The state is copied once, into the hook's snapshot in shared memory (snapshot.ts),
// and the save point is handed over by reference before the hook call returns: the
// worker reads the snapshot where it is, and the next save point reuses its buffers
// once this one is done. (A structured clone of ordinary buffers copied the state twice
// at the hand-over, 2.2x to 2.6x the state at its peak; transferring them detached them
// from the training thread, and measured a TensorFlow.js `fit` 15% slower.)
//
// A store passed in as an instance cannot cross threads, and a backend registered
// without a source module (`registerBackend(..., { source })`) cannot be rebuilt in
// one: then the saves stay on the main thread (`saveWorkerPlan` says why).
import { Worker } from 'node:worker_threads';
import { isTypedArray, Tensor, type TypedArray } from '../format/tensor.js';
import type { FenceState } from '../run/fenced-pointer.js';
import type { CheckpointLayout } from '../run/run.js';
import { type ErrorOnTheWire, errorFromWire } from '../store/errors.js';
import { type BackendArgs, type BackendSource, backendSource, resolveBackendName } from '../store/registry.js';
import type { Logger } from './runner.js';
import type { SaveStep } from './save-steps.js';

/** How the worker opens the run: the same options the hook opens it with, all of them plain data. */
export interface SaveWorkerSpec {
  workDir: string;
  outDir: string | undefined;
  filenameTmpl: string;
  metrics: readonly string[] | undefined;
  backendArgs: BackendArgs;
  layout: CheckpointLayout;
  sources: BackendSource[];
  fence: { state: FenceState; leasePath: string; tookOver: boolean } | undefined;
}

/** Messages between the hook and its worker. */
export type ToWorker =
  | { type: 'run'; id: number; steps: WireStep[] }
  | { type: 'close'; id: number }
  | { type: 'abort' }
  /** Stop save point `id` if it has not committed (its pointer move not started). */
  | { type: 'supersede'; id: number };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'done'; id: number; logs: LogLine[]; fence?: FenceState | undefined }
  | { type: 'failed'; id: number; error: ErrorOnTheWire; logs: LogLine[] };
export type LogLine = ['info' | 'warn', string];

/** A step with its checkpoint in a form `postMessage` keeps (a `Tensor` is sent as its parts). */
export type WireStep = SaveStep;
const TENSOR_TAG = '__savepoint_tensor__';

/** The checkpoint for the worker: a `Tensor` is sent as its parts (`postMessage` keeps no class); typed arrays go as they are (shared memory is shared, not copied). */
export function checkpointToWire(value: unknown): unknown {
  if (value instanceof Tensor) return { [TENSOR_TAG]: true, data: value.data, shape: [...value.shape], dtype: value.dtype };
  if (isTypedArray(value)) return value;
  if (Array.isArray(value)) return value.map((item) => checkpointToWire(item));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, checkpointToWire(item)]));
  }
  return value;
}

/** The checkpoint as the worker received it, with its tensors rebuilt. */
export function checkpointFromWire(value: unknown): unknown {
  if (isTypedArray(value)) return value;
  if (Array.isArray(value)) return value.map((item) => checkpointFromWire(item));
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (record[TENSOR_TAG] === true) {
      return new Tensor(record.data as TypedArray, record.shape as number[], record.dtype as Tensor['dtype']);
    }
    return Object.fromEntries(Object.entries(record).map(([key, item]) => [key, checkpointFromWire(item)]));
  }
  return value;
}

const WORKER_URL = new URL('./save-worker-thread.js', import.meta.url);

/**
 * Whether the save worker can carry this run's saves, and with which backend sources;
 * or why not (then they stay on the main thread).
 */
export function saveWorkerPlan(
  paths: readonly string[],
  backendArgs: BackendArgs,
): { sources: BackendSource[] } | { reason: string } {
  // Under a test runner that loads TypeScript sources there is no built worker file to start.
  if (WORKER_URL.pathname.endsWith('.ts') || import.meta.url.endsWith('.ts')) {
    return { reason: 'core is loaded from TypeScript sources, and a worker thread needs its built JavaScript' };
  }
  const sources: BackendSource[] = [];
  for (const path of paths) {
    const name = resolveBackendName(path, backendArgs);
    const source = backendSource(name);
    if (!source) return { reason: `backend "${name}" was registered without a source module another thread can import` };
    if (/\.[cm]?ts$/.test(source.module))
      return { reason: `backend "${name}" is loaded from TypeScript sources (${source.module})` };
    if (!sources.some((s) => s.module === source.module && s.register === source.register)) sources.push(source);
  }
  try {
    structuredClone(backendArgs);
  } catch {
    return { reason: 'backendArgs hold something a worker thread cannot receive (a function or a class instance)' };
  }
  return { sources };
}

export class SaveWorker {
  readonly #worker: Worker;
  readonly #logger: () => Logger;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve: (value: FromWorker) => void; reject: (error: unknown) => void }>();
  #ready: Promise<void>;
  #exited: Error | undefined;
  #closing: Promise<FenceState | undefined> | undefined;
  readonly #onAbort: (() => void) | undefined;
  readonly #signal: AbortSignal | undefined;

  constructor(spec: SaveWorkerSpec, logger: () => Logger, signal: AbortSignal | undefined) {
    this.#logger = logger;
    this.#worker = new Worker(WORKER_URL, { workerData: spec });
    // Never what keeps a process alive: the hook waits for its saves itself (flush, afterTrain, close).
    this.#worker.unref();
    let ready!: () => void;
    let failedToStart!: (error: unknown) => void;
    this.#ready = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failedToStart = reject;
    });
    this.#ready.catch(() => {});
    this.#worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') return ready();
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      waiter?.resolve(message);
    });
    const fail = (error: Error) => {
      this.#exited ??= error;
      failedToStart(error);
      for (const waiter of this.#pending.values()) waiter.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`the save worker stopped (exit code ${code})`)));
    this.#signal = signal;
    if (signal) {
      this.#onAbort = () => this.#worker.postMessage({ type: 'abort' } satisfies ToWorker);
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  /** Posts at once (a port keeps what arrives before the worker listens), so the save starts even if this thread is held next. */
  #send(message: ToWorker & { id: number }): Promise<FromWorker> {
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise<FromWorker>((resolve, reject) => {
      // Referenced while an answer is awaited: a script whose only work left is this save
      // (`await trainer.train()` at its end) must not exit before it commits.
      if (this.#pending.size === 0) this.#worker.ref();
      const settle = () => {
        if (this.#pending.size === 0) this.#worker.unref();
      };
      this.#pending.set(message.id, {
        resolve: (value) => {
          settle();
          resolve(value);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      this.#worker.postMessage(message);
    });
  }

  /** Hands the save point over before it returns (no await first): the caller may hold the thread right after. */
  run(steps: readonly SaveStep[], supersede?: AbortSignal): Promise<undefined> {
    const wire = steps.map((step) =>
      step.kind === 'save' ? { ...step, checkpoint: checkpointToWire(step.checkpoint) as Record<string, unknown> } : step,
    );
    const id = this.#nextId++;
    const onSupersede = () => this.#worker.postMessage({ type: 'supersede', id } satisfies ToWorker);
    supersede?.addEventListener('abort', onSupersede, { once: true });
    const sent = this.#send({ type: 'run', id, steps: wire });
    // Superseded before it was even sent: the worker stops it before its first write.
    if (supersede?.aborted) onSupersede();
    return sent
      .finally(() => supersede?.removeEventListener('abort', onSupersede))
      .then((answer) => {
        if (answer.type === 'ready') throw new Error('the save worker answered out of turn');
        const logger = this.#logger();
        for (const [level, text] of answer.logs) logger[level](text);
        if (answer.type === 'failed') throw errorFromWire(answer.error);
        return undefined;
      });
  }

  /** Stops the worker once the steps it was given are done; resolves the fence as it left it. */
  close(): Promise<FenceState | undefined> {
    this.#closing ??= (async () => {
      if (this.#onAbort) this.#signal?.removeEventListener('abort', this.#onAbort);
      let fence: FenceState | undefined;
      try {
        const answer = await this.#send({ type: 'close', id: this.#nextId++ });
        fence = answer.type === 'done' ? answer.fence : undefined;
      } catch {
        fence = undefined;
      }
      await this.#worker.terminate();
      return fence;
    })();
    return this.#closing;
  }
}
