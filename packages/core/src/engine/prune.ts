// `prune`: deleting what a run's retention policy no longer keeps, from outside the
// trainer, decided by the engine's one retention module (retention-policy.ts): the
// newest `keep` regular checkpoints, those kept forever by `keepPeriod` or one per
// `keepIntervalMs`, and (with `topK`) the best K per metric. Candidates are only names
// the run's layout parses as its checkpoints; the pointer's target, anything newer than
// it (a save whose pointer has not moved yet), published copies and files that are not
// the run's are never touched. Deleting holds the run's lease, so it fails at once while
// a trainer writes.
import type { CheckpointInfo } from '../run/folder.js';
import { RUN_MARKER_NAME } from '../run/layout.js';
import { DEFAULT_LEASE_TTL_MS } from '../run/lease.js';
import type { Run } from '../run/run.js';
import { ConfigError } from '../store/errors.js';
import { DEFAULT_GREATER_KEYS, DEFAULT_LESS_KEYS, inferRule } from './options.js';
import { decideRegular, parseRanked, type RankedBest, type RetentionPolicy, rankBest } from './retention-policy.js';
import { parseTime, RUN_STARTED_AT_KEY } from './schedule.js';

export interface PrunePolicy {
  /** Regular checkpoints kept besides those kept forever (the newest). */
  keep: number;
  keepPeriod?: number | undefined;
  keepIntervalMs?: number | undefined;
  /** Best checkpoints kept per metric; without it every best is kept. */
  topK?: number | undefined;
}

export interface PruneVerdict {
  path: string;
  keep: boolean;
  /** The rule that keeps it, or why it goes. */
  rule: string;
}

export interface PruneResult {
  toDelete: string[];
  kept: string[];
  deleted: boolean;
  /** Every checkpoint of the run with the rule that keeps it or why it goes, oldest first. */
  verdicts: PruneVerdict[];
}

function checkPolicy(policy: PrunePolicy): RetentionPolicy {
  const int = (value: unknown, option: string, accepted: string) => {
    if (value === undefined) return undefined;
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new ConfigError(`${option} got ${JSON.stringify(value)}; accepted: ${accepted}`, { option });
    }
    return value as number;
  };
  const keep = int(policy.keep, '--keep', 'an integer >= 1 (prune never deletes every checkpoint)');
  if (keep === undefined) {
    throw new ConfigError('--keep got nothing; accepted: an integer >= 1 (prune never deletes every checkpoint)', {
      option: '--keep',
    });
  }
  return {
    maxKeepCkpts: keep,
    keepPeriod: int(policy.keepPeriod, '--keep-period', 'an integer >= 1 (steps)'),
    keepTimeIntervalMs: int(policy.keepIntervalMs, '--keep-interval', 'a duration >= 1 ms'),
    topK: int(policy.topK, '--top-k', 'an integer >= 1 (bests kept per metric)') ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * The scores of the bests, from the bookkeeping of the checkpoint the pointer names
 * (its runtime info; the pointer's own bookkeeping line wins, as on resume). Read back
 * from a store, so checked as hostile input: an entry that is not one of this run's
 * names with a finite score is ignored.
 */
async function bestScores(run: Run, target: CheckpointInfo | undefined): Promise<Map<string, RankedBest[]>> {
  const scores = new Map<string, RankedBest[]>();
  if (!target) return scores;
  const checkpoint = await run.load(target.path, { keys: ['message_hub'] });
  const hub = checkpoint.message_hub as { runtime_info?: unknown } | undefined;
  const fromCheckpoint = hub?.runtime_info && typeof hub.runtime_info === 'object' ? hub.runtime_info : {};
  const pointer = await run.resumeTarget().catch(() => undefined);
  const info: Record<string, unknown> = { ...(fromCheckpoint as Record<string, unknown>), ...(pointer?.runtimeInfo ?? {}) };
  const owned = (value: unknown) => run.layout.ownedCheckpointName(value);
  for (const [key, value] of Object.entries(info)) {
    if (key !== 'best_topk' && !key.startsWith('best_topk_')) continue;
    for (const entry of parseRanked(value, Number.MAX_SAFE_INTEGER, owned) ?? []) {
      const metric = run.layout.parse(entry.name);
      if (metric?.kind !== 'best') continue;
      scores.set(metric.metric, [...(scores.get(metric.metric) ?? []), entry]);
    }
  }
  for (const [key, value] of Object.entries(info)) {
    // A run with one best per metric records its score beside it.
    const match = /^best_ckpt(?:_(.+))?$/.exec(key);
    const name = match ? owned(value) : undefined;
    const parsed = name ? run.layout.parse(name) : undefined;
    const score = info[match?.[1] ? `best_score_${match[1]}` : 'best_score'];
    if (!name || parsed?.kind !== 'best' || typeof score !== 'number' || !Number.isFinite(score)) continue;
    const list = scores.get(parsed.metric) ?? [];
    if (!list.some((r) => r.name === name)) scores.set(parsed.metric, [...list, { name, score }]);
  }
  return scores;
}

export async function pruneRun(run: Run, policyInput: PrunePolicy, yes: boolean): Promise<PruneResult> {
  const policy = checkPolicy(policyInput);
  const lease = yes ? await run.acquireLease({ ttlMs: DEFAULT_LEASE_TTL_MS, purpose: 'prune' }) : undefined;
  try {
    const { checkpoints, pointer } = await run.scan();
    const regular = checkpoints.filter((c) => c.kind === 'regular' && c.shape !== 'incomplete');
    if (yes && pointer === undefined && regular.length > policy.maxKeepCkpts) {
      // Without the pointer, the checkpoint a resume needs is unknown: this may be the
      // checkpoint folder of a run whose work dir (with the pointer) is elsewhere.
      throw new ConfigError(
        `${run.outDir} has no last_checkpoint and no record of the run it belongs to, so prune cannot tell which checkpoint a resume needs. If it is the checkpoint folder (outDir) of a run whose work dir is elsewhere (pruning that work dir does not reach this folder), resume that run once: its trainer records its work dir here (${RUN_MARKER_NAME}) and prune then finds its lease and pointer; nothing was deleted.`,
        { option: 'dir' },
      );
    }
    const target = checkpoints.find((c) => c.isPointerTarget);
    const verdicts = new Map<string, PruneVerdict>();
    const set = (c: CheckpointInfo, keep: boolean, rule: string) => verdicts.set(c.path, { path: c.path, keep, rule });

    // The run's start: what its trainer recorded, else the oldest checkpoint's time.
    let runStartMs: number | undefined;
    if (policy.keepTimeIntervalMs !== undefined) {
      const info = target
        ? ((await run.load(target.path, { keys: ['message_hub'] })).message_hub as { runtime_info?: Record<string, unknown> })
        : undefined;
      runStartMs =
        parseTime(info?.runtime_info?.[RUN_STARTED_AT_KEY]) ??
        Math.min(...regular.map((c) => c.modified?.getTime() ?? Number.POSITIVE_INFINITY));
    }
    const byStep = new Map(regular.map((c) => [c.step ?? 0, c]));
    for (const v of decideRegular(
      regular.map((c) => ({ step: c.step ?? 0, savedAtMs: c.modified?.getTime() })),
      policy,
      runStartMs,
    )) {
      set(byStep.get(v.step) as CheckpointInfo, v.keep, v.rule);
    }

    const bests = checkpoints.filter((c) => c.kind === 'best');
    if (Number.isFinite(policy.topK)) {
      const scores = await bestScores(run, target);
      for (const [metric, known] of scores) {
        const rule = inferRuleOrGreater(metric, known);
        let ranked: RankedBest[] = [];
        for (const entry of known) ranked = rankBest(ranked, entry, rule, policy.topK).ranked;
        for (const c of bests.filter((b) => b.metric === metric)) {
          const at = ranked.findIndex((r) => r.name === c.name);
          const score = known.find((r) => r.name === c.name)?.score;
          if (at >= 0) set(c, true, `top-${policy.topK} ${metric} (#${at + 1}, ${score})`);
          else if (score !== undefined) set(c, false, `not in the top ${policy.topK} of ${metric} (${score})`);
        }
      }
    }
    for (const c of checkpoints) {
      if (c.kind === 'best' && !verdicts.has(c.path))
        set(c, true, Number.isFinite(policy.topK) ? 'best with no recorded score' : 'best');
      if (c.kind === 'published') set(c, true, 'published copy');
      if (c.shape === 'incomplete') set(c, true, 'unfinished write (a resume under the lease removes it)');
      // Newer than the pointer's target: a save in progress, or one whose pointer a crash never moved.
      if (c.kind === 'regular' && target?.step !== undefined && (c.step ?? 0) > target.step)
        set(c, true, 'newer than the pointer');
      if (c.isPointerTarget) set(c, true, 'the pointer names it');
    }
    const ordered = checkpoints.map((c) => verdicts.get(c.path) as PruneVerdict).filter(Boolean);
    const going = checkpoints.filter((c) => verdicts.get(c.path)?.keep === false);
    if (yes) for (const c of going) await run.remove(c.name);
    return {
      toDelete: going.map((c) => c.path),
      kept: ordered.filter((v) => v.keep).map((v) => v.path),
      deleted: yes,
      verdicts: ordered,
    };
  } finally {
    await lease?.release();
  }
}

/** The rule a metric's bests were ranked by: inferred from its name, as the engine does; else the order the scores imply. */
function inferRuleOrGreater(metric: string, known: readonly RankedBest[]): 'greater' | 'less' {
  try {
    return inferRule(metric, DEFAULT_GREATER_KEYS, DEFAULT_LESS_KEYS);
  } catch {
    // The engine stores the list best first.
    const [a, b] = known;
    return a && b && a.score < b.score ? 'less' : 'greater';
  }
}
