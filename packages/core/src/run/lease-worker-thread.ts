// The lease renewer's worker thread (started by lease-worker.ts): it renews the leases
// the main thread hands it, on its own event loop, so a training step that holds the
// main thread for minutes (a synchronous `model.fit`) does not let the lease expire.
// Its registry starts empty: each lease names the module that registers its backend,
// imported here once, and the worker builds its own store from the same backendArgs.
// Once a lease is handed over, this thread is the only one that writes it, and it
// says what it found in the lease's shared cell (lease-cell.ts), never in a message
// the busy main thread could not read.
import { parentPort } from 'node:worker_threads';
import type { StorageBackend } from '../store/contract.js';
import { getBackend } from '../store/registry.js';
import { LeaseCell } from './lease-cell.js';
import type { FromWorker, HandedLease, LostDetail, ToWorker, WorkerBackend } from './lease-protocol.js';
import { toWire } from './lease-protocol.js';
import { type LeaseRecord, releaseStep, renewStep } from './lease-steps.js';

interface Served {
  store: StorageBackend;
  path: string;
  record: LeaseRecord;
  version: string;
  ttlMs: number;
  cell: LeaseCell;
  timer: ReturnType<typeof setInterval> | undefined;
  /** Renewals one after another: two at once would each see the other's write as a take-over. */
  queue: Promise<unknown>;
  lost: boolean;
  released: boolean;
}

const served = new Map<number, Served>();
/** Registration modules already imported and called, by module and export. */
const registered = new Map<string, Promise<void>>();

function register({ source }: WorkerBackend): Promise<void> {
  const key = `${source.module}#${source.register}`;
  let done = registered.get(key);
  if (!done) {
    done = import(source.module).then((module: Record<string, unknown>) => {
      const fn = module[source.register];
      if (typeof fn !== 'function') throw new Error(`${source.module} has no function ${source.register}`);
      fn();
    });
    // A failed import is tried again by the next lease (it may have been a passing error).
    done.catch(() => registered.delete(key));
    registered.set(key, done);
  }
  return done;
}

async function start(id: number, lease: HandedLease, backend: WorkerBackend, buffer: SharedArrayBuffer): Promise<void> {
  await register(backend);
  const store = getBackend(lease.path, { ...backend.args, backend: backend.name });
  const cell = new LeaseCell(buffer);
  cell.publish({ version: lease.version, renewedAt: lease.renewedAt, expiresAt: Date.parse(lease.record.expiresAt) });
  const lease_: Served = { ...lease, store, cell, timer: undefined, queue: Promise.resolve(), lost: false, released: false };
  served.set(id, lease_);
  cell.start();
  lease_.timer = setInterval(
    () => {
      renew(lease_).catch(() => {}); // tried again at the next tick; the main thread sees the expiry come near
    },
    Math.max(250, Math.floor(lease.ttlMs / 3)),
  );
}

function renew(lease: Served): Promise<void> {
  const next = lease.queue.then(async () => {
    if (lease.lost || lease.released) return;
    const outcome = await renewStep(lease.store, lease.path, lease.record, lease.version, lease.ttlMs, {});
    if (!outcome.held) {
      lease.lost = true;
      clearInterval(lease.timer);
      const detail: LostDetail = { now: outcome.now, exists: outcome.exists };
      lease.cell.markLost(JSON.stringify(detail));
      return;
    }
    lease.version = outcome.version;
    lease.record = { ...lease.record, expiresAt: outcome.expiresAt };
    lease.cell.publish({ version: outcome.version, renewedAt: outcome.sentAt, expiresAt: Date.parse(outcome.expiresAt) });
  });
  lease.queue = next.catch(() => {});
  return next;
}

async function release(id: number, remove: boolean): Promise<void> {
  const lease = served.get(id);
  if (!lease) return;
  served.delete(id);
  lease.released = true;
  clearInterval(lease.timer);
  await lease.queue; // a renewal in flight moves the version
  try {
    if (remove && !lease.lost) await releaseStep(lease.store, lease.path, lease.record.owner, lease.version, {});
  } finally {
    lease.cell.markReleased();
    await lease.store.close?.();
  }
}

async function handle(message: ToWorker): Promise<void> {
  if (message.kind === 'start') return start(message.id, message.lease, message.backend, message.cell);
  if (message.kind === 'release') return release(message.id, message.remove);
  const lease = served.get(message.id);
  if (lease) await renew(lease);
}

const port = parentPort;
port?.on('message', (message: ToWorker) => {
  handle(message).then(
    () => port.postMessage({ request: message.request, ok: true } satisfies FromWorker),
    (error: unknown) => port.postMessage({ request: message.request, ok: false, error: toWire(error) } satisfies FromWorker),
  );
});
