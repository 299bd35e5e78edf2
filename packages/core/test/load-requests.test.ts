// A full load of a file checkpoint reads the object once (issue #25): its header comes
// from the first bytes of the same read as its data. A ranged read of the header first
// was a second request (a round trip on a cloud; on moto, which reads the whole object
// for any range, 236 ms for the 16 KiB header of a 512 MiB object).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { CorruptCheckpointError, loadCheckpoint, saveCheckpointFile } from '../src/index.js';
import type { GetOptions } from '../src/store/index.js';

/** Local disk that counts reads and can cut every body into chunks of `chunkBytes`. */
class CountingStore extends LocalBackend {
  gets = 0;
  streams = 0;
  released = 0;
  constructor(readonly chunkBytes = 0) {
    super();
  }
  override async get(path: string, options?: GetOptions) {
    this.gets++;
    return super.get(path, options);
  }
  override async getStream(path: string, options?: GetOptions) {
    this.streams++;
    const inner = await super.getStream(path, options);
    const size = this.chunkBytes;
    const store = this;
    return (async function* () {
      try {
        for await (const chunk of inner) {
          if (!size) yield chunk;
          else for (let o = 0; o < chunk.byteLength; o += size) yield chunk.slice(o, o + size);
        }
      } finally {
        store.released++;
      }
    })();
  }
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'savepoint-load-requests-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

const state = () => ({
  meta: { epoch: 3, note: 'x'.repeat(3000) },
  state_dict: { a: new Float32Array(1000).map((_, i) => i), b: new Uint8Array(77).fill(9), empty: new Float32Array(0) },
});

describe('a full load of a file checkpoint', () => {
  it('reads the object once: no ranged read of its header before the data', async () => {
    const path = join(root, 'once.safetensors');
    await saveCheckpointFile(new LocalBackend(), path, state());
    const store = new CountingStore();
    const loaded = await loadCheckpoint(store, path);
    expect({ gets: store.gets, streams: store.streams }).toEqual({ gets: 0, streams: 1 });
    expect(Array.from((loaded.state_dict as Record<string, Float32Array>).a as Float32Array).slice(0, 3)).toEqual([0, 1, 2]);
    expect((loaded.meta as { epoch: number }).epoch).toBe(3);
  });

  it('assembles a header that arrives in chunks of 3 bytes, and the data after it', async () => {
    const path = join(root, 'chunks.safetensors');
    await saveCheckpointFile(new LocalBackend(), path, state());
    const loaded = await loadCheckpoint(new CountingStore(3), path);
    const tensors = loaded.state_dict as Record<string, Float32Array | Uint8Array>;
    expect(Array.from(tensors.a as Float32Array)).toEqual(Array.from(state().state_dict.a));
    expect(Array.from(tensors.b as Uint8Array)).toEqual(Array.from(state().state_dict.b));
    expect((tensors.empty as Float32Array).length).toBe(0);
  });

  it('refuses a header length past the bound from its first 8 bytes, and releases the read', async () => {
    const path = join(root, 'huge-header.safetensors');
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setBigUint64(0, 1n << 40n, true);
    await writeFile(path, bytes);
    const store = new CountingStore(5);
    await expect(loadCheckpoint(store, path)).rejects.toThrow(CorruptCheckpointError);
    await expect(loadCheckpoint(store, path)).rejects.toThrow(/its header claims 1099511627776 bytes/);
    expect(store.released).toBe(store.streams);
  });

  it('refuses a file too short for a header, and one cut inside its header', async () => {
    const short = join(root, 'short.safetensors');
    await writeFile(short, new Uint8Array(5));
    await expect(loadCheckpoint(new CountingStore(2), short)).rejects.toThrow(/5 bytes: too short to be a safetensors file/);
    const cut = join(root, 'cut.safetensors');
    const bytes = new Uint8Array(40);
    new DataView(bytes.buffer).setBigUint64(0, 100n, true);
    bytes.set(new TextEncoder().encode('{"a":'), 8);
    await writeFile(cut, bytes);
    await expect(loadCheckpoint(new CountingStore(4), cut)).rejects.toThrow(CorruptCheckpointError);
  });
});
