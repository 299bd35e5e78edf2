// One writer per run. A lease object in the work dir names the writer (owner id,
// process identity) and an expiry that the holder keeps pushing forward while it
// trains. Every change to it is a compare-and-swap on the version last seen:
// - acquire creates it (putIfAbsent), or takes a stale one over by a conditional
//   replace of the version it judged stale, never delete + create, so of two jobs
//   taking over one lease exactly one wins, and each take-over adds 1 to `generation`;
// - renew replaces the version this holder last wrote: a holder paused past its
//   expiry and taken over gets a precondition failure and marks itself lost;
// - release deletes the version this holder last wrote, so never a successor's lease.
// A lease is stale when it expired, or when its holder is provably dead: the same
// kernel boot and PID namespace as this process, and its pid gone or reused
// (process-identity.ts). Never by pid and hostname alone: two containers share those.
//
// Renewal runs on a worker thread when it can (lease-worker.ts): a synchronous
// training step holds the main thread, no timer fires and no hook is called for
// minutes, and the lease would expire under a live job. The worker then owns the
// lease's version (it alone writes the lease: two renewers would each see the other's
// write as a take-over) and says what it found through shared memory (lease-cell.ts),
// so `lost` and `renewIfDue()` stay synchronous and cheap here. A store the worker
// cannot build (an instance passed in) keeps the main thread's timer and hook calls.
import { randomUUID } from 'node:crypto';
import { isThisProcess, processIdentity, processState } from '../kit/process-identity.js';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { LeaseHeldError, PreconditionFailedError, type SavepointError } from '../store/errors.js';
import type { BackendArgs } from '../store/registry.js';
import { LeaseCell, LOST } from './lease-cell.js';
import { heldMessage, lostMessage, takeoverFailedMessage } from './lease-messages.js';
import type { LostDetail } from './lease-protocol.js';
import { JSON_TYPE, type LeaseRecord, parseLease, readLease, releaseStep, renewStep } from './lease-steps.js';
import { leaseRenewer, WorkerGone, workerBackendFor } from './lease-worker.js';

export { type LeaseRecord, parseLease };

/** How long a lease lasts without renewal when nothing else is said. */
export const DEFAULT_LEASE_TTL_MS = 60_000;
/** Rounds of create / read / take over before giving up on a lease other jobs keep replacing. */
const ATTEMPTS = 6;

export interface AcquireLeaseOptions extends SignalOptions {
  /** How long the lease lasts without renewal. A crashed holder on another host blocks the run this long. */
  ttlMs: number;
  purpose: string;
  /**
   * The lowest generation this lease may get: a run passes the generation its pointer
   * recorded, so the count never goes back after a released (deleted) lease.
   */
  minGeneration?: number | undefined;
  /** Told when a stale lease is taken over. */
  onTakeover?: (previous: LeaseRecord | undefined, why: string) => void;
  /**
   * The registry arguments `store` was built with (`getBackend(path, backendArgs)`): with
   * them a worker thread builds a store of its own and renews the lease while the main
   * thread is busy. Undefined for a store passed in as an instance: renewed on the main thread.
   */
  backendArgs?: BackendArgs | undefined;
}

/** Which thread renews a lease, and why not the worker when it is the main thread. */
export type LeaseRenewal = { thread: 'worker' } | { thread: 'main'; why: string };

/** Owner ids of leases this process holds and has not released (one set across duplicate copies of core). */
const ACTIVE_KEY = Symbol.for('savepoint.activeLeases');
const globalLeases = globalThis as { [ACTIVE_KEY]?: Set<string> };
globalLeases[ACTIVE_KEY] ??= new Set<string>();
const ACTIVE: Set<string> = globalLeases[ACTIVE_KEY];

/** Why a lease no longer protects anyone, or undefined while its holder may still be writing. */
export function staleReason(lease: LeaseRecord | undefined, now = Date.now()): string | undefined {
  if (!lease) return 'the lease file is not a savepoint lease';
  if (Date.parse(lease.expiresAt) <= now) return `it expired at ${lease.expiresAt}`;
  if (isThisProcess(lease.process)) return ACTIVE.has(lease.owner) ? undefined : 'its holder in this process has stopped';
  if (processState(lease.process) === 'dead') return `its process ${lease.pid} on ${lease.host} is gone`;
  return undefined;
}

export function describeLease(lease: LeaseRecord): string {
  return `${lease.purpose} (owner ${lease.owner}, host ${lease.host}, pid ${lease.pid}, generation ${lease.generation}) until ${lease.expiresAt}`;
}

export class RunLease {
  readonly store: StorageBackend;
  readonly path: string;
  readonly #record: LeaseRecord;
  readonly #ttlMs: number;
  /** What a worker thread builds its own store from; undefined for a store passed in. */
  readonly #backendArgs: BackendArgs | undefined;
  #version: string;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lost: SavepointError | undefined;
  #released = false;
  /** Renewals run one after another: two at once would each see the other's write as a take-over. */
  #queue: Promise<unknown> = Promise.resolve();
  /** When the last renewal (or the acquisition) was sent: `renewIfDue` renews after a third of the TTL. */
  #renewedAt = Date.now();
  /** Set while the worker thread renews this lease: it owns the version then, and publishes it in the cell. */
  #worker: { id: number; cell: LeaseCell } | undefined;
  #renewal: LeaseRenewal | undefined;
  /** Whether this lease was taken over from another holder (then the pointer is fenced even before the first save). */
  readonly tookOver: boolean;

  private constructor(
    store: StorageBackend,
    path: string,
    record: LeaseRecord,
    version: string,
    options: Pick<AcquireLeaseOptions, 'ttlMs' | 'backendArgs'>,
    tookOver: boolean,
  ) {
    this.store = store;
    this.path = path;
    this.#record = record;
    this.#version = version;
    this.#ttlMs = options.ttlMs;
    this.#backendArgs = options.backendArgs;
    this.tookOver = tookOver;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** This holder's lease as last written (its expiry moves with each renewal). */
  get record(): LeaseRecord {
    this.#sync();
    return this.#record;
  }

  /** Takes the lease at `path`, or throws `LeaseHeldError` naming the live holder. */
  static async acquire(store: StorageBackend, path: string, options: AcquireLeaseOptions): Promise<RunLease> {
    const owner = randomUUID();
    // Active before the first write: another acquirer in this process that reads our lease
    // between our write and our return must see a live holder, not an abandoned one.
    ACTIVE.add(owner);
    try {
      return await RunLease.#acquire(store, path, owner, options);
    } catch (error) {
      ACTIVE.delete(owner);
      throw error;
    }
  }

  static async #acquire(store: StorageBackend, path: string, owner: string, options: AcquireLeaseOptions): Promise<RunLease> {
    const identity = processIdentity();
    const floor = Math.max(1, options.minGeneration ?? 1);
    const signal = { signal: options.signal };
    const recordOf = (generation: number): LeaseRecord => {
      const now = Date.now();
      return {
        format: 'savepoint.lease',
        owner,
        host: identity.host,
        pid: identity.pid,
        purpose: options.purpose,
        acquiredAt: new Date(now).toISOString(),
        expiresAt: new Date(now + options.ttlMs).toISOString(),
        generation,
        process: identity,
      };
    };
    let last: LeaseRecord | undefined;
    // Once any holder's lease was replaced by us (even if a later round lost it again), later rounds count as a take-over.
    let tookOver = false;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (await store.putIfAbsent(path, JSON.stringify(recordOf(floor)), { ...signal, ...JSON_TYPE })) {
        const mine = await RunLease.#adopt(store, path, owner, options, signal, tookOver);
        if (mine) return mine;
        continue; // replaced right after it was created: look at who holds it now
      }
      const held = await readLease(store, path, signal);
      if (held === null) continue; // released between our two calls: try again
      // Our create or take-over landed but its answer was lost, and a retry saw our own object.
      if (held.record?.owner === owner) return new RunLease(store, path, held.record, held.version, options, tookOver);
      last = held.record;
      const why = staleReason(held.record);
      if (why === undefined) throw new LeaseHeldError(heldMessage(path, held.record as LeaseRecord), { ...held.record });
      options.onTakeover?.(held.record, why);
      // The take-over replaces exactly the version judged stale: of jobs doing it at once, one wins.
      const generation = Math.max((held.record?.generation ?? 0) + 1, floor);
      try {
        await store.put(path, JSON.stringify(recordOf(generation)), { ...signal, ...JSON_TYPE, ifMatch: held.version });
      } catch (error) {
        if (error instanceof PreconditionFailedError) continue; // someone else changed it first: read it again
        throw error;
      }
      tookOver = true;
      const mine = await RunLease.#adopt(store, path, owner, options, signal, tookOver);
      if (mine) return mine;
    }
    throw new LeaseHeldError(takeoverFailedMessage(path, ATTEMPTS, last), last ? { ...last } : undefined);
  }

  /** After a write of ours: the lease with the version of what is there, if it is still ours. */
  static async #adopt(
    store: StorageBackend,
    path: string,
    owner: string,
    options: AcquireLeaseOptions,
    signal: SignalOptions,
    tookOver: boolean,
  ): Promise<RunLease | undefined> {
    const held = await readLease(store, path, signal);
    if (held?.record?.owner !== owner) return undefined;
    return new RunLease(store, path, held.record, held.version, options, tookOver);
  }

  /**
   * Set when renewal found the lease taken by someone else; the holder must stop writing.
   * Synchronous: a loss the worker thread found is read from shared memory, so a loop
   * that checks it between steps sees it even while its event loop never turned.
   */
  get lost(): SavepointError | undefined {
    if (!this.#lost && this.#worker?.cell.state === LOST) this.#sync();
    return this.#lost;
  }

  /** The fencing generation of this holder: higher than every holder's before it on this lease. */
  get generation(): number {
    return this.#record.generation;
  }

  /** The store's version of the lease as this holder last wrote it (what renew and release compare with). */
  get version(): string {
    this.#sync();
    return this.#version;
  }

  /** Which thread renews this lease (undefined before `startRenewing`), and why not a worker when it is the main thread. */
  get renewal(): LeaseRenewal | undefined {
    return this.#renewal && { ...this.#renewal };
  }

  /** Marks the lease lost (the fenced pointer found a newer holder): every later write of this holder is refused with `error`. */
  markLost(error: SavepointError): void {
    this.#lost ??= error;
  }

  /**
   * Renews when more than a third of the TTL has passed since the last renewal, so a
   * loop whose steps hold the thread (no timer can fire) still renews at every hook
   * call. Cheap when not due (no I/O). Throws only when the lease is lost; a failed
   * renewal for another reason is tried again at the next call, and raised once the
   * lease has expired by this process's clock (it may have been taken over by then).
   * With the worker thread renewing, a call renews only when the worker has fallen
   * behind (its store failing): it would otherwise be a second writer for nothing.
   */
  async renewIfDue(): Promise<void> {
    const lost = this.lost;
    if (lost) throw lost;
    if (this.#released) return;
    this.#sync();
    const due = this.#worker ? (this.#ttlMs * 2) / 3 : this.#ttlMs / 3;
    if (Date.now() - this.#renewedAt < due) return;
    try {
      await this.renew();
    } catch (error) {
      if (this.lost || Date.parse(this.#record.expiresAt) <= Date.now()) throw error;
    }
  }

  /** Pushes the expiry forward. Throws (and remembers) `LeaseHeldError` if another writer took it. */
  renew(options: SignalOptions = {}): Promise<void> {
    const next = this.#queue.then(() => this.#renewOnce(options));
    this.#queue = next.catch(() => {});
    return next;
  }

  async #renewOnce(options: SignalOptions): Promise<void> {
    if (this.#released) return;
    const lost = this.lost;
    if (lost) throw lost;
    const worker = this.#worker;
    if (worker) {
      // The worker owns the version: it renews, and this thread reads what it wrote.
      try {
        await leaseRenewer().renew(worker.id);
      } catch (error) {
        if (!(error instanceof WorkerGone)) throw error;
        this.#takeBack();
        return this.#renewOnce(options);
      }
      this.#sync();
      if (this.#lost) throw this.#lost;
      return;
    }
    const outcome = await renewStep(this.store, this.path, this.#record, this.#version, this.#ttlMs, options);
    if (!outcome.held) {
      this.#lost = this.#lostError(outcome);
      throw this.#lost;
    }
    this.#version = outcome.version;
    this.#record.expiresAt = outcome.expiresAt;
    this.#renewedAt = outcome.sentAt;
  }

  #lostError(found: LostDetail): LeaseHeldError {
    return new LeaseHeldError(lostMessage(this.path, this.#record, found.now, found.exists), found.now && { ...found.now });
  }

  /** Copies what the worker last published (version, expiry, a loss) into this object. No I/O: a few atomic reads. */
  #sync(): void {
    const worker = this.#worker;
    if (!worker) return;
    const { version, renewedAt, expiresAt } = worker.cell.read();
    this.#version = version;
    this.#renewedAt = renewedAt;
    this.#record.expiresAt = new Date(expiresAt).toISOString();
    if (!this.#lost && worker.cell.state === LOST) {
      let found: LostDetail = { now: undefined, exists: true };
      try {
        found = JSON.parse(worker.cell.lostDetail()) as LostDetail;
      } catch {
        // too long to share: told as a lease file that no longer holds a savepoint lease
      }
      this.#lost = this.#lostError(found);
    }
  }

  /**
   * Renews every third of the TTL in the background: on the process's lease worker
   * thread when it can build this lease's store (from `backendArgs` and the registry),
   * so a synchronous training step that holds the main thread for longer than the TTL
   * keeps the lease; otherwise (a store passed in as an instance, a backend registered
   * without a source module) on a timer of this thread, which such a step holds up.
   * Resolves once renewal runs, saying where; never rejects: a worker that cannot
   * start leaves the timer. Failures other than a lost lease are retried next time.
   */
  async startRenewing(): Promise<LeaseRenewal | undefined> {
    if (this.#renewal || this.#released) return this.renewal;
    const backend = workerBackendFor(this.path, this.#backendArgs);
    if (typeof backend === 'string') return this.#onMainThread(backend);
    this.#renewal = { thread: 'worker' };
    // On the queue: a renewal of this thread in flight lands before the worker gets the version.
    const handing = this.#queue.then(async () => {
      if (this.#released || this.#lost) return;
      const cell = new LeaseCell();
      const lease = {
        path: this.path,
        record: { ...this.#record },
        version: this.#version,
        ttlMs: this.#ttlMs,
        renewedAt: this.#renewedAt,
      };
      try {
        const id = await leaseRenewer().start(lease, backend, cell, () => this.#takeBack());
        this.#worker = { id, cell };
      } catch (error) {
        this.#onMainThread(`the worker thread could not build its store (${(error as Error).message})`);
      }
    });
    this.#queue = handing.catch(() => {});
    await handing;
    return this.renewal;
  }

  #onMainThread(why: string): LeaseRenewal {
    this.#renewal = { thread: 'main', why };
    if (!this.#timer && !this.#released && !this.#lost) {
      this.#timer = setInterval(
        () => {
          this.renew().catch(() => {});
        },
        Math.max(250, Math.floor(this.#ttlMs / 3)),
      );
      this.#timer.unref?.();
    }
    return { ...this.#renewal };
  }

  /** The worker thread is gone: this thread renews again, from the version the worker last published. */
  #takeBack(): void {
    if (!this.#worker) return;
    this.#sync();
    this.#worker = undefined;
    this.#onMainThread('the worker thread stopped');
  }

  /**
   * Gives the lease up: deletes it only while it is still the version this holder wrote.
   * Safe to call twice. With the worker renewing, the worker stops and deletes it (it
   * holds the version; one thread writes the lease); `options.signal` cannot cross to it.
   */
  async release(options: SignalOptions = {}): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#released) return;
    this.#released = true;
    ACTIVE.delete(this.#record.owner);
    await this.#queue; // a renewal in flight moves the version
    const worker = this.#worker;
    if (worker) {
      try {
        await leaseRenewer().release(worker.id, !this.lost);
        return;
      } catch (error) {
        if (!(error instanceof WorkerGone)) throw error;
        // The worker died first: this thread deletes what the worker last wrote.
      } finally {
        this.#sync();
        this.#worker = undefined;
      }
    }
    if (this.#lost) return;
    await releaseStep(this.store, this.path, this.#record.owner, this.#version, options);
  }
}
