// Reads only a checkpoint's header through range reads: what `savepoint inspect` shows.
import {
  CorruptCheckpointError,
  checkpointShape,
  MANIFEST_NAME,
  NotFoundError,
  parseSafetensorsHeader,
  readManifest,
  type SafetensorsHeaderEntry,
  type StorageBackend,
} from '@savepoint/core';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  shard?: string | undefined;
}

export interface CheckpointHeader {
  path: string;
  shape: 'file' | 'directory';
  tensors: TensorSummary[];
  metadata: Record<string, unknown>;
  /** Bytes fetched to build this summary. */
  bytesRead: number;
}

async function fileHeader(store: StorageBackend, path: string) {
  const prefix = await store.get(path, { range: { start: 0, end: 8 } });
  if (prefix.byteLength < 8)
    throw new CorruptCheckpointError(`${path} is too short to be a safetensors file`, { backend: store.name });
  const length = Number(new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true));
  const rest = await store.get(path, { range: { start: 8, end: 8 + length } });
  const all = new Uint8Array(8 + rest.byteLength);
  all.set(prefix, 0);
  all.set(rest, 8);
  return { header: parseSafetensorsHeader(all), bytesRead: all.byteLength };
}

function summarise(tensors: Record<string, SafetensorsHeaderEntry>, shard?: string): TensorSummary[] {
  return Object.entries(tensors).map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    bytes: t.data_offsets[1] - t.data_offsets[0],
    shard,
  }));
}

function parseMetadata(metadata: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).map(([k, v]) => {
      try {
        return [k, JSON.parse(v)];
      } catch {
        return [k, v];
      }
    }),
  );
}

export async function readCheckpointHeader(store: StorageBackend, path: string): Promise<CheckpointHeader> {
  const shape = await checkpointShape(store, path);
  if (shape === 'missing') throw new NotFoundError(path, { backend: store.name, message: `no checkpoint at ${path}` });
  if (shape === 'incomplete') {
    throw new NotFoundError(path, { backend: store.name, message: `${path} has no ${MANIFEST_NAME}: its save did not finish` });
  }
  if (shape === 'file') {
    const { header, bytesRead } = await fileHeader(store, path);
    return { path, shape, tensors: summarise(header.tensors), metadata: parseMetadata(header.metadata), bytesRead };
  }
  const manifest = await readManifest(store, path);
  const tensors: TensorSummary[] = [];
  let bytesRead = 0;
  for (const shard of manifest.shards) {
    const { header, bytesRead: n } = await fileHeader(store, store.joinPath(path, shard.file));
    tensors.push(...summarise(header.tensors, shard.file));
    bytesRead += n;
  }
  return { path, shape, tensors, metadata: parseMetadata(manifest.metadata), bytesRead };
}
