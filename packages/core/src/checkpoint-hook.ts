// The checkpoint policy engine: a port of MMEngine's CheckpointHook, rule for rule
// as written in spec/checkpoint-policy.md, running on any StorageBackend. Where
// the spec says (ours) we order writes so a crash never loses the last good
// checkpoint: the new checkpoint is complete before the pointer moves, and the
// pointer moves before anything old is deleted.

import {
  DEFAULT_CODEC,
  publishCheckpoint,
  removeCheckpoint,
  saveCheckpointDir,
  saveCheckpointFile,
  writeLastCheckpoint,
} from './checkpoint-io.js';
import type { CheckpointCodec } from './codec.js';
import { ConfigError, SavepointError } from './errors.js';
import { type BackendArgs, getBackend, resolveBackendName, uriScheme } from './registry.js';
import type { Runner } from './runner.js';
import type { StorageBackend } from './storage-backend.js';
import {
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkRecord,
  checkStringList,
  configError,
  describeValue,
} from './validate.js';

export type Rule = 'greater' | 'less';

export interface CheckpointHookConfiguration {
  /** Save every N steps; <= 0 never saves by interval. */
  interval: number;
  /** Steps are epochs (true) or iterations (false). */
  byEpoch: boolean;
  saveOptimizer: boolean;
  saveParamScheduler: boolean;
  /** Where checkpoints go; defaults to the work dir. If different, `join(outDir, basename(workDir))`. */
  outDir: string | undefined;
  /** Keep only the newest N regular checkpoints; <= 0 keeps all. */
  maxKeepCkpts: number;
  /** Always save at the last step. */
  saveLast: boolean;
  /** A metric name, a list, or `'auto'`. */
  saveBest: string | string[] | undefined;
  rule: Rule | Rule[] | undefined;
  greaterKeys: string | string[] | undefined;
  lessKeys: string | string[] | undefined;
  /** Regular checkpoint name; `{}` becomes the step. Defaults to `epoch_{}<ext>` / `iter_{}<ext>`. */
  filenameTmpl: string | undefined;
  /** Chooses and configures the store (see the registry). */
  backendArgs: BackendArgs | undefined;
  /** After training, write slim copies of the last and best checkpoints with only these keys. */
  publishedKeys: string | string[] | undefined;
  /** First step from which interval saving counts. */
  saveBegin: number;
  /** (ours) How checkpoints are encoded. Default: safetensors. */
  codec: CheckpointCodec;
  /** (ours) `file`: one file per checkpoint; `directory`: a folder of shards plus a manifest written last. */
  layout: 'file' | 'directory';
  /** (ours) Shard size bound for `layout: 'directory'`. */
  maxShardBytes: number;
  /** (ours) An already-built store for outDir (skips the registry). */
  backend: StorageBackend | undefined;
  /** (ours) Cancels long writes. */
  signal: AbortSignal | undefined;
}

export type CheckpointHookOptions = Partial<CheckpointHookConfiguration>;

export const DEFAULT_GREATER_KEYS: readonly string[] = [
  'acc',
  'top',
  'AR@',
  'auc',
  'precision',
  'mAP',
  'mDice',
  'mIoU',
  'mAcc',
  'aAcc',
];
export const DEFAULT_LESS_KEYS: readonly string[] = ['loss'];

const DEFAULTS = {
  interval: -1,
  byEpoch: true,
  saveOptimizer: true,
  saveParamScheduler: true,
  maxKeepCkpts: -1,
  saveLast: true,
  saveBegin: 0,
  layout: 'file',
  maxShardBytes: 1024 * 1024 * 1024,
} as const;

export const CHECKPOINT_HOOK_OPTION_NAMES: readonly (keyof CheckpointHookConfiguration)[] = [
  'interval',
  'byEpoch',
  'saveOptimizer',
  'saveParamScheduler',
  'outDir',
  'maxKeepCkpts',
  'saveLast',
  'saveBest',
  'rule',
  'greaterKeys',
  'lessKeys',
  'filenameTmpl',
  'backendArgs',
  'publishedKeys',
  'saveBegin',
  'codec',
  'layout',
  'maxShardBytes',
  'backend',
  'signal',
];

/** (ours) Runtime-info key: paths the save that carries it deletes after committing; re-issued on resume. */
export const PENDING_REMOVALS_KEY = 'pending_removals';

const isBetter: Record<Rule, (a: number, b: number) => boolean> = {
  greater: (a, b) => a > b,
  less: (a, b) => a < b,
};
const initialBest: Record<Rule, number> = { greater: -Infinity, less: Infinity };

function checkRuleValue(value: unknown, option: string): Rule {
  if (value !== 'greater' && value !== 'less') throw configError(option, value, '"greater" or "less"');
  return value;
}

/** Infers greater/less from the metric's name, case-insensitively, as the reference does. */
export function inferRule(metric: string, greaterKeys: readonly string[], lessKeys: readonly string[]): Rule {
  const name = metric.toLowerCase();
  const greater = greaterKeys.map((k) => k.toLowerCase());
  const less = lessKeys.map((k) => k.toLowerCase());
  if (greater.includes(name)) return 'greater';
  if (less.includes(name)) return 'less';
  if (greater.some((k) => name.includes(k))) return 'greater';
  if (less.some((k) => name.includes(k))) return 'less';
  throw new ConfigError(
    `cannot infer the rule for metric "${metric}": it matches none of greaterKeys (${greaterKeys.join(', ')}) or lessKeys (${lessKeys.join(', ')}); give rule: 'greater' or 'less'`,
    { option: 'rule' },
  );
}

export class CheckpointHook {
  readonly config: Readonly<CheckpointHookConfiguration>;
  readonly filenameTmpl: string;
  readonly greaterKeys: readonly string[];
  readonly lessKeys: readonly string[];
  readonly publishedKeys: readonly string[] | undefined;

  /** Metric names (or `['auto']` until the first evaluation) and their rules. */
  #keyIndicators: string[] | undefined;
  #rules: (Rule | undefined)[] = [];
  #store: StorageBackend | undefined;
  #workDirStore: StorageBackend | undefined;
  #outDir: string | undefined;
  #keepCkptIds: number[] = [];
  #bestCkptPaths = new Map<string, string | undefined>();
  /** Full path of the last regular checkpoint saved in this run (the reference's `last_ckpt`). */
  #lastCkpt: string | undefined;

  constructor(options: CheckpointHookOptions = {}) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new ConfigError(`CheckpointHook options must be an object, got ${describeValue(options)}`);
    }
    checkKnownKeys(options as Record<string, unknown>, CHECKPOINT_HOOK_OPTION_NAMES, 'CheckpointHook');
    const o = options;
    const codec = o.codec ?? DEFAULT_CODEC;
    if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function' || typeof codec.extension !== 'string') {
      throw configError('codec', codec, 'an object implementing CheckpointCodec (name, extension, encode, decode)');
    }
    const byEpoch = o.byEpoch === undefined ? DEFAULTS.byEpoch : checkBoolean(o.byEpoch, 'byEpoch');
    const layout = o.layout ?? DEFAULTS.layout;
    if (layout !== 'file' && layout !== 'directory') throw configError('layout', layout, '"file" or "directory"');

    const config: CheckpointHookConfiguration = {
      interval:
        o.interval === undefined
          ? DEFAULTS.interval
          : checkInteger(o.interval, 'interval', 'an integer (<= 0 never saves by interval)'),
      byEpoch,
      saveOptimizer: o.saveOptimizer === undefined ? DEFAULTS.saveOptimizer : checkBoolean(o.saveOptimizer, 'saveOptimizer'),
      saveParamScheduler:
        o.saveParamScheduler === undefined
          ? DEFAULTS.saveParamScheduler
          : checkBoolean(o.saveParamScheduler, 'saveParamScheduler'),
      outDir: o.outDir === undefined ? undefined : checkPathOption(o.outDir, 'outDir'),
      maxKeepCkpts:
        o.maxKeepCkpts === undefined
          ? DEFAULTS.maxKeepCkpts
          : checkInteger(o.maxKeepCkpts, 'maxKeepCkpts', 'an integer (<= 0 keeps all)'),
      saveLast: o.saveLast === undefined ? DEFAULTS.saveLast : checkBoolean(o.saveLast, 'saveLast'),
      saveBest: o.saveBest,
      rule: o.rule,
      greaterKeys: o.greaterKeys,
      lessKeys: o.lessKeys,
      filenameTmpl: o.filenameTmpl,
      backendArgs: checkRecord(o.backendArgs, 'backendArgs') as BackendArgs | undefined,
      publishedKeys: o.publishedKeys,
      saveBegin: DEFAULTS.saveBegin,
      codec,
      layout,
      maxShardBytes:
        o.maxShardBytes === undefined
          ? DEFAULTS.maxShardBytes
          : checkInteger(o.maxShardBytes, 'maxShardBytes', 'an integer >= 1 (bytes)', { min: 1 }),
      backend: o.backend,
      signal: o.signal,
    };
    if (o.saveBegin !== undefined) {
      if (typeof o.saveBegin !== 'number' || !Number.isInteger(o.saveBegin) || o.saveBegin < 0) {
        throw configError('saveBegin', o.saveBegin, 'an integer >= 0 (the first step from which interval saving counts)');
      }
      config.saveBegin = o.saveBegin;
    }
    if (o.backend !== undefined && (typeof o.backend !== 'object' || typeof o.backend?.put !== 'function')) {
      throw configError('backend', o.backend, 'an object implementing StorageBackend');
    }
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw configError('signal', o.signal, 'an AbortSignal');
    if (config.backendArgs?.backend !== undefined && o.backend === undefined) {
      // Fails now, with the registered names, rather than at the first save.
      resolveBackendName(config.outDir ?? '', config.backendArgs);
    }

    // Filename template (ours: exactly one `{}`, and no escape from the folder).
    const ext = codec.extension;
    const tmpl = o.filenameTmpl ?? (byEpoch ? `epoch_{}${ext}` : `iter_{}${ext}`);
    if (typeof tmpl !== 'string' || tmpl.split('{}').length !== 2) {
      throw configError(
        'filenameTmpl',
        o.filenameTmpl,
        'a string with exactly one "{}" for the step, e.g. "epoch_{}.safetensors"',
      );
    }
    if (/^[\\/]/.test(tmpl) || tmpl.split(/[\\/]/).includes('..') || tmpl.includes('\0')) {
      throw configError('filenameTmpl', tmpl, 'a relative name inside the checkpoint folder (no "..", no leading separator)');
    }
    this.filenameTmpl = tmpl;

    // saveBest and rule.
    if (o.saveBest !== undefined) {
      const list = checkStringList(o.saveBest, 'saveBest', { unique: true });
      if (list.includes('auto') && list.length > 1) {
        throw configError('saveBest', o.saveBest, '"auto" alone, or a list of metric names without "auto"');
      }
      this.#keyIndicators = list;
    }
    let rules: (Rule | undefined)[] = [undefined];
    if (o.rule !== undefined) {
      if (typeof o.rule === 'string') rules = [checkRuleValue(o.rule, 'rule')];
      else if (Array.isArray(o.rule)) {
        rules = o.rule.map((r, i) => checkRuleValue(r, `rule[${i}]`));
        const metrics = this.#keyIndicators?.length ?? 1;
        if (rules.length !== 1 && rules.length !== metrics) {
          throw configError('rule', o.rule, `one rule, or one per saveBest metric (${metrics})`);
        }
      } else throw configError('rule', o.rule, '"greater", "less", or a list of them');
    }
    this.greaterKeys = o.greaterKeys === undefined ? DEFAULT_GREATER_KEYS : checkStringList(o.greaterKeys, 'greaterKeys');
    this.lessKeys = o.lessKeys === undefined ? DEFAULT_LESS_KEYS : checkStringList(o.lessKeys, 'lessKeys');
    if (this.#keyIndicators) this.#initRules(rules, this.#keyIndicators);

    this.publishedKeys =
      o.publishedKeys === undefined ? undefined : checkStringList(o.publishedKeys, 'publishedKeys', { unique: true });
    this.config = Object.freeze(config);
  }

  /** The folder checkpoints go to, known after `beforeTrain`. */
  get outDir(): string | undefined {
    return this.#outDir;
  }

  get keepCkptIds(): readonly number[] {
    return this.#keepCkptIds;
  }

  /** Current best checkpoint path per metric. */
  get bestCheckpoints(): ReadonlyMap<string, string | undefined> {
    return this.#bestCkptPaths;
  }

  #initRules(rules: (Rule | undefined)[], keyIndicators: string[]): void {
    const expanded = rules.length === 1 ? keyIndicators.map(() => rules[0]) : rules;
    this.#rules = keyIndicators.map((key, i) => {
      const rule = expanded[i];
      if (rule === undefined && key !== 'auto') return inferRule(key, this.greaterKeys, this.lessKeys);
      return rule;
    });
    this.#keyIndicators = keyIndicators;
  }

  get #single(): boolean {
    return (this.#keyIndicators?.length ?? 0) === 1;
  }

  #bestKeys(metric: string): { score: string; ckpt: string } {
    return this.#single
      ? { score: 'best_score', ckpt: 'best_ckpt' }
      : { score: `best_score_${metric}`, ckpt: `best_ckpt_${metric}` };
  }

  #stepName(step: number): string {
    return this.filenameTmpl.replace('{}', String(step));
  }

  #store_(): StorageBackend {
    if (!this.#store || this.#outDir === undefined) {
      throw new SavepointError(
        'CONFIG',
        'CheckpointHook used before beforeTrain(runner): call it first so that the store is chosen',
      );
    }
    return this.#store;
  }

  async beforeTrain(runner: Runner): Promise<void> {
    const workDir = runner.workDir;
    let outDir = this.config.outDir ?? workDir;
    const store = this.config.backend ?? getBackend(outDir, this.config.backendArgs ?? {});
    if (this.config.outDir !== undefined && this.config.outDir !== workDir) {
      const base = workDir.replace(/[\\/]+$/, '');
      outDir = store.joinPath(outDir, base.slice(Math.max(base.lastIndexOf('/'), base.lastIndexOf('\\')) + 1));
    }
    this.#store = store;
    this.#outDir = outDir;
    this.#workDirStore =
      this.config.outDir === undefined || uriScheme(workDir) === uriScheme(this.config.outDir) ? store : getBackend(workDir);
    runner.logger.info(`Checkpoints will be saved to ${outDir}.`);

    const info = runner.runtimeInfo;
    if (this.#keyIndicators) {
      for (const metric of this.#keyIndicators) {
        const key = this.#bestKeys(metric).ckpt;
        this.#bestCkptPaths.set(metric, info.has(key) ? (info.get<string>(key) ?? undefined) : undefined);
      }
    }
    if (this.config.maxKeepCkpts > 0) {
      const ids = [...(info.get<number[]>('keep_ckpt_ids') ?? [])];
      while (ids.length > this.config.maxKeepCkpts) {
        const step = ids.shift() as number;
        if (runner.rank === 0) await this.#removeLogged(runner, store.joinPath(outDir, this.#stepName(step)), 'old checkpoint');
      }
      this.#keepCkptIds = ids;
    }
    // (ours) Finish deletions that a crash interrupted: the checkpoint we resume from lists them.
    const pending = info.get<string[]>(PENDING_REMOVALS_KEY) ?? [];
    if (runner.rank === 0) {
      for (const path of pending) await this.#removeLogged(runner, path, 'checkpoint left by an interrupted save');
      if (info.has('last_ckpt') && this.#keyIndicators) await this.#removeOrphanBests(runner);
    }
    info.set(PENDING_REMOVALS_KEY, []);
  }

  /**
   * (ours) On resume, a best checkpoint written just before a crash may be named by no
   * runtime info. It is deleted so that one best per metric remains. One listing, at resume only.
   */
  async #removeOrphanBests(runner: Runner): Promise<void> {
    const store = this.#store_();
    const outDir = this.#outDir as string;
    const stepPattern = this.filenameTmpl.split('{}').map(escapeRegExp).join('\\d+');
    const patterns = (this.#keyIndicators ?? []).map(
      // With 'auto' the metric is unknown until the first evaluation, but there is only one: any best_ file is its.
      (metric) =>
        [
          metric,
          new RegExp(
            `^best_${metric === 'auto' ? '.+' : escapeRegExp(metric.replaceAll('/', '_'))}_${stepPattern.replaceAll('/', '_')}$`,
          ),
        ] as const,
    );
    for await (const entry of store.list(outDir)) {
      for (const [metric, pattern] of patterns) {
        const current = this.#bestCkptPaths.get(metric);
        if (pattern.test(entry.name) && entry.path !== current && store.joinPath(outDir, entry.name) !== current) {
          await this.#removeLogged(runner, entry.path, `unreferenced best checkpoint of ${metric}`);
        }
      }
    }
  }

  async #removeLogged(runner: Runner, path: string, what: string): Promise<void> {
    if (await removeCheckpoint(this.#store_(), path, { signal: this.config.signal }))
      runner.logger.info(`The ${what} ${path} is removed`);
  }

  async afterTrainEpoch(runner: Runner): Promise<void> {
    if (!this.config.byEpoch) return;
    if (this.#dueAt(runner.epoch, runner.maxEpochs)) {
      runner.logger.info(`Saving checkpoint at ${runner.epoch} epochs`);
      await this.#saveRegular(runner, runner.epoch, { epoch: runner.epoch, iter: runner.iter }, []);
    }
  }

  async afterTrainIter(runner: Runner): Promise<void> {
    if (this.config.byEpoch) return;
    if (this.#dueAt(runner.iter, runner.maxIters)) {
      runner.logger.info(`Saving checkpoint at ${runner.iter} iterations`);
      await this.#saveRegular(runner, runner.iter, { epoch: runner.epoch, iter: runner.iter }, []);
    }
  }

  #dueAt(step: number, last: number): boolean {
    const { interval, saveBegin, saveLast } = this.config;
    const byInterval = interval > 0 && step >= saveBegin && (step - saveBegin) % interval === 0;
    return byInterval || (saveLast && step === last);
  }

  /** Regular save of `step`: write, move the pointer, then delete what rotation dropped and `extraRemovals`. */
  async #saveRegular(
    runner: Runner,
    step: number,
    meta: { epoch: number; iter: number },
    extraRemovals: string[],
  ): Promise<void> {
    const store = this.#store_();
    const outDir = this.#outDir as string;
    const info = runner.runtimeInfo;
    const removals = [...extraRemovals];
    const ids = [...this.#keepCkptIds];
    if (this.config.maxKeepCkpts > 0) {
      if (!(ids.length > 0 && ids[ids.length - 1] === step)) {
        if (ids.length === this.config.maxKeepCkpts) removals.push(store.joinPath(outDir, this.#stepName(ids.shift() as number)));
        ids.push(step);
      }
      info.set('keep_ckpt_ids', ids);
    }
    const path = store.joinPath(outDir, this.#stepName(step));
    info.set('last_ckpt', path);
    info.set(PENDING_REMOVALS_KEY, removals);
    this.#keepCkptIds = ids;
    this.#lastCkpt = path;

    if (runner.rank === 0) {
      await this.#write(runner, path, meta, { optimizer: this.config.saveOptimizer, scheduler: this.config.saveParamScheduler });
      await writeLastCheckpoint(this.#workDirStore as StorageBackend, runner.workDir, path, { signal: this.config.signal });
      for (const old of removals)
        await this.#removeLogged(
          runner,
          old,
          removals.indexOf(old) < extraRemovals.length ? 'previous best checkpoint' : 'old checkpoint',
        );
    }
    info.set(PENDING_REMOVALS_KEY, []);
  }

  async #write(
    runner: Runner,
    path: string,
    meta: { epoch: number; iter: number },
    include: { optimizer: boolean; scheduler: boolean },
  ) {
    const checkpoint: Record<string, unknown> = {
      meta: { ...(runner.extraMeta?.() ?? {}), ...meta },
      state_dict: runner.modelState(),
      message_hub: { runtime_info: runner.runtimeInfo.toJSON() },
    };
    if (include.optimizer && runner.optimizerState) checkpoint.optimizer = runner.optimizerState();
    if (include.scheduler && runner.schedulerState) checkpoint.param_schedulers = runner.schedulerState();
    const store = this.#store_();
    if (this.config.layout === 'directory') {
      await saveCheckpointDir(store, path, checkpoint, { maxShardBytes: this.config.maxShardBytes, signal: this.config.signal });
    } else {
      await saveCheckpointFile(store, path, checkpoint, { codec: this.config.codec, signal: this.config.signal });
    }
  }

  async afterValEpoch(runner: Runner, metrics: Record<string, number | null | undefined>): Promise<void> {
    if (!metrics || Object.keys(metrics).length === 0) {
      runner.logger.warn(
        'Since `metrics` is an empty dict, the behavior to save the best checkpoint will be skipped in this evaluation.',
      );
      return;
    }
    if (!this.#keyIndicators) return;
    const store = this.#store_();
    const outDir = this.#outDir as string;
    const { byEpoch } = this.config;
    const step = byEpoch ? runner.epoch : runner.iter;
    const ckptFilename = this.#stepName(step);
    const meta = { epoch: runner.epoch, iter: runner.iter };
    if (this.#keyIndicators.includes('auto')) {
      const first = Object.keys(metrics)[0] as string;
      this.#initRules(this.#rules, [first]);
      this.#bestCkptPaths.set(first, this.#bestCkptPaths.get('auto'));
      this.#bestCkptPaths.delete('auto');
    }
    const info = runner.runtimeInfo;
    const oldBests: string[] = [];
    let bestUpdated = false;
    for (const [i, metric] of this.#keyIndicators.entries()) {
      const rule = this.#rules[i] as Rule;
      const score = metrics[metric];
      const keys = this.#bestKeys(metric);
      const best = info.has(keys.score) ? (info.get<number>(keys.score) as number) : initialBest[rule];
      if (score === null || score === undefined || !isBetter[rule](score, best)) continue;
      bestUpdated = true;
      info.set(keys.score, score);
      const previous = this.#bestCkptPaths.get(metric);
      const name = `best_${metric}_${ckptFilename}`.replaceAll('/', '_');
      const path = store.joinPath(outDir, name);
      info.set(keys.ckpt, path);
      this.#bestCkptPaths.set(metric, path);
      if (runner.rank === 0) await this.#write(runner, path, meta, { optimizer: false, scheduler: false });
      if (previous && previous !== path) oldBests.push(previous);
      runner.logger.info(
        `The best checkpoint with ${score.toFixed(4)} ${metric} at ${step} ${byEpoch ? 'epoch' : 'iter'} is saved to ${name}.`,
      );
      if (this.#lastCkpt === undefined && oldBests.length > 0 && runner.rank === 0) {
        // (ours) No regular checkpoint to re-save: the new best is committed, so the old one can go now.
        await this.#removeLogged(runner, oldBests.pop() as string, 'previous best checkpoint');
      }
    }
    if (bestUpdated && this.#lastCkpt !== undefined) {
      // Re-save so the runtime info inside the newest regular checkpoint names the new best;
      // the old bests are deleted after that save commits and the pointer moves.
      await this.#saveRegular(runner, step, meta, oldBests);
    }
  }

  async afterTrain(runner: Runner): Promise<void> {
    if (!this.publishedKeys || runner.rank !== 0) return;
    const targets: string[] = [];
    if (this.config.saveLast && this.#lastCkpt !== undefined) targets.push(this.#lastCkpt);
    for (const path of this.#bestCkptPaths.values()) if (path) targets.push(path);
    for (const path of targets) {
      const { path: published, removedKeys } = await publishCheckpoint(this.#store_(), path, this.publishedKeys, {
        codec: this.config.codec,
        signal: this.config.signal,
      });
      if (removedKeys.length > 0) {
        runner.logger.info(
          `Key ${JSON.stringify(removedKeys)} will be removed because they are not found in published_keys. If you want to keep them, please set \`${JSON.stringify(removedKeys)}\` in published_keys`,
        );
      }
      runner.logger.info(`The checkpoint (${path}) is published to ${published}.`);
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function checkPathOption(value: unknown, option: string): string {
  if (typeof value !== 'string' || value.length === 0) throw configError(option, value, 'a non-empty path or store URI');
  return value;
}
