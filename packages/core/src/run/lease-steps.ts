// The lease's record and the compare-and-swap steps on it that a renewer takes: read
// it with its version, renew the version last written, delete it. Kept apart from
// `RunLease` because two threads take them: the main thread (timer or hook call), or
// the worker thread that renews while the main thread is busy (lease-worker-thread.ts).
// Whichever thread renews a lease is the only one that writes it.
import { type ProcessIdentity, parseProcessIdentity } from '../kit/process-identity.js';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { NotFoundError, PreconditionFailedError } from '../store/errors.js';

export const JSON_TYPE = { contentType: 'application/json' };

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

export interface ReadLease {
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
export async function readLease(store: StorageBackend, path: string, options: SignalOptions): Promise<ReadLease | null> {
  try {
    const { version } = await store.stat(path, options);
    return { version, record: parseLease(await store.get(path, { ...options, range: { start: 0, end: 8192 } })) };
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

/** What a renewal found: still ours (with the new version and expiry), or someone else's lease (or none). */
export type RenewOutcome =
  | { held: true; version: string; expiresAt: string; sentAt: number }
  | { held: false; now: LeaseRecord | undefined; exists: boolean };

/**
 * One renewal: replaces the version this holder last wrote with a later expiry, then
 * reads back whose lease is there. Throws only what the store throws (other than a
 * failed precondition, which the read-back judges).
 */
export async function renewStep(
  store: StorageBackend,
  path: string,
  record: LeaseRecord,
  version: string,
  ttlMs: number,
  options: SignalOptions,
): Promise<RenewOutcome> {
  const sentAt = Date.now();
  const next: LeaseRecord = { ...record, expiresAt: new Date(sentAt + ttlMs).toISOString() };
  try {
    await store.put(path, JSON.stringify(next), { ...options, ...JSON_TYPE, ifMatch: version });
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
    // Not the version we last wrote: taken over, unless it is a write of ours whose answer was lost.
  }
  const held = await readLease(store, path, options);
  if (held?.record?.owner !== record.owner || held.record.generation !== record.generation) {
    return { held: false, now: held?.record, exists: held !== null };
  }
  return { held: true, version: held.version, expiresAt: held.record.expiresAt, sentAt };
}

/** Deletes the lease while it is still the version this holder wrote (or a later write of its own); never a successor's. */
export async function releaseStep(
  store: StorageBackend,
  path: string,
  owner: string,
  version: string,
  options: SignalOptions,
): Promise<void> {
  let current = version;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await store.remove(path, { ...options, ifMatch: current });
      return;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
    // A renewal that landed after its answer was lost moved the version: still ours, so delete that one.
    const held = await readLease(store, path, options);
    if (held?.record?.owner !== owner) return;
    current = held.version;
  }
}
