// What only the disk store does: temp files, file:// URLs, the root option.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, InvalidPathError } from '@savepoint/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/index.js';

describe('LocalBackend', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'savepoint-local-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('leaves no temp file behind after a failed write, and hides temp files from listings', async () => {
    const backend = new LocalBackend();
    async function* failing() {
      yield new Uint8Array(10);
      throw new Error('boom');
    }
    await expect(backend.put(join(root, 'x.bin'), failing())).rejects.toThrow('boom');
    expect(await readdir(root)).toEqual([]);
    await writeFile(join(root, '.y.bin.savepoint-tmp-abc'), 'stale');
    const names: string[] = [];
    for await (const entry of backend.list(root)) names.push(entry.name);
    expect(names).toEqual([]);
  });

  it('a write below a regular file names that file and says what to do, not "EEXIST ... mkdir" (issue 27)', async () => {
    const backend = new LocalBackend();
    const file = join(root, 'work_dir');
    await writeFile(file, 'a file, not a folder');
    for (const path of [join(file, 'savepoint.lease'), join(file, 'sub', 'deeper', 'epoch_1.safetensors')]) {
      const failed = await backend.put(path, 'x').catch((error: unknown) => error);
      expect(failed, path).toBeInstanceOf(InvalidPathError);
      expect((failed as Error).message, path).toContain(
        `${file} is a file, not a folder, so nothing can be written inside it. Give a folder, or a path that does not exist yet`,
      );
    }
    await writeFile(join(root, 'source.bin'), 'bytes');
    await expect(backend.copy(join(root, 'source.bin'), join(file, 'copy.bin'))).rejects.toThrow(/is a file, not a folder/);
  });

  it('training into a work dir that is a regular file fails at once, naming it', async () => {
    const { ToyModel } = await import('@savepoint/backend-test-suite');
    const { CheckpointHook, ReferenceTrainer } = await import('@savepoint/core');
    const backend = new LocalBackend();
    const file = join(root, 'run');
    await writeFile(file, 'notes');
    const trainer = new ReferenceTrainer({
      workDir: file,
      model: new ToyModel(),
      checkpointHook: new CheckpointHook({ interval: 1, backend }),
      itersPerEpoch: 1,
      maxEpochs: 1,
      backend,
    });
    await expect(trainer.train()).rejects.toThrow(`${file} is a file, not a folder`);
  });

  it('serves file:// URLs', async () => {
    const backend = new LocalBackend();
    const url = `${pathToFileURL(root).href}/a b.txt`;
    await backend.put(url, 'hi');
    expect(new TextDecoder().decode(await backend.get(join(root, 'a b.txt')))).toBe('hi');
    expect(backend.joinPath(pathToFileURL(root).href, 'x', 'y')).toBe(`${pathToFileURL(root).href}/x/y`);
  });

  it('keeps paths inside root', async () => {
    const backend = new LocalBackend({ root });
    await expect(backend.put('/etc/savepoint-escape', 'x')).rejects.toBeInstanceOf(InvalidPathError);
    await backend.put('relative.txt', 'x');
    expect(await backend.isFile(join(root, 'relative.txt'))).toBe(true);
  });

  it('rejects unknown options with the accepted ones', () => {
    expect(() => new LocalBackend({ rooot: '/tmp' } as never)).toThrow(ConfigError);
    expect(() => new LocalBackend({ rooot: '/tmp' } as never)).toThrow(/rooot.*accepted: root/);
  });
});

describe('LocalBackend folders behave like object-store prefixes', () => {
  it('a folder with no file below it (left by an interrupted rmtree) is neither a dir nor listed', async () => {
    const { mkdir } = await import('node:fs/promises');
    const root = await mkdtemp(join(tmpdir(), 'savepoint-local-'));
    try {
      await mkdir(join(root, 'best_acc_epoch_1.safetensors', 'nested'), { recursive: true });
      await writeFile(join(root, 'best_acc_epoch_1.safetensors', '.x.savepoint-tmp-1'), 'temp');
      const backend = new LocalBackend();
      expect(await backend.isDir(join(root, 'best_acc_epoch_1.safetensors'))).toBe(false);
      const names: string[] = [];
      for await (const entry of backend.list(root)) names.push(entry.name);
      expect(names).toEqual([]);
      await writeFile(join(root, 'best_acc_epoch_1.safetensors', 'nested', 'f'), 'x');
      expect(await backend.isDir(join(root, 'best_acc_epoch_1.safetensors'))).toBe(true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
