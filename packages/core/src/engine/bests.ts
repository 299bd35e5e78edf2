// Best checkpoints per metric, as the reference: one rule per metric (given, or
// inferred from its name), the best score and checkpoint name kept in runtime info
// under `best_score` / `best_ckpt` (one metric) or `best_score_<m>` / `best_ckpt_<m>`,
// and `'auto'` taking the first metric of the first evaluation. (ours) With
// `saveTopK` > 1 the best K per metric are ranked (retention-policy.ts) and listed,
// with their scores, under `best_topk` / `best_topk_<m>`; the one-best keys name the
// first of them, so a run resumes whichever way it was started.
import { ConfigError } from '../store/errors.js';
import { type BestPolicy, expandRules, type Rule } from './options.js';
import { parseRanked, type RankedBest, rankBest } from './retention-policy.js';
import type { Logger } from './runner.js';
import type { RuntimeInfo } from './runtime-info.js';

const isBetter: Record<Rule, (a: number, b: number) => boolean> = {
  greater: (a, b) => a > b,
  less: (a, b) => a < b,
};
const initialBest: Record<Rule, number> = { greater: -Infinity, less: Infinity };

export interface Improvement {
  metric: string;
  score: number;
  /** The new best's name. */
  name: string;
  /** The best it replaces, if any. */
  previous: string | undefined;
}

export class BestTracker {
  /** Metric names (or `['auto']` until the first evaluation), undefined without `saveBest`. */
  #metrics: string[] | undefined;
  #rules: (Rule | undefined)[];
  /** Name (inside outDir) of the current best per metric. */
  readonly names = new Map<string, string | undefined>();
  /** (ours) With top-K: the best K per metric, best first. */
  readonly ranked = new Map<string, RankedBest[]>();
  readonly topK: number;

  constructor(policy: BestPolicy | undefined, topK = 1) {
    this.#metrics = policy ? [...policy.metrics] : undefined;
    this.#rules = policy ? [...policy.rules] : [];
    this.topK = topK;
  }

  /** (ours) The runtime-info key of a metric's ranked list (top-K only). */
  listKey(metric: string): string {
    return (this.#metrics?.length ?? 0) === 1 ? 'best_topk' : `best_topk_${metric}`;
  }

  /**
   * (ours) The ranked lists from runtime info (on resume, and after a failed save point
   * put the info back). A run started with one best seeds its list from the one-best keys.
   * Entries are checked as any name read back from a store.
   */
  loadRanked(info: RuntimeInfo, owned: (name: unknown) => string | undefined, warn?: (key: string) => void): void {
    this.ranked.clear();
    if (this.topK <= 1) return;
    for (const metric of this.#metrics ?? []) {
      const key = this.listKey(metric);
      const stored = info.get<unknown>(key);
      let list = stored === undefined ? undefined : parseRanked(stored, this.topK, owned);
      if (stored !== undefined && list === undefined) warn?.(key);
      if (list === undefined) {
        const keys = this.keys(metric);
        const name = owned(info.get(keys.ckpt));
        const score = info.get<unknown>(keys.score);
        list = name !== undefined && typeof score === 'number' && Number.isFinite(score) ? [{ name, score }] : [];
      }
      this.ranked.set(metric, list);
    }
  }
  get metrics(): readonly string[] | undefined {
    return this.#metrics;
  }

  /** The runtime-info keys of a metric's best score and checkpoint. */
  keys(metric: string): { score: string; ckpt: string } {
    return (this.#metrics?.length ?? 0) === 1
      ? { score: 'best_score', ckpt: 'best_ckpt' }
      : { score: `best_score_${metric}`, ckpt: `best_ckpt_${metric}` };
  }

  /** Whether an evaluation's results are judged at all: not without `saveBest`, nor when they are empty (warned, as the reference). */
  judges(results: Record<string, unknown> | undefined, logger: Logger): boolean {
    if (!results || Object.keys(results).length === 0) {
      logger.warn(
        'Since `metrics` is an empty dict, the behavior to save the best checkpoint will be skipped in this evaluation.',
      );
      return false;
    }
    return this.#metrics !== undefined;
  }

  /** Whether `name` is a current best. */
  isBest(name: string): boolean {
    return [...this.names.values()].includes(name) || [...this.ranked.values()].some((l) => l.some((r) => r.name === name));
  }

  /**
   * The metrics this evaluation is judged on: `'auto'` becomes its first metric. A tracked
   * metric the evaluation does not return is a mistake (a typo), not a skip, as in the reference.
   */
  track(results: Record<string, unknown>, greaterKeys: readonly string[], lessKeys: readonly string[]): readonly string[] {
    const metrics = this.#metrics ?? [];
    if (metrics.includes('auto')) {
      const first = Object.keys(results)[0] as string;
      this.#rules = expandRules(this.#rules, [first], greaterKeys, lessKeys);
      this.#metrics = [first];
      this.names.set(first, this.names.get('auto'));
      this.names.delete('auto');
      this.ranked.set(first, this.ranked.get('auto') ?? []);
      this.ranked.delete('auto');
    }
    const tracked = this.#metrics ?? [];
    const absent = tracked.filter((metric) => !Object.hasOwn(results, metric));
    if (absent.length > 0) {
      throw new ConfigError(
        `saveBest metric ${absent.map((m) => JSON.stringify(m)).join(', ')} is not among the evaluation's results (${Object.keys(results).join(', ')}); check the name in saveBest`,
        { option: 'saveBest' },
      );
    }
    return tracked;
  }

  /** The metrics whose score beats the stored best; updates runtime info and the names at once. */
  improve(
    results: Record<string, number | null | undefined>,
    info: RuntimeInfo,
    bestName: (metric: string) => string,
  ): Improvement[] {
    const improvements: Improvement[] = [];
    for (const [i, metric] of (this.#metrics ?? []).entries()) {
      const rule = this.#rules[i] as Rule;
      const score = results[metric];
      const keys = this.keys(metric);
      if (this.topK > 1) {
        if (score === null || score === undefined || Number.isNaN(score)) continue;
        const name = bestName(metric);
        const judged = rankBest(this.ranked.get(metric) ?? [], { name, score }, rule, this.topK);
        if (!judged.entered) continue;
        const first = judged.ranked[0] as RankedBest;
        info.set(this.listKey(metric), judged.ranked);
        info.set(keys.score, first.score);
        info.set(keys.ckpt, first.name);
        this.ranked.set(metric, judged.ranked);
        this.names.set(metric, first.name);
        // One checkpoint enters, at most one goes: the K-th it pushed out (none while fewer than K are held).
        improvements.push({ metric, score, name, previous: judged.dropped.find((d) => d.name !== name)?.name });
        continue;
      }
      const stored = info.get<unknown>(keys.score);
      const best = typeof stored === 'number' ? stored : initialBest[rule];
      if (score === null || score === undefined || !isBetter[rule](score, best)) continue;
      info.set(keys.score, score);
      const name = bestName(metric);
      info.set(keys.ckpt, name);
      improvements.push({ metric, score, name, previous: this.names.get(metric) });
      this.names.set(metric, name);
    }
    return improvements;
  }
}
