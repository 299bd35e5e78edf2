// Issue #25, on every store: a full load and `verify` stream the checkpoint (no read of a
// whole file: each tensor's bytes land in its own buffer, hashed on the way), and the
// run's pointer records the seal of the checkpoint it names (format/seal.ts), so an edit
// of a checkpoint's metadata, which no data hash covers, is refused on resume and by
// verify. An older pointer without the seal still resumes.
import { ToyModel } from '@savepoint/backend-test-suite';
import {
  CheckpointHook,
  CorruptCheckpointError,
  loadCheckpoint,
  ReferenceTrainer,
  Run,
  type StorageBackend,
  saveCheckpointDir,
  saveCheckpointFile,
} from '@savepoint/core';
import { afterAll, describe, expect, it } from 'vitest';
import { recordFigures } from '../src/report.js';
import { storeTargets } from './stores.js';

let sealed = 0;
afterAll(() => recordFigures('sealed-checkpoints', { refused: sealed }));

/** The store, recording the size of every `get` answer (a whole-file read shows as a large one). */
function countingGets(store: StorageBackend): { store: StorageBackend; largestGet: () => number; streams: () => number } {
  let largest = 0;
  let streams = 0;
  const wrapped = new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'get') {
        return async (...args: Parameters<StorageBackend['get']>) => {
          const bytes = await target.get(...args);
          largest = Math.max(largest, bytes.byteLength);
          return bytes;
        };
      }
      if (key === 'getStream') {
        return (...args: Parameters<StorageBackend['getStream']>) => {
          streams++;
          return target.getStream(...args);
        };
      }
      const value = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: wrapped, largestGet: () => largest, streams: () => streams };
}

function trainer(store: StorageBackend, workDir: string, maxEpochs: number, resume: boolean, layout: 'file' | 'directory') {
  return new ReferenceTrainer({
    workDir,
    model: new ToyModel(),
    checkpointHook: new CheckpointHook({
      interval: 1,
      maxKeepCkpts: 2,
      backend: store,
      ...(layout === 'directory' ? { layout, maxShardBytes: 16 } : {}),
    }),
    itersPerEpoch: 1,
    maxEpochs,
    resume,
    backend: store,
    logger: { info() {}, warn() {} },
  });
}

/** Rewrites `meta` of the checkpoint at `path` as an editor would: its data, and so its data hash, unchanged. */
async function editMeta(store: StorageBackend, path: string): Promise<void> {
  const manifestPath = store.joinPath(path, 'savepoint-manifest.json');
  if (await store.isFile(manifestPath)) {
    const manifest = JSON.parse(new TextDecoder().decode(await store.get(manifestPath)));
    manifest.metadata.meta = JSON.stringify({ ...JSON.parse(manifest.metadata.meta), epoch: 99, iter: 99 });
    await store.put(manifestPath, JSON.stringify(manifest, null, 1));
    return;
  }
  const bytes = await store.get(path);
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  header.__metadata__.meta = JSON.stringify({ ...JSON.parse(header.__metadata__.meta), epoch: 99, iter: 99 });
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.byteLength + bytes.byteLength - 8 - length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.byteLength), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + length), 8 + text.byteLength);
  await store.put(path, out);
}

const sameBytes = (x: ArrayBufferView, y: ArrayBufferView) =>
  Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));

const state = () => ({
  meta: { epoch: 1 },
  state_dict: { a: new Float32Array(300_000).map((_, i) => i), b: new Float64Array(70_000).fill(2.5) },
});

for (const target of storeTargets('sealed-loads')) {
  describe.skipIf(!!target.skipReason)(`loads, verify and seals on ${target.name}`, () => {
    it('a full load and verify stream the checkpoint: no read answers more than a header, file or folder', async () => {
      const { store, root } = await target.open();
      try {
        const file = store.joinPath(root, 'one.safetensors');
        const dir = store.joinPath(root, 'sharded');
        await saveCheckpointFile(store, file, state());
        await saveCheckpointDir(store, dir, state(), { maxShardBytes: 600_000 });
        for (const path of [file, dir]) {
          const counted = countingGets(store);
          const loaded = await loadCheckpoint(counted.store, path);
          const { a, b } = loaded.state_dict as { a: Float32Array; b: Float64Array };
          // Compared as bytes: a deep equality of 370,000 elements takes seconds.
          expect(sameBytes(a, state().state_dict.a) && sameBytes(b, state().state_dict.b), path).toBe(true);
          expect(counted.streams(), path).toBeGreaterThan(0);
          // 16 KiB: the first read of a header (or a manifest); the checkpoint is ~1.8 MB.
          expect(counted.largestGet(), path).toBeLessThanOrEqual(16 * 1024);
          const run = await Run.locate(path, { backend: counted.store });
          const report = await run.verify();
          await run.close();
          expect(report.ok, JSON.stringify(report)).toBe(true);
          expect(counted.largestGet(), `verify ${path}`).toBeLessThanOrEqual(16 * 1024);
        }
      } finally {
        await store.rmtree(root);
      }
    });

    for (const layout of ['file', 'directory'] as const) {
      it(`an edit of the metadata of the checkpoint the pointer names (${layout}) is refused on resume and by verify`, async () => {
        const { store, root } = await target.open();
        try {
          const workDir = store.joinPath(root, 'run');
          await trainer(store, workDir, 2, false, layout).train();
          const pointer = new TextDecoder().decode(await store.get(store.joinPath(workDir, 'last_checkpoint')));
          expect(pointer).toMatch(/\nseal: [0-9a-f]{64}(\n|$)/);
          const named = store.joinPath(workDir, pointer.split('\n')[0] as string);
          await editMeta(store, named);
          // The data hash still holds: without the seal, the edited meta would load.
          expect((await loadCheckpoint(store, named)).meta).toMatchObject({ epoch: 99 });
          sealed++;
          await expect(trainer(store, workDir, 3, true, layout).train()).rejects.toThrow(CorruptCheckpointError);
          await expect(trainer(store, workDir, 3, true, layout).train()).rejects.toThrow(
            /does not match the SHA-256 the run's pointer records/,
          );
          const run = await Run.locate(workDir, { backend: store });
          const report = await run.verify();
          await run.close();
          expect(report.ok).toBe(false);
          const atPointer = report.results.find((r) => r.path.endsWith('last_checkpoint'));
          expect(atPointer?.error).toMatch(/does not load: .*pointer records/);
        } finally {
          await store.rmtree(root);
        }
      });
    }

    it('an older pointer without a seal still resumes and verifies', async () => {
      const { store, root } = await target.open();
      try {
        const workDir = store.joinPath(root, 'run');
        await trainer(store, workDir, 2, false, 'file').train();
        const at = store.joinPath(workDir, 'last_checkpoint');
        const lines = new TextDecoder().decode(await store.get(at)).split('\n');
        await store.put(at, lines.filter((line) => !line.startsWith('seal:')).join('\n'));
        const resumed = trainer(store, workDir, 3, true, 'file');
        await resumed.train();
        expect(resumed.epoch).toBe(3);
        const run = await Run.locate(workDir, { backend: store });
        const report = await run.verify();
        await run.close();
        expect(report.ok, JSON.stringify(report)).toBe(true);
      } finally {
        await store.rmtree(root);
      }
    });
  });
}
