// A full load of one safetensors file at the speed of the store: one read of the whole
// object (a ranged read of the header first cost a second request: a round trip on a
// cloud, and on moto, which reads the whole object for any range, 0.47 s per GiB), its
// header parsed and checked from the first bytes, then its data section's chunks copied
// straight into the tensors' own buffers (each allocated once, at its final size, so aligned) and
// hashed as they arrive. Nothing holds the whole file: peak memory is the loaded
// tensors plus the stream's bounded buffer, and no single hash or copy call gets more
// than one chunk, so tensors and files past 2 GiB load.
import { createHash } from 'node:crypto';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError } from '../store/errors.js';
import { checkedSafetensorsHeader, safetensorsHeaderEnd } from './reader.js';
import { DATA_SHA256_KEY, type SafetensorsHeader, tensorFromBytes } from './safetensors.js';
import { type Tensor, type TypedArray, tensorBuffer } from './tensor.js';

export interface StreamLoadOptions extends SignalOptions {
  /** A folder's shard: savepoint wrote it, so its header must record its data hash. */
  savepointWritten?: boolean | undefined;
  /**
   * The SHA-256 of the whole file, as something that points at it records (a folder's
   * manifest, the run's pointer). It is then the one hash computed (it covers the header,
   * and so the data hash the header records); without it, the data section is checked
   * against the header's own hash.
   */
  fileSha256?: string | undefined;
  /** The file's size, as that record says; checked before anything is allocated. */
  fileBytes?: number | undefined;
  /**
   * (ours) The SHA-256 of the file's header (its 8-byte length and JSON), as the run's
   * pointer records it (`checkpointSeal`): the header holds the metadata and the data's
   * hash, so an edit of either is caught before any data is read.
   */
  headerSha256?: string | undefined;
}

export interface StreamedFile {
  header: SafetensorsHeader;
  tensors: Map<string, Tensor | TypedArray>;
  /** Whether any hash was checked (false for another tool's file without a recorded one). */
  hashChecked: boolean;
}

const corruptAt = (store: StorageBackend, path: string, what: string) =>
  new CorruptCheckpointError(`${path}: ${what}`, { backend: store.name });

/** Reads and checks the safetensors file at `path`, every tensor landing in its own buffer. */
export async function streamSafetensorsFile(
  store: StorageBackend,
  path: string,
  options: StreamLoadOptions = {},
): Promise<StreamedFile> {
  const signal = { signal: options.signal };
  const { size: fileBytes } = await store.stat(path, signal);
  if (options.fileBytes !== undefined && fileBytes !== options.fileBytes) {
    throw corruptAt(store, path, `it has ${fileBytes} bytes, its manifest says ${options.fileBytes}`);
  }
  const body = (await store.getStream(path, signal))[Symbol.asyncIterator]();
  try {
    return await loadFromBody(store, path, body, fileBytes, options);
  } finally {
    // Also after a refused header: the rest of the body is not read, its request released.
    await body.return?.();
  }
}

async function loadFromBody(
  store: StorageBackend,
  path: string,
  body: AsyncIterator<Uint8Array>,
  fileBytes: number,
  options: StreamLoadOptions,
): Promise<StreamedFile> {
  // The header's bytes are copied out of the first chunks (at most MAX_HEADER_BYTES, the
  // length checked from its first 8 before more is kept); the rest of the chunk that
  // completes it is data, a view used before the next chunk is taken.
  let headerBytes = new Uint8Array(8);
  let have = 0;
  let need = 8;
  let first: Uint8Array = new Uint8Array(0);
  while (have < need) {
    const next = await body.next();
    if (next.done) break;
    const chunk = next.value;
    let offset = 0;
    while (have < need && offset < chunk.byteLength) {
      const take = Math.min(need - have, chunk.byteLength - offset);
      headerBytes.set(chunk.subarray(offset, offset + take), have);
      have += take;
      offset += take;
      if (have === 8 && need === 8) {
        need = safetensorsHeaderEnd(store, path, headerBytes);
        const grown = new Uint8Array(need);
        grown.set(headerBytes.subarray(0, 8));
        headerBytes = grown;
      }
    }
    first = chunk.subarray(offset);
  }
  // A body that ended early: too short for the length (refused there) or for the header (refused by its parse).
  if (have < 8) safetensorsHeaderEnd(store, path, headerBytes.subarray(0, have));
  headerBytes = headerBytes.subarray(0, have);
  const header = checkedSafetensorsHeader(store, path, headerBytes, fileBytes, options.savepointWritten);
  if (options.headerSha256 !== undefined) {
    const actual = createHash('sha256').update(headerBytes).digest('hex');
    if (actual !== options.headerSha256) {
      throw corruptAt(
        store,
        path,
        `its header does not match the SHA-256 the run's pointer records (${options.headerSha256.slice(0, 12)}…, the header gives ${actual.slice(0, 12)}…): its metadata or hash was edited after it was saved`,
      );
    }
  }
  const recorded = options.fileSha256 ?? header.metadata[DATA_SHA256_KEY];
  const hash = recorded === undefined ? undefined : createHash('sha256');
  // The header bytes hashed are the ones parsed: what is checked is what is loaded.
  if (options.fileSha256 !== undefined) hash?.update(headerBytes);

  // The destinations, in file order (the header check made them contiguous from 0).
  const entries = Object.entries(header.tensors).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const targets = entries.map(([name, entry]) => tensorBuffer(name, entry.data_offsets[1] - entry.data_offsets[0], path));
  let index = 0;
  let filled = 0;
  let received = 0;
  // The data that came in the header's last chunk, then the rest of the body.
  async function* data(): AsyncIterable<Uint8Array> {
    if (first.byteLength > 0) yield first;
    while (true) {
      const next = await body.next();
      if (next.done) return;
      yield next.value;
    }
  }
  for await (const chunk of data()) {
    if (received + chunk.byteLength > header.dataBytes) {
      throw corruptAt(store, path, 'it grew while being read (more bytes than its header covers)');
    }
    hash?.update(chunk);
    received += chunk.byteLength;
    let offset = 0;
    while (offset < chunk.byteLength) {
      // Tensors of 0 bytes take nothing; skip past them and past full ones.
      while ((targets[index] as Uint8Array).byteLength === filled) {
        index++;
        filled = 0;
      }
      const target = targets[index] as Uint8Array;
      const n = Math.min(target.byteLength - filled, chunk.byteLength - offset);
      target.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
    }
  }
  if (received !== header.dataBytes) {
    throw corruptAt(store, path, `its data stream ended after ${received} of ${header.dataBytes} bytes (truncated while read)`);
  }
  if (hash && recorded !== undefined) {
    const actual = hash.digest('hex');
    if (actual !== recorded) {
      throw corruptAt(
        store,
        path,
        options.fileSha256 !== undefined
          ? `its bytes do not match the SHA-256 recorded for it (${recorded.slice(0, 12)}…, the bytes give ${actual.slice(0, 12)}…): it was changed or damaged after it was written`
          : `the tensor data does not match the SHA-256 its header records (${recorded.slice(0, 12)}…, the bytes give ${actual.slice(0, 12)}…): the file was changed or damaged after it was written`,
      );
    }
  }
  const tensors = new Map<string, Tensor | TypedArray>();
  for (const [i, [name, entry]] of entries.entries()) tensors.set(name, tensorFromBytes(entry, targets[i] as Uint8Array));
  return { header, tensors, hashChecked: recorded !== undefined };
}
