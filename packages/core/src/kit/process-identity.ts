// Who a process is, in a form that another process can check without guessing.
// A pid alone names a different process on every host and in every PID namespace
// (two containers with `hostNetwork` share a hostname and both run pid 1), so a pid
// is only compared when the kernel boot and the PID namespace are this process's
// own, and its start time tells a reused pid from the original. Anywhere else (an
// other host, an other container, a system without /proc) the answer is "unknown",
// and callers fall back to time (a lease's expiry) or to a person.
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcessIdentity {
  /** For people reading it; never compared. */
  host: string;
  pid: number;
  /** /proc/sys/kernel/random/boot_id: one kernel boot of one machine. */
  bootId?: string | undefined;
  /** The inode of /proc/self/ns/pid: one PID namespace on that boot. */
  pidNamespace?: string | undefined;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): tells a reused pid apart. */
  startTime?: string | undefined;
}

/** `alive` and `dead` are certain; `unknown` is another machine, namespace, or a system without /proc. */
export type ProcessState = 'alive' | 'dead' | 'unknown';

function readOr(read: () => string): string | undefined {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Start time and state of a pid in this namespace, or undefined when no such process exists. */
function procStat(pid: number): { state: string; startTime: string } | undefined | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    // ENOENT: no such process. Anything else (no /proc): cannot tell.
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19];
  return state && startTime ? { state, startTime } : null;
}

let self: ProcessIdentity | undefined;

/** This process's identity (read once: none of it changes while the process lives). */
export function processIdentity(): ProcessIdentity {
  if (!self) {
    const ns = readOr(() => readlinkSync('/proc/self/ns/pid'));
    self = {
      host: hostname(),
      pid: process.pid,
      bootId: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
      pidNamespace: ns ? /\[(\d+)\]/.exec(ns)?.[1] : undefined,
      startTime: procStat(process.pid)?.startTime,
    };
  }
  return self;
}

/** Whether the process `id` names is running, judged only where that can be known for sure. */
export function processState(id: ProcessIdentity | undefined): ProcessState {
  const me = processIdentity();
  if (!id?.bootId || !id.pidNamespace || !me.bootId || !me.pidNamespace) return 'unknown';
  if (id.bootId !== me.bootId || id.pidNamespace !== me.pidNamespace) return 'unknown';
  if (!Number.isInteger(id.pid) || id.pid <= 0) return 'unknown';
  if (id.pid === me.pid) return !id.startTime || id.startTime === me.startTime ? 'alive' : 'dead';
  const stat = procStat(id.pid);
  if (stat === null) return 'unknown';
  if (stat === undefined) return 'dead';
  // A zombie has exited and holds nothing; a different start time is a new process with the old pid.
  if (stat.state === 'Z' || stat.state === 'X') return 'dead';
  if (id.startTime && stat.startTime !== id.startTime) return 'dead';
  return 'alive';
}

/** Whether `id` is this very process (same boot, namespace, pid and start time). */
export function isThisProcess(id: ProcessIdentity | undefined): boolean {
  const me = processIdentity();
  return (
    !!id?.bootId &&
    id.bootId === me.bootId &&
    id.pidNamespace === me.pidNamespace &&
    id.pid === me.pid &&
    id.startTime === me.startTime
  );
}

/** Parses an identity read back from a store; anything malformed is undefined (so "unknown"). */
export function parseProcessIdentity(value: unknown): ProcessIdentity | undefined {
  const v = value as Partial<ProcessIdentity> | null | undefined;
  if (!v || typeof v !== 'object' || typeof v.host !== 'string' || typeof v.pid !== 'number') return undefined;
  const text = (x: unknown) => (typeof x === 'string' ? x : undefined);
  return { host: v.host, pid: v.pid, bootId: text(v.bootId), pidNamespace: text(v.pidNamespace), startTime: text(v.startTime) };
}
