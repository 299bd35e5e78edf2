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
import { randomUUID } from 'node:crypto';
import {
  isThisProcess,
  type ProcessIdentity,
  parseProcessIdentity,
  processIdentity,
  processState,
} from '../kit/process-identity.js';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { LeaseHeldError, NotFoundError, PreconditionFailedError, type SavepointError } from '../store/errors.js';
import { heldMessage, lostMessage, takeoverFailedMessage } from './lease-messages.js';

/** How long a lease lasts without renewal when nothing else is said. */
export const DEFAULT_LEASE_TTL_MS = 60_000;
/** Rounds of create / read / take over before giving up on a lease other jobs keep replacing. */
const ATTEMPTS = 6;
const JSON_TYPE = { contentType: 'application/json' };

export interface LeaseRecord {
  format: 'savepoint.lease';
  owner: string;
  host: string;
  pid: number;
  /** What holds it: `training`, `prune`, ... */
  purpose: string;
  acquiredAt: string;
  expiresAt: string;
  /** Fencing generation: 1 for a new lease, one more on every take-over. 0 for a lease written before generations. */
  generation: number;
  /** The holder's identity across hosts and PID namespaces; absent in old leases (then only expiry counts). */
  process?: ProcessIdentity | undefined;
}

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
}

/** Owner ids of leases this process holds and has not released (one set across duplicate copies of core). */
const ACTIVE_KEY = Symbol.for('savepoint.activeLeases');
const globalLeases = globalThis as { [ACTIVE_KEY]?: Set<string> };
globalLeases[ACTIVE_KEY] ??= new Set<string>();
const ACTIVE: Set<string> = globalLeases[ACTIVE_KEY];

/** Parses a lease read back from the store; anything malformed is undefined (and may be taken over). */
export function parseLease(bytes: Uint8Array): LeaseRecord | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as Partial<LeaseRecord>;
    if (
      value?.format !== 'savepoint.lease' ||
      typeof value.owner !== 'string' ||
      typeof value.host !== 'string' ||
      typeof value.pid !== 'number' ||
      typeof value.expiresAt !== 'string' ||
      Number.isNaN(Date.parse(value.expiresAt))
    )
      return undefined;
    const generation = Number.isSafeInteger(value.generation) && (value.generation as number) >= 0 ? value.generation : 0;
    return { ...value, generation, process: parseProcessIdentity(value.process) } as LeaseRecord;
  } catch {
    return undefined;
  }
}

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

interface ReadLease {
  version: string;
  /** Undefined when the object there is not a savepoint lease. */
  record: LeaseRecord | undefined;
}

/**
 * The lease and its version, or null when there is none. The version is read first:
 * when the lease changes between the two reads, the bytes are newer than the version
 * and a write on that version fails. (The other order could write on a version whose
 * bytes were never read.)
 */
async function readLease(store: StorageBackend, path: string, options: SignalOptions): Promise<ReadLease | null> {
  try {
    const { version } = await store.stat(path, options);
    return { version, record: parseLease(await store.get(path, { ...options, range: { start: 0, end: 8192 } })) };
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

export class RunLease {
  readonly store: StorageBackend;
  readonly path: string;
  readonly record: LeaseRecord;
  readonly #ttlMs: number;
  #version: string;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lost: SavepointError | undefined;
  #released = false;
  /** Renewals run one after another: two at once would each see the other's write as a take-over. */
  #queue: Promise<unknown> = Promise.resolve();

  /** When the last renewal (or the acquisition) was sent: `renewIfDue` renews after a third of the TTL. */
  #renewedAt = Date.now();
  /** Whether this lease was taken over from another holder (then the pointer is fenced even before the first save). */
  readonly tookOver: boolean;

  private constructor(
    store: StorageBackend,
    path: string,
    record: LeaseRecord,
    version: string,
    ttlMs: number,
    tookOver: boolean,
  ) {
    this.store = store;
    this.path = path;
    this.record = record;
    this.#version = version;
    this.#ttlMs = ttlMs;
    this.tookOver = tookOver;
  }

  get ttlMs(): number {
    return this.#ttlMs;
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
        const mine = await RunLease.#adopt(store, path, owner, options.ttlMs, signal, tookOver);
        if (mine) return mine;
        continue; // replaced right after it was created: look at who holds it now
      }
      const held = await readLease(store, path, signal);
      if (held === null) continue; // released between our two calls: try again
      // Our create or take-over landed but its answer was lost, and a retry saw our own object.
      if (held.record?.owner === owner) return new RunLease(store, path, held.record, held.version, options.ttlMs, tookOver);
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
      const mine = await RunLease.#adopt(store, path, owner, options.ttlMs, signal, tookOver);
      if (mine) return mine;
    }
    throw new LeaseHeldError(takeoverFailedMessage(path, ATTEMPTS, last), last ? { ...last } : undefined);
  }

  /** After a write of ours: the lease with the version of what is there, if it is still ours. */
  static async #adopt(
    store: StorageBackend,
    path: string,
    owner: string,
    ttlMs: number,
    options: SignalOptions,
    tookOver: boolean,
  ): Promise<RunLease | undefined> {
    const held = await readLease(store, path, options);
    if (held?.record?.owner !== owner) return undefined;
    return new RunLease(store, path, held.record, held.version, ttlMs, tookOver);
  }

  /** Set when renewal found the lease taken by someone else; the holder must stop writing. */
  get lost(): SavepointError | undefined {
    return this.#lost;
  }

  /** The fencing generation of this holder: higher than every holder's before it on this lease. */
  get generation(): number {
    return this.record.generation;
  }

  /** The store's version of the lease as this holder last wrote it (what renew and release compare with). */
  get version(): string {
    return this.#version;
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
   */
  async renewIfDue(): Promise<void> {
    if (this.#lost) throw this.#lost;
    if (this.#released || Date.now() - this.#renewedAt < this.#ttlMs / 3) return;
    try {
      await this.renew();
    } catch (error) {
      if (this.#lost || Date.parse(this.record.expiresAt) <= Date.now()) throw error;
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
    if (this.#lost) throw this.#lost;
    const sentAt = Date.now();
    const next: LeaseRecord = { ...this.record, expiresAt: new Date(sentAt + this.#ttlMs).toISOString() };
    try {
      await this.store.put(this.path, JSON.stringify(next), { ...options, ...JSON_TYPE, ifMatch: this.#version });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      // Not the version we last wrote: taken over, unless it is a write of ours whose answer was lost.
    }
    const held = await readLease(this.store, this.path, options);
    if (held?.record?.owner !== this.record.owner || held.record.generation !== this.record.generation) {
      this.#lost = new LeaseHeldError(
        lostMessage(this.path, this.record, held?.record, held !== null),
        held?.record && { ...held.record },
      );
      throw this.#lost;
    }
    this.#version = held.version;
    this.record.expiresAt = held.record.expiresAt;
    this.#renewedAt = sentAt;
  }

  /** Renews every third of the TTL in the background; failures other than a lost lease are retried next time. */
  startRenewing(): void {
    if (this.#timer || this.#released) return;
    this.#timer = setInterval(
      () => {
        this.renew().catch(() => {});
      },
      Math.max(250, Math.floor(this.#ttlMs / 3)),
    );
    this.#timer.unref?.();
  }

  /** Gives the lease up: deletes it only while it is still the version this holder wrote. Safe to call twice. */
  async release(options: SignalOptions = {}): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#released) return;
    this.#released = true;
    ACTIVE.delete(this.record.owner);
    await this.#queue; // a renewal in flight moves the version
    if (this.#lost) return;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.store.remove(this.path, { ...options, ifMatch: this.#version });
        return;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
      }
      // A renewal that landed after its answer was lost moved the version: still ours, so delete that one.
      const held = await readLease(this.store, this.path, options);
      if (held?.record?.owner !== this.record.owner) return;
      this.#version = held.version;
    }
  }
}
