// (ours) Write only what changed. An improving best at a regular save used to upload
// the state three times: the regular checkpoint, the best (the same bytes again), and
// the regular checkpoint once more to record the new best in its runtime info. Now the
// best is a copy made by the store and the new best is recorded in the pointer: one
// upload per save point. Resume, copies of the run and crashes must still see the bests.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { CheckpointHook, type CheckpointHookOptions, ReferenceTrainer, Run } from '../src/index.js';
import { bodyBytes, bodyChunks, collect } from '../src/store/bytes.js';
import type { PutBody, PutOptions } from '../src/store/index.js';

/** Local disk that counts the bytes every put sends (what an upload to a cloud would cost). */
class CountingBackend extends LocalBackend {
  uploaded = 0;
  copies = 0;
  override async put(path: string, body: PutBody, options?: PutOptions): Promise<void> {
    const bytes = bodyBytes(body) ?? (await collect(bodyChunks(body)));
    this.uploaded += bytes.byteLength;
    return super.put(path, bytes, options);
  }
  override async copy(source: string, destination: string, options?: Parameters<LocalBackend['copy']>[2]): Promise<void> {
    this.copies++;
    return super.copy(source, destination, options);
  }
}

/** A model of 1 MiB of weights whose accuracy improves every epoch. */
function trainer(dir: string, store: LocalBackend, hook: CheckpointHookOptions, maxEpochs: number, resume = false) {
  let w = new Float32Array(256 * 1024);
  return new ReferenceTrainer({
    workDir: dir,
    model: {
      trainStep: () => {
        w = w.map((x) => x + 1);
        return 0;
      },
      evaluate: (p) => ({ acc: p.epoch / 100 }),
      stateDict: () => ({ w }),
      loadStateDict: (s) => {
        w = new Float32Array(s.w as Float32Array);
      },
    },
    checkpointHook: new CheckpointHook({ interval: 1, saveBest: 'acc', maxKeepCkpts: 2, ...hook, backend: store }),
    itersPerEpoch: 1,
    maxEpochs,
    valInterval: 1,
    resume,
    backend: store,
  });
}

describe('bytes uploaded per save point of an improving best', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-bytes-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([false, true])('are one checkpoint (<= 1.05x), the best a store-side copy (asyncSave %s)', async (asyncSave) => {
    const store = new CountingBackend();
    await trainer(dir, store, { asyncSave }, 6).train();
    const checkpointBytes = (await stat(join(dir, 'epoch_6.safetensors'))).size;
    // Six save points, each improving the best: six checkpoints' worth, and the small files (pointer, lease, marker).
    const perSavePoint = store.uploaded / 6 / checkpointBytes;
    expect(perSavePoint).toBeLessThanOrEqual(1.05);
    expect(store.copies).toBe(6);
    const names = (await readdir(dir)).sort();
    expect(names).toEqual(['best_acc_epoch_6.safetensors', 'epoch_5.safetensors', 'epoch_6.safetensors', 'last_checkpoint']);
    // The pointer carries the new best's bookkeeping; the checkpoint's own runtime info predates it.
    const pointer = (await readFile(join(dir, 'last_checkpoint'), 'utf8')).split('\n');
    expect(pointer[0]).toBe('epoch_6.safetensors');
    expect(pointer[2]).toMatch(/^seal: [0-9a-f]{64}$/);
    expect(JSON.parse((pointer[3] as string).replace(/^runtime_info: /, ''))).toMatchObject({
      best_ckpt: 'best_acc_epoch_6.safetensors',
      best_score: 0.06,
    });
  });

  it('a resume sees the best the pointer records: it is kept (not an orphan) and replaced by the next better one', async () => {
    const store = new CountingBackend();
    await trainer(dir, store, {}, 3).train();
    const logs: string[] = [];
    const resumed = trainer(dir, store, {}, 4, true);
    (resumed as { logger: unknown }).logger = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };
    await resumed.train();
    expect(resumed.runtimeInfo.get('best_ckpt')).toBe('best_acc_epoch_4.safetensors');
    expect((await readdir(dir)).filter((n) => n.startsWith('best_'))).toEqual(['best_acc_epoch_4.safetensors']);
    expect(logs.join('\n')).not.toContain('unreferenced best');
  });

  it('a copy of the run (Run.copyTo, savepoint cp) carries the bookkeeping: its resume keeps the best', async () => {
    const store = new LocalBackend();
    await trainer(dir, store, {}, 3).train();
    const copyDir = `${dir}-copy`;
    try {
      const source = Run.open(dir, { backend: store });
      await source.copyTo(Run.open(copyDir, { backend: store }));
      const resumed = trainer(copyDir, store, {}, 3, true);
      await resumed.train();
      expect(resumed.resumedFrom).toBe(join(copyDir, 'epoch_3.safetensors'));
      expect((await readdir(copyDir)).filter((n) => n.startsWith('best_'))).toEqual(['best_acc_epoch_3.safetensors']);
      expect(resumed.runtimeInfo.get('best_ckpt')).toBe('best_acc_epoch_3.safetensors');
    } finally {
      await rm(copyDir, { recursive: true, force: true });
    }
  });

  it("bookkeeping in a pointer is a stranger's input: only the engine's keys are taken, and names outside the run are refused", async () => {
    const store = new LocalBackend();
    await trainer(dir, store, {}, 2).train();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      join(dir, 'last_checkpoint'),
      `epoch_2.safetensors\ngeneration: 1\nruntime_info: ${JSON.stringify({ best_ckpt: '../../etc/passwd', user_key: 'injected' })}`,
    );
    const resumed = trainer(dir, store, {}, 2, true);
    await resumed.train();
    expect(resumed.runtimeInfo.get('user_key')).toBeUndefined();
    expect(resumed.runtimeInfo.get('best_ckpt')).toBeNull();
    expect(await readFile('/etc/passwd', 'utf8')).toContain('root');
  });
});
