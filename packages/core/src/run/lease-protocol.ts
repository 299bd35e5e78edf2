// The messages between the main thread and the lease renewer's worker thread
// (lease-worker.ts, lease-worker-thread.ts). Everything in them is structured-cloneable:
// records, strings, plain backendArgs, and the lease's shared cell.
import type { BackendArgs, BackendSource } from '../store/registry.js';
import type { LeaseRecord } from './lease-steps.js';

/** What the worker needs to build its own store for a lease: the backend's name, where it registers, its arguments. */
export interface WorkerBackend {
  name: string;
  source: BackendSource;
  args: BackendArgs;
}

/** A lease handed to the worker: from then on only the worker writes it. */
export interface HandedLease {
  path: string;
  record: LeaseRecord;
  version: string;
  ttlMs: number;
  renewedAt: number;
}

export type ToWorker =
  | { kind: 'start'; request: number; id: number; lease: HandedLease; backend: WorkerBackend; cell: SharedArrayBuffer }
  | { kind: 'renew'; request: number; id: number }
  /** Stops renewing; with `remove`, deletes the lease while it is still the version the worker wrote. */
  | { kind: 'release'; request: number; id: number; remove: boolean };

/** A failure as it crosses threads (classes do not): rebuilt on the main thread. */
export interface WireError {
  name: string;
  message: string;
  code: string | undefined;
  backend: string | undefined;
}

export type FromWorker = { request: number; ok: true } | { request: number; ok: false; error: WireError };

/** What the worker writes in the cell when it finds the lease taken over (JSON). */
export interface LostDetail {
  now: LeaseRecord | undefined;
  exists: boolean;
}

export function toWire(error: unknown): WireError {
  const e = error as { name?: unknown; message?: unknown; code?: unknown; backend?: unknown } | undefined;
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(error),
    code: typeof e?.code === 'string' ? e.code : undefined,
    backend: typeof e?.backend === 'string' ? e.backend : undefined,
  };
}
