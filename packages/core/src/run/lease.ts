// One writer per run. A lease object in the work dir, created with the store's
// conditional create, names the writer (owner id, host, pid) and an expiry that the
// holder keeps pushing forward while it trains. A second trainer, or a prune, fails
// at once naming the holder; a lease whose holder is gone (expired, or a dead pid on
// this host, or an abandoned lease of this very process) is taken over.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { LeaseHeldError, NotFoundError, type SavepointError } from '../store/errors.js';

/** How long a lease lasts without renewal when nothing else is said. */
export const DEFAULT_LEASE_TTL_MS = 60_000;

export interface LeaseRecord {
  format: 'savepoint.lease';
  owner: string;
  host: string;
  pid: number;
  /** What holds it: `training`, `prune`, ... */
  purpose: string;
  acquiredAt: string;
  expiresAt: string;
}

export interface AcquireLeaseOptions extends SignalOptions {
  /** How long the lease lasts without renewal. A crashed holder on another host blocks the run this long. */
  ttlMs: number;
  purpose: string;
  /** Told when a stale lease is taken over. */
  onTakeover?: (previous: LeaseRecord | undefined, why: string) => void;
}

/** Owner ids of leases this process holds and has not released (one set across duplicate copies of core). */
const ACTIVE_KEY = Symbol.for('savepoint.activeLeases');
const globalLeases = globalThis as { [ACTIVE_KEY]?: Set<string> };
globalLeases[ACTIVE_KEY] ??= new Set<string>();
const ACTIVE: Set<string> = globalLeases[ACTIVE_KEY];

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
    return value as LeaseRecord;
  } catch {
    return undefined;
  }
}

/** Why a lease no longer protects anyone, or undefined while its holder may still be writing. */
export function staleReason(lease: LeaseRecord | undefined, now = Date.now()): string | undefined {
  if (!lease) return 'the lease file is not a savepoint lease';
  if (Date.parse(lease.expiresAt) <= now) return `it expired at ${lease.expiresAt}`;
  if (lease.host === hostname()) {
    if (lease.pid === process.pid && !ACTIVE.has(lease.owner)) return 'its holder in this process has stopped';
    if (lease.pid !== process.pid && !pidAlive(lease.pid)) return `its process ${lease.pid} on this host is gone`;
  }
  return undefined;
}

export function describeLease(lease: LeaseRecord): string {
  return `${lease.purpose} (owner ${lease.owner}, host ${lease.host}, pid ${lease.pid}) until ${lease.expiresAt}`;
}

async function readLease(store: StorageBackend, path: string, options: SignalOptions): Promise<LeaseRecord | undefined | null> {
  try {
    return parseLease(await store.get(path, { ...options, range: { start: 0, end: 4096 } }));
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
  #timer: ReturnType<typeof setInterval> | undefined;
  #lost: SavepointError | undefined;
  #released = false;

  private constructor(store: StorageBackend, path: string, record: LeaseRecord, ttlMs: number) {
    this.store = store;
    this.path = path;
    this.record = record;
    this.#ttlMs = ttlMs;
  }

  /** Takes the lease at `path`, or throws `LeaseHeldError` naming the live holder. */
  static async acquire(store: StorageBackend, path: string, options: AcquireLeaseOptions): Promise<RunLease> {
    const now = Date.now();
    const record: LeaseRecord = {
      format: 'savepoint.lease',
      owner: randomUUID(),
      host: hostname(),
      pid: process.pid,
      purpose: options.purpose,
      acquiredAt: new Date(now).toISOString(),
      expiresAt: new Date(now + options.ttlMs).toISOString(),
    };
    const body = JSON.stringify(record);
    const signal = { signal: options.signal };
    for (let attempt = 0; attempt < 4; attempt++) {
      if (await store.putIfAbsent(path, body, { ...signal, contentType: 'application/json' })) {
        ACTIVE.add(record.owner);
        return new RunLease(store, path, record, options.ttlMs);
      }
      const held = await readLease(store, path, signal);
      if (held === null) continue; // released between our two calls: try again
      if (held?.owner === record.owner) {
        // Our create landed but its answer was lost and a retry saw our own object.
        ACTIVE.add(record.owner);
        return new RunLease(store, path, record, options.ttlMs);
      }
      const why = staleReason(held);
      if (why === undefined) {
        throw new LeaseHeldError(
          `${path} is held by ${describeLease(held as LeaseRecord)}: another job is writing this run. Stop it, or wait for its lease to expire; a lease whose holder died is taken over automatically.`,
          { ...(held as LeaseRecord) },
        );
      }
      options.onTakeover?.(held, why);
      // Taking over is delete + conditional create: of two jobs doing it at once, one wins the create.
      await store.remove(path, signal);
    }
    throw new LeaseHeldError(`${path}: could not take the lease after 4 attempts; another job keeps taking it`);
  }

  /** Set when renewal found the lease taken by someone else; the holder must stop writing. */
  get lost(): SavepointError | undefined {
    return this.#lost;
  }

  /** Pushes the expiry forward. Throws (and remembers) `LeaseHeldError` if another writer took it. */
  async renew(options: SignalOptions = {}): Promise<void> {
    if (this.#released) return;
    const held = await readLease(this.store, this.path, options);
    if (!held || held.owner !== this.record.owner) {
      this.#lost = new LeaseHeldError(
        `${this.path}: this job's lease was taken over${held ? ` by ${describeLease(held)}` : ' (the lease file is gone)'}; it stopped writing so that two jobs never write one run`,
        held ? { ...held } : undefined,
      );
      throw this.#lost;
    }
    this.record.expiresAt = new Date(Date.now() + this.#ttlMs).toISOString();
    await this.store.put(this.path, JSON.stringify(this.record), { ...options, contentType: 'application/json' });
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

  /** Gives the lease up (deletes it if it is still ours). Safe to call twice. */
  async release(options: SignalOptions = {}): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#released) return;
    this.#released = true;
    ACTIVE.delete(this.record.owner);
    const held = await readLease(this.store, this.path, options);
    if (held && held.owner === this.record.owner) await this.store.remove(this.path, options);
  }
}
