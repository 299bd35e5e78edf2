// A tensor past what this Node.js can hold as one typed array (4 GiB on Node 20) is
// refused before anything is read, naming it and what to do; the other tensors of the
// file still load, and verify still reads the whole file. The file is sparse: its
// 4 GiB tensor takes no disk and is never read.
import { constants } from 'node:buffer';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { loadCheckpoint, openCheckpoint, UnsupportedError } from '../src/index.js';

const BIG = constants.MAX_LENGTH + 8;

/** A safetensors file whose tensor `big` holds `BIG` bytes of zeros (a hole), and `small` four bytes. */
async function sparseFile(path: string): Promise<void> {
  let json = JSON.stringify({
    small: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
    big: { dtype: 'U8', shape: [BIG], data_offsets: [4, 4 + BIG] },
  });
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const handle = await open(path, 'w');
  await handle.write(Buffer.concat([prefix, Buffer.from(json), Buffer.from([1, 2, 3, 4])]));
  await handle.truncate(8 + json.length + 4 + BIG);
  await handle.close();
}

// From Node 22 on a typed array may pass 4 GiB: the limit is then far past any test file.
describe.runIf(constants.MAX_LENGTH <= 2 ** 32)('a tensor past the typed-array limit of this Node.js', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-limit-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a full load is refused before any data is read, naming the tensor, its size and the way out', async () => {
    const path = join(dir, 'huge.safetensors');
    await sparseFile(path);
    const store = new LocalBackend();
    const error = await loadCheckpoint(store, path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toContain('tensor "big" holds 4.00 GiB');
    expect((error as Error).message).toContain(`Node.js ${process.version}`);
    expect((error as Error).message).toContain('Node.js 22 or later');
    expect((error as Error).message).not.toContain('Invalid typed array length');
  });

  it('a lazy read refuses that tensor alone; the others load', async () => {
    const path = join(dir, 'huge.safetensors');
    await sparseFile(path);
    const reader = await openCheckpoint(new LocalBackend(), path);
    expect(Array.from((await reader.readTensor('small')) as Uint8Array)).toEqual([1, 2, 3, 4]);
    await expect(reader.readTensor('big')).rejects.toThrow(UnsupportedError);
  });
});
