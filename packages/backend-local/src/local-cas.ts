// Compare-and-swap on local disk, where no call compares and renames at once.
//
// A file's version is its inode, modification and change times (ns) and size: every
// write of this backend moves a new inode in (temp file + rename), so the version
// changes on every replace, and a stranger's in-place edit changes the times.
//
// A writer that means to replace (or delete) version V first claims V: it creates
// `.<name>.savepoint-tmp-cas-<hash of V>-1` with an exclusive link, so of all writers that
// start from V exactly one holds the claim. Only the holder compares the current
// version with V and renames (or unlinks); V never comes back once replaced, so a
// claim is only needed while V is current. No time is involved: a writer paused
// for an hour while holding the claim still keeps every other writer of V out.
//
// A claim holds its writer's process identity (boot id, PID namespace, pid, start
// time). When its writer was killed (provably dead: same boot and namespace, pid gone
// or reused), the next writer claims number 2, and so on: a dead claim is never
// deleted while V may still be current, since a second claimer of the freed number
// would then race the holder of the next one. Claims are removed once V is gone.
// A claim of a process this one cannot check (another host sharing the disk) is
// never broken: the write fails, naming the claim file to delete by hand.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { type ProcessIdentity, parseProcessIdentity, processIdentity, processState, tempNameFor } from '@savepoint/core/kit';

/** Claim numbers tried past killed claimers before giving up (each needs a process killed mid-write). */
const MAX_CLAIMS = 16;
const CLAIM_MARKER = 'cas-';

/** The version `stat` reports: changes whenever the file is replaced or rewritten. */
export function fileVersion(st: { ino: bigint; mtimeNs: bigint; ctimeNs: bigint; size: bigint }): string {
  return `${st.ino}-${st.mtimeNs}-${st.ctimeNs}-${st.size}`;
}

/** The current version of the file at `abs`, or undefined when no file is there. */
async function currentVersion(abs: string): Promise<string | undefined> {
  try {
    const st = await fs.stat(abs, { bigint: true });
    return st.isFile() ? fileVersion(st) : undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Where the claim number `index` on `version` of the file at `abs` lives (exported for tests). */
export function claimPath(abs: string, version: string, index: number): string {
  // Hashed: a version is long, and a file name has 255 bytes.
  const tag = createHash('sha256').update(version).digest('hex').slice(0, 20);
  return nodePath.join(nodePath.dirname(abs), tempNameFor(nodePath.basename(abs), `${CLAIM_MARKER}${tag}-${index}`));
}

/** Whether a file name (in a folder listing) is a version claim. */
export function isClaimName(name: string): boolean {
  return name.includes(tempNameFor('', CLAIM_MARKER).slice(1));
}

async function claimHolder(file: string): Promise<ProcessIdentity | undefined> {
  try {
    return parseProcessIdentity(JSON.parse(await fs.readFile(file, 'utf8')));
  } catch {
    return undefined;
  }
}

/** A claim whose writer is provably gone: what removeIncompleteWrites may delete. */
export async function isDeadClaim(file: string): Promise<boolean> {
  return processState(await claimHolder(file)) === 'dead';
}

/** Creates `file` holding this process's identity, all at once (an exclusive link of a full temp file): false when it exists. */
async function createClaim(file: string): Promise<boolean> {
  const temp = `${file}-${process.pid}-${Math.random().toString(16).slice(2)}`;
  await fs.writeFile(temp, JSON.stringify(processIdentity()), { flag: 'wx' });
  try {
    await fs.link(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await fs.rm(temp, { force: true });
  }
}

export type SwapOutcome =
  | { done: true }
  | { done: false; reason: 'missing' | 'changed' }
  | { done: false; reason: 'claimed'; claim: string; holder: ProcessIdentity | undefined; unknown: boolean };

/**
 * Runs `commit` (the rename or unlink) only if the file at `abs` is still `expected`,
 * as the one writer of all those starting from `expected` that holds its claim.
 */
export async function swapIfMatch(abs: string, expected: string, commit: () => Promise<void>): Promise<SwapOutcome> {
  const passed: string[] = [];
  for (let index = 1; index <= MAX_CLAIMS; index++) {
    const claim = claimPath(abs, expected, index);
    if (!(await createClaim(claim))) {
      const holder = await claimHolder(claim);
      const state = processState(holder);
      if (state === 'dead') {
        passed.push(claim);
        continue;
      }
      // Another writer of this version is at work (or was, on a machine this one cannot see).
      if ((await currentVersion(abs)) !== expected) return { done: false, reason: 'changed' };
      return { done: false, reason: 'claimed', claim, holder, unknown: state === 'unknown' };
    }
    passed.push(claim);
    let outcome: SwapOutcome;
    try {
      const now = await currentVersion(abs);
      if (now === expected) {
        await commit();
        outcome = { done: true };
      } else outcome = { done: false, reason: now === undefined ? 'missing' : 'changed' };
    } catch (error) {
      // The commit failed: the version is still current, so the claims must stay out of the way of the next
      // writer only if it is ours; ours is removed below, the dead ones stay (see the header).
      await fs.rm(claim, { force: true });
      throw error;
    }
    // The version is gone (replaced, deleted, or never there): no claim on it matters any more.
    await Promise.all(passed.map((file) => fs.rm(file, { force: true })));
    return outcome;
  }
  return {
    done: false,
    reason: 'claimed',
    claim: claimPath(abs, expected, MAX_CLAIMS),
    holder: undefined,
    unknown: true,
  };
}

/** Why a conditional write failed, for PreconditionFailedError's message. */
export function describeRefusal(operation: string, path: string, expected: string, outcome: SwapOutcome): string {
  if (outcome.done) return '';
  if (outcome.reason === 'claimed' && outcome.unknown) {
    const who = outcome.holder ? `pid ${outcome.holder.pid} on ${outcome.holder.host}` : 'a process this host cannot check';
    return `${operation} ${path}: version ${expected} is being replaced by ${who} (claim ${outcome.claim}); if no such process is writing, delete that file and try again`;
  }
  const what =
    outcome.reason === 'missing'
      ? 'no file is there'
      : outcome.reason === 'changed'
        ? 'another writer replaced it'
        : 'another writer is replacing it';
  return `${operation} ${path}: the file is no longer version ${expected} (${what}); nothing was written, read it again before writing`;
}
