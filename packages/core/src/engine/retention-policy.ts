// What a run keeps, decided in one place for the engine (at each save, on resume) and
// for `savepoint prune`: regular checkpoints kept forever on a schedule (`keepPeriod`,
// `keepTimeIntervalMs`), the newest `maxKeepCkpts` of the others, and the best K per
// metric. Pure functions over names, steps, times and scores: the callers do the I/O.
import type { Rule } from './rule.js';

export interface RetentionPolicy {
  /** The newest N regular checkpoints not kept forever survive rotation; <= 0 keeps all. */
  maxKeepCkpts: number;
  /** A regular checkpoint whose step is a multiple of N is kept forever. */
  keepPeriod: number | undefined;
  /** The first regular checkpoint saved in each interval of this many ms since the run's start is kept forever. */
  keepTimeIntervalMs: number | undefined;
  /** Best checkpoints kept per metric. */
  topK: number;
}

/** Why a checkpoint is kept forever (it never counts against `maxKeepCkpts`). */
export type ForeverRule = 'keep-period' | 'keep-interval';

export interface RegularCandidate {
  step: number;
  /** When it was saved (ms since the epoch): only a checkpoint with a time can be the one of its interval. */
  savedAtMs?: number | undefined;
  /** A decision taken earlier and recorded (the engine's `kept_ckpts`): kept forever for that rule. */
  keptForever?: ForeverRule | undefined;
}

export interface RegularVerdict {
  step: number;
  keep: boolean;
  /** The rule that keeps it, or why it goes. */
  rule: string;
  /** Set when it is kept forever. */
  forever?: ForeverRule;
}

/** The interval of `keepTimeIntervalMs` a time falls in (0 from the run's start). */
function intervalOf(policy: RetentionPolicy, savedAtMs: number, runStartMs: number): number {
  return Math.floor(Math.max(savedAtMs - runStartMs, 0) / (policy.keepTimeIntervalMs as number));
}

/**
 * The verdict on each regular checkpoint (given oldest first, one per step): kept forever
 * by step (`keepPeriod`) or as the first of its time interval (`keepTimeIntervalMs`,
 * counted from `runStartMs`), else kept as one of the newest `maxKeepCkpts`, else dropped.
 */
export function decideRegular(
  candidates: readonly RegularCandidate[],
  policy: RetentionPolicy,
  runStartMs: number | undefined,
): RegularVerdict[] {
  const sorted = [...candidates].sort((a, b) => a.step - b.step);
  const taken = new Set<number>();
  const forever = new Map<number, ForeverRule>();
  for (const c of sorted) {
    if (c.keptForever === 'keep-interval' && c.savedAtMs !== undefined && policy.keepTimeIntervalMs && runStartMs !== undefined) {
      taken.add(intervalOf(policy, c.savedAtMs, runStartMs));
    }
  }
  for (const c of sorted) {
    if (c.keptForever) forever.set(c.step, c.keptForever);
    else if (policy.keepPeriod && c.step % policy.keepPeriod === 0) forever.set(c.step, 'keep-period');
    else if (policy.keepTimeIntervalMs && c.savedAtMs !== undefined && runStartMs !== undefined) {
      const interval = intervalOf(policy, c.savedAtMs, runStartMs);
      if (!taken.has(interval)) {
        taken.add(interval);
        forever.set(c.step, 'keep-interval');
      }
    }
  }
  const rotating = sorted.filter((c) => !forever.has(c.step));
  const newest = new Set((policy.maxKeepCkpts > 0 ? rotating.slice(-policy.maxKeepCkpts) : rotating).map((c) => c.step));
  return sorted.map((c) => {
    const rule = forever.get(c.step);
    if (rule === 'keep-period') return { step: c.step, keep: true, rule: `keep-period ${policy.keepPeriod}`, forever: rule };
    if (rule === 'keep-interval') {
      return { step: c.step, keep: true, rule: `keep-interval ${policy.keepTimeIntervalMs} ms`, forever: rule };
    }
    if (newest.has(c.step)) {
      return { step: c.step, keep: true, rule: policy.maxKeepCkpts > 0 ? `newest ${policy.maxKeepCkpts}` : 'keep all' };
    }
    return { step: c.step, keep: false, rule: `older than the newest ${policy.maxKeepCkpts}` };
  });
}

export interface RankedBest {
  name: string;
  score: number;
}

const better: Record<Rule, (a: number, b: number) => boolean> = {
  greater: (a, b) => a > b,
  less: (a, b) => a < b,
};

/**
 * A metric's best K after `entry` is judged against `ranked` (best first). As the
 * reference's one best, a score must be strictly better to enter: a tie with the K-th
 * keeps the one already there; among equal scores the earlier stays ahead. `entered` is
 * false when it does not make the K; `dropped` is what it pushes out.
 */
export function rankBest(
  ranked: readonly RankedBest[],
  entry: RankedBest,
  rule: Rule,
  k: number,
): { ranked: RankedBest[]; entered: boolean; dropped: RankedBest[] } {
  // The same checkpoint judged again (the same step evaluated twice) is judged afresh.
  const others = ranked.filter((r) => r.name !== entry.name);
  const kth = others[k - 1];
  if (others.length >= k && kth && !better[rule](entry.score, kth.score)) {
    return { ranked: [...ranked], entered: false, dropped: [] };
  }
  const at = others.findIndex((r) => better[rule](entry.score, r.score));
  const next = at < 0 ? [...others, entry] : [...others.slice(0, at), entry, ...others.slice(at)];
  return { ranked: next.slice(0, k), entered: true, dropped: next.slice(k) };
}

/** A list of ranked bests read back from a store (hostile input): the valid entries, best first as stored, at most `k`. */
export function parseRanked(value: unknown, k: number, owned: (name: unknown) => string | undefined): RankedBest[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: RankedBest[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { name, score } = item as { name?: unknown; score?: unknown };
    const own = owned(name);
    if (own === undefined || typeof score !== 'number' || !Number.isFinite(score)) return undefined;
    out.push({ name: own, score });
  }
  return out.slice(0, k);
}
