// (ours) Incremental checkpoints on local disk: content-addressed tensor objects, a
// manifest per checkpoint, uploads of what changed only, and garbage collection of the
// objects no kept checkpoint names. The same rules run on every store in
// backend-test-suite (incremental-checks.ts); these are the format's own cases.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { CheckpointHook, CorruptCheckpointError, loadCheckpoint, ReferenceTrainer, Run } from '../src/index.js';
import { bodyBytes, bodyChunks, collect } from '../src/store/bytes.js';
import type { PutBody, PutOptions } from '../src/store/index.js';

class CountingBackend extends LocalBackend {
  uploaded = 0;
  override async put(path: string, body: PutBody, options?: PutOptions): Promise<void> {
    const bytes = bodyBytes(body) ?? (await collect(bodyChunks(body)));
    this.uploaded += bytes.byteLength;
    return super.put(path, bytes, options);
  }
}

/** A frozen base of 9 x 64 KiB and a trainable head of 64 KiB: 90% of the bytes never change. */
function transferTrainer(dir: string, store: LocalBackend, maxEpochs: number, resume = false, maxKeepCkpts = 10) {
  const base = Array.from({ length: 9 }, (_, i) => new Float32Array(16 * 1024).fill(-(i + 1)));
  let head = new Float32Array(16 * 1024);
  return new ReferenceTrainer({
    workDir: dir,
    model: {
      trainStep: () => {
        head = head.map((x) => x + 1);
        return 0;
      },
      evaluate: (p) => ({ acc: p.epoch / 100 }),
      stateDict: () => ({ head, ...Object.fromEntries(base.map((b, i) => [`base${i}`, b])) }),
      loadStateDict: (s) => {
        head = new Float32Array(s.head as Float32Array);
      },
    },
    checkpointHook: new CheckpointHook({ interval: 1, incremental: true, saveOptimizer: false, maxKeepCkpts, backend: store }),
    itersPerEpoch: 1,
    maxEpochs,
    resume,
    backend: store,
  });
}

describe('incremental checkpoints (local disk)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-incr-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a save with a frozen base uploads the changed head only; the checkpoints load whole', async () => {
    const store = new CountingBackend();
    await transferTrainer(dir, store, 1).train();
    const first = store.uploaded;
    await transferTrainer(dir, store, 4, true).train();
    const perSave = (store.uploaded - first) / 3;
    // The head (10% of the state) and the small files (manifest, pointer, lease).
    expect(perSave / first).toBeLessThan(0.12);
    const loaded = await loadCheckpoint(store, join(dir, 'epoch_4.safetensors'));
    expect((loaded.state_dict as Record<string, Float32Array>).head?.[0]).toBe(4);
    expect((loaded.state_dict as Record<string, Float32Array>).base8?.[5]).toBe(-9);
  });

  it('objects no kept checkpoint names are collected after the pointer moves; shared ones stay', async () => {
    const store = new LocalBackend();
    await transferTrainer(dir, store, 5, false, 2).train();
    const objects = await readdir(join(dir, 'savepoint-objects'));
    // Nine base tensors shared by both kept checkpoints, and the two heads.
    expect(objects).toHaveLength(11);
    const run = Run.open(dir, { backend: store });
    expect((await run.collectGarbage()).removed).toBe(0);
  });

  it('what a crash leaves unreferenced is collected by the next resume', async () => {
    const store = new LocalBackend();
    await transferTrainer(dir, store, 2, false, 2).train();
    const stray = join(dir, 'savepoint-objects', `F32-${'a'.repeat(64)}.safetensors`);
    await writeFile(stray, 'left by a killed save');
    await transferTrainer(dir, store, 2, true, 2).train();
    expect(await readdir(join(dir, 'savepoint-objects'))).not.toContain(`F32-${'a'.repeat(64)}.safetensors`);
  });

  it('an object whose bytes were changed is refused on load, naming it; a truncated one is written again by the next save', async () => {
    const store = new LocalBackend();
    await transferTrainer(dir, store, 1).train();
    const objects = join(dir, 'savepoint-objects');
    const names = await readdir(objects);
    const victim = join(objects, names[0] as string);
    const bytes = await readFile(victim);
    bytes[bytes.byteLength - 1] = (bytes[bytes.byteLength - 1] as number) ^ 0xff;
    await writeFile(victim, bytes);
    await expect(loadCheckpoint(store, join(dir, 'epoch_1.safetensors'))).rejects.toBeInstanceOf(CorruptCheckpointError);
    await expect(loadCheckpoint(store, join(dir, 'epoch_1.safetensors'))).rejects.toThrow(names[0] as string);
    // A truncated object does not count as stored: a save of the same bytes writes it again.
    await writeFile(victim, bytes.subarray(0, 10));
    const run = Run.open(dir, { backend: store });
    const checkpoint = await run.load('epoch_1.safetensors').catch(() => undefined);
    expect(checkpoint).toBeUndefined();
    const state = Object.fromEntries(
      Array.from({ length: 9 }, (_, i) => [`base${i}`, new Float32Array(16 * 1024).fill(-(i + 1))]),
    );
    await run.save(
      'epoch_2.safetensors',
      { state_dict: { head: new Float32Array(16 * 1024).fill(1), ...state } },
      { kind: 'incremental' },
    );
    const loaded = await loadCheckpoint(store, join(dir, 'epoch_2.safetensors'));
    expect(Object.keys(loaded.state_dict as object)).toHaveLength(10);
  });

  it('a large tensor is stored in chunks; a change in one chunk uploads that chunk', async () => {
    const store = new CountingBackend();
    const run = Run.open(dir, { backend: store });
    const big = new Float32Array(64 * 1024).fill(1);
    await run.save('epoch_1.safetensors', { state_dict: { big } }, { kind: 'incremental', chunkBytes: 16 * 1024 });
    expect(await readdir(join(dir, 'savepoint-objects'))).toHaveLength(1); // 16 identical chunks: one object
    const before = store.uploaded;
    const changed = big.slice();
    changed[0] = 2;
    await run.save('epoch_2.safetensors', { state_dict: { big: changed } }, { kind: 'incremental', chunkBytes: 16 * 1024 });
    expect(store.uploaded - before).toBeLessThan(20 * 1024);
    const loaded = (await run.load('epoch_2.safetensors')).state_dict as Record<string, Float32Array>;
    expect(loaded.big).toEqual(changed);
  });

  it('refuses incremental together with a layout, naming both', () => {
    expect(() => new CheckpointHook({ incremental: true, layout: 'directory' })).toThrow(/layout.*incremental/);
    expect(() => new CheckpointHook({ incremental: 'yes' as unknown as boolean })).toThrow(/incremental/);
  });
});

describe('incremental checkpoints with asyncSave (local disk, this thread)', () => {
  it('saves in the background leave every checkpoint whole and nothing unreferenced', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-incr-async-'));
    try {
      const store = new LocalBackend();
      let w = new Float32Array(1024);
      const frozen = new Float32Array(8192).fill(-1);
      await new ReferenceTrainer({
        workDir: dir,
        model: {
          trainStep: () => {
            w = w.map((x) => x + 1);
            return 0;
          },
          evaluate: () => ({}),
          stateDict: () => ({ w, frozen }),
          loadStateDict: () => {},
        },
        checkpointHook: new CheckpointHook({ interval: 1, incremental: true, asyncSave: true, maxKeepCkpts: 2, backend: store }),
        itersPerEpoch: 1,
        maxEpochs: 4,
        backend: store,
      }).train();
      const usage = await Run.open(dir, { backend: store }).objectUsage();
      expect(usage.missing).toEqual([]);
      expect(usage.unreferenced).toEqual([]);
      expect(usage.stored).toBe(3); // the frozen tensor, and w at epochs 3 and 4
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
