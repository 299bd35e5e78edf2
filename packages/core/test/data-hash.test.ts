// (ours) A checkpoint records the SHA-256 of its tensor data in its header; a full load
// (and `savepoint verify`) recomputes it, so a flipped byte is found, not trained on.
// A header savepoint wrote that lost its hash is refused; another tool's file (no hash,
// no savepoint metadata) still loads, its structure checked.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { DATA_SHA256_KEY } from '../src/format/index.js';
import { CorruptCheckpointError, loadCheckpoint, openCheckpoint, SavepointError, saveCheckpointFile } from '../src/index.js';

/** A safetensors file written by hand with no data hash: `savepointTree` names its tensor as savepoint's encoding does. */
function withoutHash(savepointTree: boolean): Uint8Array {
  const data = new Float32Array([1, 2, 3, 4]);
  const header = JSON.stringify({
    __metadata__: savepointTree ? { state_dict: JSON.stringify({ w: { __tensor__: 'state_dict.w' } }) } : { format: 'pt' },
    'state_dict.w': { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
  }).padEnd(136, ' ');
  const out = new Uint8Array(8 + header.length + 16);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(new TextEncoder().encode(header), 8);
  out.set(new Uint8Array(data.buffer), 8 + header.length);
  return out;
}

describe('the data SHA-256 in the header', () => {
  let dir: string;
  const store = new LocalBackend();
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-hash-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('is recorded at save, hidden from the checkpoint keys, and a flipped tensor byte fails the load', async () => {
    const path = join(dir, 'a.safetensors');
    const checkpoint = { meta: { epoch: 1 }, state_dict: { w: new Float32Array(1000).fill(0.25) } };
    await saveCheckpointFile(store, path, checkpoint);
    const reader = await openCheckpoint(store, path);
    expect(reader.metadata[DATA_SHA256_KEY]).toMatch(/^[0-9a-f]{64}$/);
    expect(reader.keys.sort()).toEqual(['meta', 'state_dict']);
    expect(Object.keys(await loadCheckpoint(store, path)).sort()).toEqual(['meta', 'state_dict']);

    const bytes = await readFile(path);
    bytes[bytes.byteLength - 7] = (bytes[bytes.byteLength - 7] ?? 0) ^ 0x01; // one bit of one float
    await writeFile(path, bytes);
    await expect(loadCheckpoint(store, path)).rejects.toBeInstanceOf(CorruptCheckpointError);
    await expect(loadCheckpoint(store, path)).rejects.toThrow(/does not match the SHA-256 its header records/);
  });

  it('a file with no recorded hash from another tool still loads', async () => {
    const path = join(dir, 'other.safetensors');
    await writeFile(path, withoutHash(false));
    const loaded = await loadCheckpoint(store, path);
    expect(Array.from((loaded.state_dict as { w: Float32Array }).w)).toEqual([1, 2, 3, 4]);
  });

  it("a header in savepoint's tree encoding that records no hash is refused (its hash was removed)", async () => {
    const path = join(dir, 'stripped.safetensors');
    await writeFile(path, withoutHash(true));
    await expect(loadCheckpoint(store, path)).rejects.toThrow(/written by savepoint but records no data SHA-256/);
    await expect(openCheckpoint(store, path)).rejects.toBeInstanceOf(CorruptCheckpointError);
  });

  it('refuses a checkpoint key that would collide with it', async () => {
    await expect(saveCheckpointFile(store, join(dir, 'x.safetensors'), { [DATA_SHA256_KEY]: 'mine' })).rejects.toBeInstanceOf(
      SavepointError,
    );
  });
});
