// Every option of the hook and every backendArgs field, given a wrong type or
// value, fails at construction with a ConfigError that names it; bad paths are
// refused on every store before any request.
import { AZURE_OPTION_NAMES, AzureBackend } from '@savepoint/backend-azure';
import { GCS_OPTION_NAMES, GcsBackend } from '@savepoint/backend-gcs';
import { LOCAL_OPTION_NAMES, LocalBackend } from '@savepoint/backend-local';
import { S3_OPTION_NAMES, S3Backend } from '@savepoint/backend-s3';
import {
  CHECKPOINT_HOOK_OPTION_NAMES,
  CheckpointHook,
  ConfigError,
  InvalidPathError,
  type StorageBackend,
} from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../examples/memory-backend/src/index.js';
import { recordFigures } from '../src/index.js';

/** Wrong for every option: not an integer, not a string, not a boolean, not an object. */
const WRONG_VALUES: readonly unknown[] = [12345.5, () => 'not an option', Symbol('wrong')];
/** Options whose accepted value is a function: for them a function is not a wrong type. */
const FUNCTION_OPTIONS = new Set(['shouldSave']);

let tried = 0;
const counts: Record<string, number> = {};
afterAll(() => recordFigures('hostile-input', { casesTried: tried, byTarget: counts }));

function expectNamed(build: () => unknown, option: string, target: string) {
  tried++;
  counts[target] = (counts[target] ?? 0) + 1;
  let error: unknown;
  try {
    build();
  } catch (e) {
    error = e;
  }
  expect(error, `${target}.${option}`).toBeInstanceOf(ConfigError);
  expect(String((error as Error).message), `${target}.${option}`).toContain(option);
}

describe('hostile options', () => {
  it.each(CHECKPOINT_HOOK_OPTION_NAMES)('CheckpointHook option %s refuses wrong types, naming itself', (option) => {
    const wrong = FUNCTION_OPTIONS.has(option) ? WRONG_VALUES.filter((v) => typeof v !== 'function') : WRONG_VALUES;
    for (const value of wrong) expectNamed(() => new CheckpointHook({ [option]: value }), option, 'CheckpointHook');
  });

  const backends: [string, readonly string[], (args: Record<string, unknown>) => unknown][] = [
    ['s3', S3_OPTION_NAMES, (a) => new S3Backend(a)],
    ['gcs', GCS_OPTION_NAMES, (a) => new GcsBackend(a)],
    ['azure', AZURE_OPTION_NAMES, (a) => new AzureBackend(a)],
    ['local', LOCAL_OPTION_NAMES, (a) => new LocalBackend(a)],
  ];
  for (const [name, options, build] of backends) {
    it.each(options)(`${name} backendArgs.%s refuses wrong types, naming itself`, (option) => {
      for (const value of WRONG_VALUES) expectNamed(() => build({ [option]: value }), option, `${name} backendArgs`);
    });
    it(`${name} refuses unknown backendArgs, listing the accepted ones`, () => {
      expectNamed(() => build({ totallyUnknown: 1 }), 'totallyUnknown', `${name} backendArgs`);
    });
  }
});

describe('hostile paths', () => {
  const stores: [string, StorageBackend, string][] = [
    ['local', new LocalBackend({ root: '/tmp' }), '/tmp/savepoint-hostile'],
    ['s3', new S3Backend({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }), 's3://bucket/dir'],
    ['gcs', new GcsBackend({ projectId: 'p' }), 'gs://bucket/dir'],
    ['azure', new AzureBackend({}), 'az://container/dir'],
    ['memory', new MemoryBackend(), 'mem://bucket/dir'],
  ];
  const hostile = (base: string) => [
    `${base}/../escape`,
    `${base}/a/../../b`,
    `${base}/nul\0byte`,
    '',
    `${base}/..`,
    base.startsWith('/') ? '/etc/passwd' : `${base}//double`,
  ];
  it.each(stores)('%s refuses escaping, empty and NUL paths before any request', async (_name, store, base) => {
    for (const path of hostile(base)) {
      for (const attempt of [
        () => store.put(path, 'x'),
        () => store.get(path),
        () => store.remove(path),
        () => store.rmtree(path),
      ]) {
        tried++;
        counts[`${store.name} paths`] = (counts[`${store.name} paths`] ?? 0) + 1;
        await expect(attempt(), JSON.stringify(path)).rejects.toBeInstanceOf(InvalidPathError);
      }
    }
    expect(() => store.joinPath(base, '..', 'x')).toThrow(InvalidPathError);
  });
});
