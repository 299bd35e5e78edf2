// openCheckpoint / loadCheckpoint({ keys }): headers from small range reads, tensors on
// demand, adjacent ranges coalesced, for single files and directory checkpoints.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { InstrumentedBackend } from '../../backend-test-suite/src/instrumented-backend.js';
import {
  CorruptCheckpointError,
  loadCheckpoint,
  NotFoundError,
  openCheckpoint,
  saveCheckpointDir,
  saveCheckpointFile,
  Tensor,
} from '../src/index.js';

/** 20 weight tensors of 64 KiB each, an optimizer twice that size, and some JSON. */
function bigCheckpoint() {
  const state: Record<string, Float32Array> = {};
  for (let i = 0; i < 20; i++) state[`layer${i}.weight`] = new Float32Array(16_384).map((_, j) => i * 1000 + j);
  const momentum: Record<string, Float32Array> = {};
  for (let i = 0; i < 20; i++) momentum[`m${i}`] = new Float32Array(32_768).fill(i);
  return {
    meta: { epoch: 3, iter: 300, seed: 7 },
    state_dict: { ...state, 'head.kernel': new Tensor(new Float32Array(12).fill(0.5), [3, 4]) },
    optimizer: { state: momentum, param_groups: [{ lr: 0.1 }] },
  };
}

describe('openCheckpoint', () => {
  let dir: string;
  const local = new LocalBackend();
  const checkpoint = bigCheckpoint();
  let fileSize = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-reader-'));
    fileSize = (await saveCheckpointFile(local, join(dir, 'one.safetensors'), checkpoint)).bytes;
    await saveCheckpointDir(local, join(dir, 'sharded'), checkpoint, { maxShardBytes: 600_000 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each(['one.safetensors', 'sharded'])('lists keys and tensors of %s from its header alone', async (name) => {
    const store = new InstrumentedBackend(local);
    const reader = await openCheckpoint(store, join(dir, name));
    expect(reader.keys.sort()).toEqual(['meta', 'optimizer', 'state_dict']);
    expect(reader.tensorNames).toHaveLength(41);
    expect(reader.tensorInfo('state_dict.head.kernel')).toMatchObject({ dtype: 'F32', shape: [3, 4], bytes: 48 });
    // Headers only: at most the first 16 KiB of each file (and the manifest), never the tensors.
    const files = new Set(reader.tensorInfos().map((t) => t.shard)).size;
    expect(reader.bytesRead).toBeLessThanOrEqual(files * 16 * 1024 + 8 * 1024);
    expect(reader.bytesRead).toBeLessThan(fileSize / 10);
  });

  it.each(['one.safetensors', 'sharded'])('reads one tensor of %s equal to the full load', async (name) => {
    const reader = await openCheckpoint(local, join(dir, name));
    const full = await loadCheckpoint(local, join(dir, name));
    const one = await reader.readTensor('state_dict.layer7.weight');
    expect(one).toEqual((full.state_dict as Record<string, unknown>)['layer7.weight']);
    const kernel = await reader.readTensor('state_dict.head.kernel');
    expect(kernel).toBeInstanceOf(Tensor);
    expect((kernel as Tensor).shape).toEqual([3, 4]);
  });

  it('loads only state_dict, reading about a third of the file, equal to the full load', async () => {
    const store = new InstrumentedBackend(local);
    const partial = await loadCheckpoint(store, join(dir, 'one.safetensors'), { keys: ['state_dict'] });
    const full = await loadCheckpoint(local, join(dir, 'one.safetensors'));
    expect(Object.keys(partial)).toEqual(['state_dict']);
    expect(partial.state_dict).toEqual(full.state_dict);
    const reader = await openCheckpoint(local, join(dir, 'one.safetensors'));
    await reader.load(['state_dict']);
    expect(reader.bytesRead / fileSize).toBeLessThan(0.36);
    expect(reader.bytesRead / fileSize).toBeGreaterThan(0.3);
  });

  it('coalesces adjacent tensors into one range request, and reads 10% of the tensors for about 10% of the bytes', async () => {
    const store = new InstrumentedBackend(local);
    const reader = await openCheckpoint(store, join(dir, 'one.safetensors'));
    const before = store.calls.filter((c) => c.op === 'get').length;
    const names = [
      'state_dict.layer0.weight',
      'state_dict.layer1.weight',
      'state_dict.layer2.weight',
      'state_dict.layer3.weight',
    ];
    const tensors = await reader.readTensors(names);
    expect([...tensors.keys()].sort()).toEqual(names.sort());
    expect(store.calls.filter((c) => c.op === 'get').length - before).toBe(1);
    expect(reader.bytesRead / fileSize).toBeLessThan(0.12);
  });

  it('says which keys exist when asked for one that does not', async () => {
    await expect(loadCheckpoint(local, join(dir, 'one.safetensors'), { keys: ['state_dcit'] })).rejects.toThrow(
      /no key "state_dcit".*holds: meta, state_dict, optimizer/,
    );
    const reader = await openCheckpoint(local, join(dir, 'one.safetensors'));
    await expect(reader.readTensor('nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses a corrupt header length without reading the file, and a truncated file', async () => {
    const huge = new Uint8Array(64);
    new DataView(huge.buffer).setBigUint64(0, 10n ** 12n, true);
    await writeFile(join(dir, 'huge.safetensors'), huge);
    const store = new InstrumentedBackend(local);
    await expect(openCheckpoint(store, join(dir, 'huge.safetensors'))).rejects.toThrow(/header claims 1000000000000 bytes/);
    const whole = await local.get(join(dir, 'one.safetensors'));
    await writeFile(join(dir, 'cut.safetensors'), whole.subarray(0, whole.byteLength - 100));
    await expect(openCheckpoint(local, join(dir, 'cut.safetensors'))).rejects.toThrow(CorruptCheckpointError);
    await expect(openCheckpoint(local, join(dir, 'cut.safetensors'))).rejects.toThrow(/cut\.safetensors.*truncated/);
  });

  it('is NotFoundError for nothing there and for a folder whose save did not finish', async () => {
    await expect(openCheckpoint(local, join(dir, 'absent.safetensors'))).rejects.toBeInstanceOf(NotFoundError);
    await local.put(join(dir, 'unfinished', 'shard-00001-of-00001-x.safetensors'), 'x');
    await expect(openCheckpoint(local, join(dir, 'unfinished'))).rejects.toThrow(/did not finish/);
  });
});
