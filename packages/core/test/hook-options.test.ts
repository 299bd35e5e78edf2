// Validation at construction and rule inference: store-independent, so not in the matrix.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import {
  CheckpointHook,
  ConfigError,
  DEFAULT_GREATER_KEYS,
  DEFAULT_LESS_KEYS,
  inferRule,
  ReferenceTrainer,
} from '../src/index.js';

const bad = (options: Record<string, unknown>) => () => new CheckpointHook(options as never);

describe('CheckpointHook options', () => {
  it.each([
    [{ interval: 1.5 }, /"interval" got 1.5 \(number\); accepted: an integer/],
    [{ interval: '2' }, /"interval" got "2" \(string\)/],
    [{ maxKeepCkpts: 2.5 }, /"maxKeepCkpts"/],
    [{ saveBegin: -1 }, /"saveBegin" got -1 \(number\); accepted: an integer >= 0/],
    [{ saveBegin: 0.5 }, /"saveBegin" got 0.5/],
    [{ byEpoch: 'yes' }, /"byEpoch" got "yes" \(string\); accepted: true or false/],
    [{ saveBest: 3 }, /"saveBest" got 3 \(number\); accepted: a non-empty string or a list/],
    [{ saveBest: ['acc', 3] }, /"saveBest"/],
    [{ saveBest: ['auto', 'acc'] }, /"saveBest".*"auto" alone/],
    [{ saveBest: ['acc', 'acc'] }, /"saveBest" has the duplicate entry "acc"/],
    [{ saveBest: 'acc', rule: 'bigger' }, /"rule" got "bigger" \(string\); accepted: "greater" or "less"/],
    [
      { saveBest: ['acc', 'loss'], rule: ['greater', 'less', 'less'] },
      /"rule" got an array of 3; accepted: one rule, or one per saveBest metric \(2\)/,
    ],
    [{ saveBest: 'acc', rule: 5 }, /"rule" got 5/],
    [{ saveBest: 'acc', rule: ['greater', 'nope'] }, /"rule\[1\]" got "nope"/],
    [{ greaterKeys: [1] }, /"greaterKeys"/],
    [{ lessKeys: 7 }, /"lessKeys"/],
    [{ filenameTmpl: 'epoch.safetensors' }, /"filenameTmpl".*exactly one "\{\}"/],
    [{ filenameTmpl: 'e_{}_{}.safetensors' }, /"filenameTmpl"/],
    [{ filenameTmpl: '../e_{}.safetensors' }, /"filenameTmpl" got "..\/e_\{\}.safetensors".*no "\/"/],
    [{ filenameTmpl: '/abs/e_{}.safetensors' }, /"filenameTmpl".*no "\/"/],
    [{ filenameTmpl: './x_{}' }, /"filenameTmpl"/],
    [{ filenameTmpl: 'a//x_{}' }, /"filenameTmpl"/],
    [{ filenameTmpl: 'x/./{}' }, /"filenameTmpl"/],
    [{ filenameTmpl: 'best_{}.safetensors' }, /"filenameTmpl".*"best_"/],
    [{ maxShardBytes: 16 }, /"maxShardBytes".*only together with layout: 'directory'/],
    [{ rule: 'greater' }, /"rule".*only together with saveBest/],
    [{ backend: { put() {} }, backendArgs: {} }, /"backend" and "backendArgs" were both given/],
    [{ leaseTtlMs: 10 }, /"leaseTtlMs" got 10 \(number\); accepted: an integer >= 1000/],
    [{ publishedKeys: 5 }, /"publishedKeys"/],
    [{ publishedKeys: ['meta', 'meta'] }, /"publishedKeys" has the duplicate entry "meta"/],
    [{ backendArgs: { backend: 'nosuch' } }, /unknown backend "nosuch".*backendArgs.backend/],
    [{ backendArgs: 'x' }, /"backendArgs" got "x"/],
    [{ layout: 'zip' }, /"layout" got "zip"/],
    [{ maxShardBytes: 0 }, /"maxShardBytes"/],
    [{ saveBest: 'foo' }, /cannot infer the rule for metric "foo".*give rule/],
    [{ intervall: 2 }, /unknown CheckpointHook option "intervall"; accepted: interval,/],
  ])('%j fails with a ConfigError that names it', (options, message) => {
    expect(bad(options)).toThrow(ConfigError);
    expect(bad(options)).toThrow(message);
  });

  it('accepts the documented forms', () => {
    const hook = new CheckpointHook({
      saveBest: ['acc', 'FID'],
      rule: ['greater', 'less'],
      greaterKeys: 'score',
      lessKeys: 'err',
    });
    expect(hook.config.greaterKeys).toEqual(['score']);
    expect(hook.config.lessKeys).toEqual(['err']);
    expect(new CheckpointHook().config.filenameTmpl).toBe('epoch_{}.safetensors');
    expect(new CheckpointHook({ byEpoch: false }).config.filenameTmpl).toBe('iter_{}.safetensors');
    expect(new CheckpointHook({ saveBest: 'auto' }).config.saveBest).toEqual({ metrics: ['auto'], rules: [undefined] });
    expect(new CheckpointHook({ layout: 'directory' }).config.layout).toEqual({ kind: 'directory', maxShardBytes: 2 ** 30 });
    expect(new CheckpointHook({ leaseTtlMs: false }).config.leaseTtlMs).toBeUndefined();
    expect(new CheckpointHook({ publishedKeys: 'meta' }).config.publishedKeys).toEqual(['meta']);
  });
});

describe('filenameTmpl fits in a file name (issue 27)', () => {
  it("with saveBest 'auto', a metric too long for a best's file name fails at the first evaluation, before a best is written", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-auto-name-'));
    try {
      const metric = `acc_${'x'.repeat(150)}`;
      const trainer = new ReferenceTrainer({
        workDir: dir,
        model: {
          trainStep: () => 0,
          evaluate: (p) => ({ [metric]: p.epoch / 10 }),
          stateDict: () => ({ w: new Float32Array(2) }),
          loadStateDict: () => {},
        },
        checkpointHook: new CheckpointHook({
          interval: 1,
          saveBest: 'auto',
          filenameTmpl: `${'e'.repeat(60)}_{}.safetensors`,
          backend: new LocalBackend(),
        }),
        itersPerEpoch: 1,
        maxEpochs: 3,
        valInterval: 1,
        backend: new LocalBackend(),
      });
      const failure = await trainer.train().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(ConfigError);
      expect(String(failure)).toMatch(/option "filenameTmpl" got .*as the best of "acc_x+".*over the 255 a file name may have/);
      // The regular checkpoint of epoch 1 and the pointer to it are untouched; no best was begun.
      const names = await readdir(dir);
      expect(names.filter((n) => n.includes('best'))).toEqual([]);
      expect((await readFile(join(dir, 'last_checkpoint'), 'utf8')).split('\n')[0]).toMatch(/e+_1\.safetensors$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** A template of `bytes` bytes: `x...x_{}.safetensors`. */
  const template = (bytes: number) => `${'x'.repeat(bytes - '_{}.safetensors'.length)}_{}.safetensors`;

  it('a 245-character template fails at construction, with the bad value and what is accepted', () => {
    const tmpl = template(245);
    expect(bad({ filenameTmpl: tmpl })).toThrow(ConfigError);
    expect(bad({ filenameTmpl: tmpl })).toThrow(
      `option "filenameTmpl" got "${tmpl}" (245 bytes): at step 9007199254740991, published, its file name as written through a temp file is 296 bytes, over the 255 a file name may have. Accepted: a template of at most 204 bytes`,
    );
  });
  it('the bound counts the best prefix of the longest metric, and bytes, not characters', () => {
    // `.` + name at the largest step (16 digits for "{}") + `-<8 hex>` + `.savepoint-tmp-<12 hex>`: 51 bytes more than the template.
    expect(new CheckpointHook({ filenameTmpl: template(204) }).config.filenameTmpl).toBe(template(204));
    expect(bad({ filenameTmpl: template(205) })).toThrow(/at most 204 bytes/);
    // best_<metric>_ adds 5 + the metric + 1.
    expect(new CheckpointHook({ filenameTmpl: template(195), saveBest: 'acc' }).config.filenameTmpl).toBe(template(195));
    expect(bad({ filenameTmpl: template(196), saveBest: ['acc', 'val/loss'] })).toThrow(
      /as the best of "val\/loss", published.*at most 190 bytes with this saveBest/,
    );
    // Two bytes per "é" in UTF-8.
    expect(bad({ filenameTmpl: `${'é'.repeat(100)}_{}.safetensors` })).toThrow(/\(215 bytes\).*at most 204 bytes/);
  });
});

describe('rule inference', () => {
  const infer = (m: string) => inferRule(m, DEFAULT_GREATER_KEYS, DEFAULT_LESS_KEYS);
  it.each([
    ['acc', 'greater'],
    ['ACC', 'greater'],
    ['loss', 'less'],
    ['LOSS', 'less'],
    ['top1_acc', 'greater'],
    ['coco/bbox_mAP', 'greater'],
    ['AR@100', 'greater'],
    ['ar@100', 'greater'],
    ['val_loss', 'less'],
    ['accuracy_loss', 'greater'],
    ['mIoU', 'greater'],
    ['precision', 'greater'],
    ['auc_roc', 'greater'],
  ])('%s is %s', (metric, rule) => {
    expect(infer(metric)).toBe(rule);
  });
  it('an exact less word wins over a greater substring', () => {
    expect(inferRule('topless', ['top'], ['topless'])).toBe('less');
  });
  it('fails for an unknown metric, saying a rule must be given', () => {
    expect(() => infer('fid')).toThrow(ConfigError);
    expect(() => infer('fid')).toThrow(/cannot infer the rule for metric "fid"/);
  });
});

describe('retention and save policy options (issue 26)', () => {
  it.each([
    [{ saveTopK: 2 }, /"saveTopK" got 2 \(number\); accepted: only together with saveBest/],
    [{ saveBest: 'acc', saveTopK: 0 }, /"saveTopK" got 0 \(number\); accepted: an integer >= 1/],
    [{ keepPeriod: 0 }, /"keepPeriod" got 0 \(number\); accepted: an integer >= 1 \(steps\)/],
    [{ keepTimeIntervalMs: 1.5 }, /"keepTimeIntervalMs" got 1.5 \(number\); accepted: an integer >= 1 \(milliseconds\)/],
    [{ saveIntervalMs: '1h' }, /"saveIntervalMs" got "1h" \(string\); accepted: an integer >= 1 \(milliseconds\)/],
    [{ saveAtSteps: [3, 3] }, /"saveAtSteps".*accepted: a list of distinct integers >= 1/],
    [{ saveAtSteps: 5 }, /"saveAtSteps" got 5/],
    [{ shouldSave: true }, /"shouldSave" got true \(boolean\); accepted: a function \(step, runner\) => boolean/],
    [{ saveOnSignals: ['SIGKILL'] }, /"saveOnSignals".*catchable signal names.*not SIGKILL or SIGSTOP/],
    [{ saveOnSignals: ['SIGTERMX'] }, /"saveOnSignals"/],
    [{ saveOnSignals: [] }, /"saveOnSignals"/],
    [{ preemptionGraceMs: 1000 }, /"preemptionGraceMs" got 1000 \(number\); accepted: only together with saveOnSignals/],
    [{ saveOnSignals: ['SIGTERM'], preemptionGraceMs: 0 }, /"preemptionGraceMs" got 0/],
    [{ saveOnException: 'yes' }, /"saveOnException" got "yes" \(string\); accepted: true or false/],
  ])('%j fails with a ConfigError that names it', (options, message) => {
    expect(bad(options)).toThrow(ConfigError);
    expect(bad(options)).toThrow(message);
  });

  it('resolves into one retention policy and one preemption choice', () => {
    const hook = new CheckpointHook({
      saveBest: 'acc',
      saveTopK: 3,
      maxKeepCkpts: 2,
      keepPeriod: 10,
      keepTimeIntervalMs: 3_600_000,
      saveAtSteps: [7, 3],
      saveOnSignals: ['SIGTERM', 'SIGINT'],
    });
    expect(hook.config.retention).toEqual({ maxKeepCkpts: 2, keepPeriod: 10, keepTimeIntervalMs: 3_600_000, topK: 3 });
    expect(hook.config.saveAtSteps).toEqual([3, 7]);
    expect(hook.config.preemption).toEqual({ kind: 'save', signals: ['SIGTERM', 'SIGINT'], graceMs: 25_000 });
    expect(new CheckpointHook().config.preemption).toEqual({ kind: 'off' });
  });
});
