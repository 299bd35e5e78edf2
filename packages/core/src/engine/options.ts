// CheckpointHook's options: checked once, at construction, into one normalized type.
// Every error names the option, shows the bad value and says what is accepted;
// options that only make sense together are unions, so `hook.config` never holds a
// combination the engine would have to second-guess.

import { constants as osConstants } from 'node:os';
import { CHECKPOINT_EXTENSION } from '../format/safetensors.js';
import { publishedName } from '../run/checkpoint-files.js';
import { checkFilenameTemplate } from '../run/layout.js';
import { DEFAULT_LEASE_TTL_MS } from '../run/lease.js';
import type { StorageBackend } from '../store/contract.js';
import { ConfigError } from '../store/errors.js';
import { type BackendArgs, resolveBackendName } from '../store/registry.js';
import { TEMP_TOKEN_LENGTH, tempNameFor } from '../store/temp-names.js';
import {
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkRecord,
  checkStringList,
  configError,
  describeValue,
} from '../store/validate.js';
import type { RetentionPolicy } from './retention-policy.js';
import type { Rule } from './rule.js';
import type { Runner } from './runner.js';

export type { Rule };

export interface CheckpointHookOptions {
  /** Save every N steps; <= 0 never saves by interval. */
  interval?: number;
  /** Steps are epochs (true) or iterations (false). */
  byEpoch?: boolean;
  saveOptimizer?: boolean;
  saveParamScheduler?: boolean;
  /** Where checkpoints go; defaults to the work dir. If different, `join(outDir, basename(workDir))`. */
  outDir?: string;
  /** Keep only the newest N regular checkpoints; <= 0 keeps all. */
  maxKeepCkpts?: number;
  /** Always save at the last step. */
  saveLast?: boolean;
  /** A metric name, a list, or `'auto'`. */
  saveBest?: string | string[];
  rule?: Rule | Rule[];
  greaterKeys?: string | string[];
  lessKeys?: string | string[];
  /** Regular checkpoint name; `{}` becomes the step. Defaults to `epoch_{}<ext>` / `iter_{}<ext>`. */
  filenameTmpl?: string;
  /** Chooses and configures the store (see the registry). Not together with `backend`. */
  backendArgs?: BackendArgs;
  /** After training, write slim copies of the last and best checkpoints with only these keys. */
  publishedKeys?: string | string[];
  /** First step from which interval saving counts. */
  saveBegin?: number;
  /** (ours) `file`: one file per checkpoint; `directory`: a folder of shards plus a manifest written last. */
  layout?: 'file' | 'directory';
  /**
   * (ours) Incremental checkpoints: tensors go to content-addressed objects of the run
   * (by the SHA-256 of their bytes, large ones in chunks), a checkpoint is a manifest
   * naming them, and a save uploads only the tensors whose bytes are not stored yet (a
   * frozen base is uploaded once). Objects no kept checkpoint names are deleted after
   * each save. Not together with `layout`. Default false.
   */
  incremental?: boolean;
  /** (ours) Shard size bound for `layout: 'directory'` (only with it). */
  maxShardBytes?: number;
  /** (ours) An already-built store for outDir (skips the registry). Not together with `backendArgs`. */
  backend?: StorageBackend;
  /** (ours) Cancels long writes. */
  signal?: AbortSignal;
  /** (ours) One writer per run: how long the work dir's lease lasts without renewal (ms), or `false` for no lease. */
  leaseTtlMs?: number | false;
  /**
   * (ours) How long `beforeTrain` waits for a live lease held by another job to expire or
   * be released (logging who holds it and until when) before it fails. Default 0: fail at once.
   */
  leaseWaitMs?: number;
  /**
   * (ours) Save in the background: at a save point the hook copies the tensors it will
   * write and returns; the upload, the pointer move and the deletions follow in the
   * same order as a synchronous save. Failures surface at the next hook call, at
   * `afterTrain` and at `flush()`.
   */
  asyncSave?: boolean;
  /** (ours) With `asyncSave`: save points in flight at most; one more waits for the oldest. Default 1. */
  maxPendingSaves?: number;
  /** (ours) With `layout: 'directory'`: shards uploaded at once. Default 4. */
  shardConcurrency?: number;
  /** (ours) With `saveBest`: the best K checkpoints of each metric are kept (default 1, the reference's one best). */
  saveTopK?: number;
  /** (ours) Every regular checkpoint whose step is a multiple of N is kept forever (not counted in `maxKeepCkpts`). */
  keepPeriod?: number;
  /** (ours) One regular checkpoint per interval of wall-clock time since the run's start is kept forever (ms). */
  keepTimeIntervalMs?: number;
  /** (ours) Save when this much wall-clock time has passed since the last save (ms); with `interval`, whichever comes first. */
  saveIntervalMs?: number;
  /** (ours) Save at exactly these steps (epochs or iterations). */
  saveAtSteps?: readonly number[];
  /** (ours) Save at a step when this returns true (besides the other triggers). */
  shouldSave?: (step: number, runner: Runner) => boolean;
  /** (ours) On one of these signals: save at the next step boundary, commit, release the lease, exit 128+n. */
  saveOnSignals?: readonly NodeJS.Signals[];
  /** (ours) With `saveOnSignals`: the time from the signal within which the save must commit (ms). Default 25000. */
  preemptionGraceMs?: number;
  /** (ours) Save a checkpoint (marked `saved_on: "exception"` in its meta) when the training loop throws. */
  saveOnException?: boolean;
}

/** Where checkpoints are written: a store given as an object, or one the registry builds. */
export type StoreChoice = { kind: 'instance'; backend: StorageBackend } | { kind: 'registry'; backendArgs: BackendArgs };

/** What happens on a termination signal: nothing (no handler), or a save within a grace period. */
export type PreemptionChoice = { kind: 'off' } | { kind: 'save'; signals: readonly NodeJS.Signals[]; graceMs: number };

export type LayoutChoice = { kind: 'file' } | { kind: 'directory'; maxShardBytes: number } | { kind: 'incremental' };

export interface BestPolicy {
  /** Metric names, or `['auto']` until the first evaluation picks one. */
  metrics: string[];
  /** One rule per metric; undefined only for `'auto'` (inferred at the first evaluation). */
  rules: (Rule | undefined)[];
}

export interface ResolvedCheckpointHookOptions {
  interval: number;
  byEpoch: boolean;
  saveOptimizer: boolean;
  saveParamScheduler: boolean;
  outDir: string | undefined;
  maxKeepCkpts: number;
  saveLast: boolean;
  saveBegin: number;
  saveBest: BestPolicy | undefined;
  greaterKeys: readonly string[];
  lessKeys: readonly string[];
  filenameTmpl: string;
  publishedKeys: readonly string[] | undefined;
  layout: LayoutChoice;
  store: StoreChoice;
  signal: AbortSignal | undefined;
  /** Lease time-to-live in ms, or undefined for no lease. */
  leaseTtlMs: number | undefined;
  /** How long to wait for another job's lease (0: not at all). */
  leaseWaitMs: number;
  asyncSave: boolean;
  maxPendingSaves: number;
  shardConcurrency: number;
  /** What is kept: rotation, keep-forever schedules, top-K bests (retention-policy.ts). */
  retention: RetentionPolicy;
  saveIntervalMs: number | undefined;
  saveAtSteps: readonly number[];
  shouldSave: ((step: number, runner: Runner) => boolean) | undefined;
  preemption: PreemptionChoice;
  saveOnException: boolean;
}

/** Default time from a preemption signal to giving up: under GKE's 30 s and AWS spot's 2 min notice. */
export const DEFAULT_PREEMPTION_GRACE_MS = 25_000;
/** Signals a process cannot handle, so never a save trigger. */
const UNCATCHABLE_SIGNALS = ['SIGKILL', 'SIGSTOP'];

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

const DEFAULT_MAX_SHARD_BYTES = 1024 * 1024 * 1024;

export const CHECKPOINT_HOOK_OPTION_NAMES: readonly (keyof CheckpointHookOptions)[] = [
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
  'layout',
  'maxShardBytes',
  'incremental',
  'backend',
  'signal',
  'leaseTtlMs',
  'leaseWaitMs',
  'asyncSave',
  'maxPendingSaves',
  'shardConcurrency',
  'saveTopK',
  'keepPeriod',
  'keepTimeIntervalMs',
  'saveIntervalMs',
  'saveAtSteps',
  'shouldSave',
  'saveOnSignals',
  'preemptionGraceMs',
  'saveOnException',
];

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

/**
 * A file name has at most 255 bytes on the usual file systems (ext4, XFS, APFS, NTFS).
 * Object keys may be longer, but `savepoint cp` brings checkpoints to disk, so every
 * store gets names that fit there.
 */
const MAX_NAME_BYTES = 255;
/** The step in the longest name: the largest integer a step counts to exactly. */
const LONGEST_STEP = Number.MAX_SAFE_INTEGER;

function byteLength(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

/**
 * The longest file name a template makes: at the largest step, as the best of the
 * longest tracked metric (when bests are tracked), published (a copy of any checkpoint
 * can be: `savepoint publish`), and as the local store's temp file it is written
 * through. Checked at construction, so a template too long fails here and not at the
 * first save, hours into a run; with `saveBest: 'auto'` the metric is known only at the
 * first evaluation, which checks it again before anything is written for a best.
 */
export function checkNameLength(tmpl: string, metrics: readonly string[]): string {
  const regular = tmpl.replace('{}', String(LONGEST_STEP));
  const metric = metrics.filter((m) => m !== 'auto').reduce((a, b) => (byteLength(b) > byteLength(a) ? b : a), '');
  const named = metrics.length > 0 ? `best_${metric}_${regular}`.replaceAll('/', '_') : regular;
  const written = tempNameFor(publishedName(named, '0'.repeat(64), CHECKPOINT_EXTENSION), '0'.repeat(TEMP_TOKEN_LENGTH));
  const bytes = byteLength(written);
  if (bytes <= MAX_NAME_BYTES) return tmpl;
  const room = MAX_NAME_BYTES - (bytes - byteLength(tmpl));
  const best = metrics.length > 0 ? `, as the best of ${metric ? JSON.stringify(metric) : 'its metric'}` : '';
  throw new ConfigError(
    `option "filenameTmpl" got ${JSON.stringify(tmpl)} (${byteLength(tmpl)} bytes): at step ${LONGEST_STEP}${best}, published, its file name as written through a temp file is ${bytes} bytes, over the ${MAX_NAME_BYTES} a file name may have. ` +
      `Accepted: a template of at most ${Math.max(room, 0)} bytes${metrics.length > 0 ? ' with this saveBest (a shorter metric name leaves more)' : ''}, e.g. "epoch_{}.safetensors".`,
    { option: 'filenameTmpl' },
  );
}

function checkRuleValue(value: unknown, option: string): Rule {
  if (value !== 'greater' && value !== 'less') throw configError(option, value, '"greater" or "less"');
  return value;
}

function optional<T>(value: unknown, fallback: T, check: (value: unknown) => T): T {
  return value === undefined ? fallback : check(value);
}

function resolveBest(o: CheckpointHookOptions, greaterKeys: readonly string[], lessKeys: readonly string[]) {
  if (o.saveBest === undefined) {
    if (o.rule !== undefined) throw configError('rule', o.rule, 'a rule only together with saveBest');
    return undefined;
  }
  const metrics = checkStringList(o.saveBest, 'saveBest', { unique: true });
  if (metrics.includes('auto') && metrics.length > 1) {
    throw configError('saveBest', o.saveBest, '"auto" alone, or a list of metric names without "auto"');
  }
  let rules: (Rule | undefined)[] = [undefined];
  if (typeof o.rule === 'string') rules = [checkRuleValue(o.rule, 'rule')];
  else if (Array.isArray(o.rule)) {
    rules = o.rule.map((r, i) => checkRuleValue(r, `rule[${i}]`));
    if (rules.length !== 1 && rules.length !== metrics.length) {
      throw configError('rule', o.rule, `one rule, or one per saveBest metric (${metrics.length})`);
    }
  } else if (o.rule !== undefined) throw configError('rule', o.rule, '"greater", "less", or a list of them');
  return { metrics, rules: expandRules(rules, metrics, greaterKeys, lessKeys) };
}

/** One rule per metric: a single rule applies to all; a missing one is inferred (except for `'auto'`). */
export function expandRules(
  rules: readonly (Rule | undefined)[],
  metrics: readonly string[],
  greaterKeys: readonly string[],
  lessKeys: readonly string[],
): (Rule | undefined)[] {
  const expanded = rules.length === 1 ? metrics.map(() => rules[0]) : rules;
  return metrics.map((metric, i) => {
    const rule = expanded[i];
    return rule === undefined && metric !== 'auto' ? inferRule(metric, greaterKeys, lessKeys) : rule;
  });
}

export function resolveCheckpointHookOptions(options: CheckpointHookOptions = {}): ResolvedCheckpointHookOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`CheckpointHook options must be an object, got ${describeValue(options)}`);
  }
  const o = options;
  checkKnownKeys(o as Record<string, unknown>, CHECKPOINT_HOOK_OPTION_NAMES, 'CheckpointHook');

  const byEpoch = optional(o.byEpoch, true, (v) => checkBoolean(v, 'byEpoch'));

  const incremental = optional(o.incremental, false, (v) => checkBoolean(v, 'incremental'));
  if (incremental && o.layout !== undefined) {
    throw configError(
      'layout',
      o.layout,
      'no layout together with incremental: true (an incremental checkpoint is a manifest of tensor objects)',
    );
  }
  const layoutName = o.layout ?? 'file';
  if (layoutName !== 'file' && layoutName !== 'directory') throw configError('layout', layoutName, '"file" or "directory"');
  let layout: LayoutChoice;
  if (layoutName === 'directory') {
    layout = {
      kind: 'directory',
      maxShardBytes: optional(o.maxShardBytes, DEFAULT_MAX_SHARD_BYTES, (v) =>
        checkInteger(v, 'maxShardBytes', 'an integer >= 1 (bytes)', { min: 1 }),
      ),
    };
  } else {
    if (o.maxShardBytes !== undefined) {
      throw configError('maxShardBytes', o.maxShardBytes, "a shard size only together with layout: 'directory'");
    }
    layout = incremental ? { kind: 'incremental' } : { kind: 'file' };
  }

  const backendArgs = checkRecord(o.backendArgs, 'backendArgs') as BackendArgs | undefined;
  let store: StoreChoice;
  if (o.backend !== undefined) {
    if (typeof o.backend !== 'object' || o.backend === null || typeof o.backend.put !== 'function') {
      throw configError('backend', o.backend, 'an object implementing StorageBackend');
    }
    if (backendArgs !== undefined) {
      throw new ConfigError(
        'options "backend" and "backendArgs" were both given; accepted: one of them (a built store, or the arguments the registry builds one from)',
        { option: 'backendArgs' },
      );
    }
    store = { kind: 'instance', backend: o.backend };
  } else {
    // An explicit backend name fails now, with the registered names, rather than at the first save.
    if (backendArgs?.backend !== undefined) resolveBackendName(typeof o.outDir === 'string' ? o.outDir : '', backendArgs);
    store = { kind: 'registry', backendArgs: backendArgs ?? {} };
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw configError('signal', o.signal, 'an AbortSignal');

  const greaterKeys = o.greaterKeys === undefined ? DEFAULT_GREATER_KEYS : checkStringList(o.greaterKeys, 'greaterKeys');
  const lessKeys = o.lessKeys === undefined ? DEFAULT_LESS_KEYS : checkStringList(o.lessKeys, 'lessKeys');

  let leaseTtlMs: number | undefined = DEFAULT_LEASE_TTL_MS;
  if (o.leaseTtlMs === false) leaseTtlMs = undefined;
  else if (o.leaseTtlMs !== undefined) {
    leaseTtlMs = checkInteger(o.leaseTtlMs, 'leaseTtlMs', 'an integer >= 1000 (milliseconds), or false for no lease', {
      min: 1000,
    });
  }

  const leaseWaitMs = optional(o.leaseWaitMs, 0, (v) =>
    checkInteger(v, 'leaseWaitMs', "an integer >= 0 (milliseconds to wait for another job's lease)", { min: 0 }),
  );
  if (o.leaseWaitMs !== undefined && leaseTtlMs === undefined) {
    throw configError('leaseWaitMs', o.leaseWaitMs, 'only together with a lease (leaseTtlMs not false)');
  }
  const asyncSave = optional(o.asyncSave, false, (v) => checkBoolean(v, 'asyncSave'));
  const maxPendingSaves = optional(o.maxPendingSaves, 1, (v) =>
    checkInteger(v, 'maxPendingSaves', 'an integer >= 1 (save points in flight at once)', { min: 1 }),
  );
  if (o.maxPendingSaves !== undefined && !asyncSave) {
    throw configError('maxPendingSaves', o.maxPendingSaves, 'only together with asyncSave: true');
  }
  const shardConcurrency = optional(o.shardConcurrency, 4, (v) =>
    checkInteger(v, 'shardConcurrency', 'an integer >= 1 (shards uploaded at once)', { min: 1 }),
  );
  if (o.shardConcurrency !== undefined && layout.kind !== 'directory') {
    throw configError('shardConcurrency', o.shardConcurrency, "only together with layout: 'directory'");
  }

  const saveBest = resolveBest(o, greaterKeys, lessKeys);
  const saveTopK = optional(o.saveTopK, 1, (v) =>
    checkInteger(v, 'saveTopK', 'an integer >= 1 (best checkpoints kept per metric)', { min: 1 }),
  );
  if (o.saveTopK !== undefined && saveBest === undefined) {
    throw configError('saveTopK', o.saveTopK, 'only together with saveBest (the metrics it ranks)');
  }
  const positive = (option: string, what: string) => (v: unknown) =>
    checkInteger(v, option, `an integer >= 1 (${what})`, { min: 1 });
  const keepPeriod = optional(o.keepPeriod, undefined as number | undefined, positive('keepPeriod', 'steps'));
  const keepTimeIntervalMs = optional(
    o.keepTimeIntervalMs,
    undefined as number | undefined,
    positive('keepTimeIntervalMs', 'milliseconds'),
  );
  const saveIntervalMs = optional(o.saveIntervalMs, undefined as number | undefined, positive('saveIntervalMs', 'milliseconds'));
  const saveAtSteps = optional(o.saveAtSteps, [] as number[], (v) => {
    const accepted = 'a list of distinct integers >= 1 (steps to save at)';
    if (!Array.isArray(v) || v.some((s) => !Number.isSafeInteger(s) || s < 1) || new Set(v).size !== v.length) {
      throw configError('saveAtSteps', v, accepted);
    }
    return [...(v as number[])].sort((a, b) => a - b);
  });
  if (o.shouldSave !== undefined && typeof o.shouldSave !== 'function') {
    throw configError('shouldSave', o.shouldSave, 'a function (step, runner) => boolean');
  }
  const preemption = resolvePreemption(o);
  const maxKeepCkpts = optional(o.maxKeepCkpts, -1, (v) => checkInteger(v, 'maxKeepCkpts', 'an integer (<= 0 keeps all)'));
  const saveOnException = optional(o.saveOnException, false, (v) => checkBoolean(v, 'saveOnException'));
  const filenameTmpl =
    o.filenameTmpl === undefined
      ? `${byEpoch ? 'epoch' : 'iter'}_{}${CHECKPOINT_EXTENSION}`
      : checkNameLength(checkFilenameTemplate(o.filenameTmpl), saveBest?.metrics ?? []);

  return {
    interval: optional(o.interval, -1, (v) => checkInteger(v, 'interval', 'an integer (<= 0 never saves by interval)')),
    byEpoch,
    saveOptimizer: optional(o.saveOptimizer, true, (v) => checkBoolean(v, 'saveOptimizer')),
    saveParamScheduler: optional(o.saveParamScheduler, true, (v) => checkBoolean(v, 'saveParamScheduler')),
    outDir: optional(o.outDir, undefined as string | undefined, (v) => {
      if (typeof v !== 'string' || v.length === 0) throw configError('outDir', v, 'a non-empty path or store URI');
      return v;
    }),
    maxKeepCkpts,
    saveLast: optional(o.saveLast, true, (v) => checkBoolean(v, 'saveLast')),
    saveBegin: optional(o.saveBegin, 0, (v) =>
      checkInteger(v, 'saveBegin', 'an integer >= 0 (the first step from which interval saving counts)', { min: 0 }),
    ),
    saveBest,
    greaterKeys,
    lessKeys,
    filenameTmpl,
    publishedKeys:
      o.publishedKeys === undefined ? undefined : checkStringList(o.publishedKeys, 'publishedKeys', { unique: true }),
    layout,
    store,
    signal: o.signal,
    leaseTtlMs,
    leaseWaitMs,
    asyncSave,
    maxPendingSaves,
    shardConcurrency,
    retention: {
      maxKeepCkpts,
      keepPeriod,
      keepTimeIntervalMs,
      topK: saveTopK,
    },
    saveIntervalMs,
    saveAtSteps,
    shouldSave: o.shouldSave,
    preemption,
    saveOnException,
  };
}

function resolvePreemption(o: CheckpointHookOptions): PreemptionChoice {
  if (o.saveOnSignals === undefined) {
    if (o.preemptionGraceMs !== undefined) {
      throw configError('preemptionGraceMs', o.preemptionGraceMs, 'only together with saveOnSignals');
    }
    return { kind: 'off' };
  }
  const accepted = `a non-empty list of distinct catchable signal names, e.g. ["SIGTERM", "SIGINT"] (not ${UNCATCHABLE_SIGNALS.join(' or ')})`;
  const list = o.saveOnSignals as unknown;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    new Set(list).size !== list.length ||
    list.some((s) => typeof s !== 'string' || !Object.hasOwn(osConstants.signals, s) || UNCATCHABLE_SIGNALS.includes(s))
  ) {
    throw configError('saveOnSignals', list, accepted);
  }
  const graceMs = optional(o.preemptionGraceMs, DEFAULT_PREEMPTION_GRACE_MS, (v) =>
    checkInteger(v, 'preemptionGraceMs', 'an integer >= 1 (milliseconds from the signal to giving up)', { min: 1 }),
  );
  return { kind: 'save', signals: [...(list as NodeJS.Signals[])], graceMs };
}
