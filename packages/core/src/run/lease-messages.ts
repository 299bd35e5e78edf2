// What a job is told about a lease it cannot have or has lost: who holds it, until
// when, and what to do, including with a lease that will not expire on its own.
import type { LeaseRecord } from './lease-steps.js';

/** A lease whose expiry is further away than this is treated as one that will not expire on its own. */
const FAR_MS = 24 * 60 * 60 * 1000;

function describe(lease: LeaseRecord): string {
  return `${lease.purpose} (owner ${lease.owner}, host ${lease.host}, pid ${lease.pid}, generation ${lease.generation})`;
}

function inWords(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** A live holder: who, until when, and what to do (wait, stop it, or delete the lease file). */
export function heldMessage(path: string, lease: LeaseRecord, now = Date.now()): string {
  const left = Date.parse(lease.expiresAt) - now;
  const who = `${path} is held by ${describe(lease)} until ${lease.expiresAt}`;
  if (left > FAR_MS) {
    return `${who}, ${inWords(left)} from now: this lease will not expire on its own. If no job is writing this run, delete ${path} and start again.`;
  }
  return (
    `${who} (in ${inWords(left)}): another job is writing this run. Stop that job, or start this one after its lease expires. ` +
    `A holder that died is taken over once its lease expires, or at once when it ran on this machine in this PID namespace. ` +
    `If you are sure no job holds it, delete ${path}.`
  );
}

/** A take-over that kept losing to other jobs. */
export function takeoverFailedMessage(path: string, attempts: number, last: LeaseRecord | undefined): string {
  return `${path}: could not take the lease in ${attempts} attempts, other jobs replaced it each time${last ? ` (last seen: ${describe(last)} until ${last.expiresAt})` : ''}; stop the other jobs, or try again`;
}

/** A holder whose lease was taken over (or deleted): it must stop writing. */
export function lostMessage(path: string, mine: LeaseRecord, now: LeaseRecord | undefined, exists: boolean): string {
  const by = now
    ? ` by ${describe(now)} until ${now.expiresAt}`
    : exists
      ? ' (the lease file no longer holds a savepoint lease)'
      : ' (the lease file was deleted)';
  return `${path}: this job's lease (generation ${mine.generation}) was taken over${by}; this job stopped writing so that two jobs never write one run`;
}
