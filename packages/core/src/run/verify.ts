// `verify`: opening every checkpoint of a run (or one checkpoint) in full and checking
// its bytes: a file against the SHA-256 of its data in its header, a folder's shards
// against the sizes and SHA-256s in its manifest; and, for a run, that the pointer
// names a checkpoint that loads.

import { checkIncrementalManifest, isIncrementalManifest, objectFileBytes } from '../format/incremental.js';
import { openCheckpoint } from '../format/reader.js';
import { DATA_SHA256_KEY } from '../format/safetensors.js';
import { checkShardManifest, readManifestJson } from '../format/sharded.js';
import { CorruptCheckpointError, NotFoundError } from '../store/errors.js';
import { checkpointShape, loadCheckpoint } from './checkpoint-files.js';
import type { RunFolder } from './folder.js';
import { objectPathNear } from './layout.js';

export interface VerifyResult {
  /** The checkpoint checked, or the pointer's own path. */
  path: string;
  /** For the pointer: the checkpoint it names. */
  target?: string;
  ok: boolean;
  error?: string;
  /** What could not be checked (a file another tool wrote, which records no data hash). */
  note?: string;
}

export interface VerifyReport {
  results: VerifyResult[];
  ok: boolean;
}

async function verifyOne(run: RunFolder, path: string): Promise<VerifyResult> {
  const { store } = run;
  try {
    await loadCheckpoint(store, path, { verify: true });
    let note: string | undefined;
    if ((await checkpointShape(store, path)) === 'directory') {
      const { path: manifestPath, json } = await readManifestJson(store, path);
      if (isIncrementalManifest(json)) {
        // (ours) The load checked every object's bytes against its hash; each must also be exactly the file savepoint wrote.
        for (const t of checkIncrementalManifest(json, manifestPath, store.name).tensors) {
          for (const c of t.chunks) {
            const object = objectPathNear(store, path)(t.dtype, c.sha256);
            const size = (await store.stat(object)).size;
            if (size !== objectFileBytes(t.dtype, c.sha256, c.bytes)) {
              throw new CorruptCheckpointError(`${object}: ${size} bytes, not the object its name says`, { backend: store.name });
            }
          }
        }
        return { path, ok: true };
      }
      const manifest = checkShardManifest(json, manifestPath, store.name);
      for (const shard of manifest.shards) {
        const stat = await store.stat(store.joinPath(path, shard.file));
        if (stat.size !== shard.bytes) {
          throw new CorruptCheckpointError(`${shard.file}: ${stat.size} bytes, manifest says ${shard.bytes}`, {
            backend: store.name,
          });
        }
      }
    } else if ((await openCheckpoint(store, path)).metadata[DATA_SHA256_KEY] === undefined) {
      // A header savepoint wrote without its hash failed the load above: this one is another tool's.
      note = 'structure checked; its bytes could not be: it records no data SHA-256 (not written by savepoint)';
    }
    return note ? { path, ok: true, note } : { path, ok: true };
  } catch (error) {
    return { path, ok: false, error: (error as Error).message };
  }
}

export async function verifyPath(run: RunFolder, path: string): Promise<VerifyReport> {
  const { store } = run;
  const shape = await checkpointShape(store, path);
  if (shape === 'file' || shape === 'directory') {
    const result = await verifyOne(run, path);
    return { results: [result], ok: result.ok };
  }
  if (!(await store.isDir(path))) {
    throw new NotFoundError(path, { backend: store.name, message: `nothing at ${path}; check the path` });
  }
  const results: VerifyResult[] = [];
  // A run folder: its pointer must name a checkpoint that exists and loads.
  const pointer = await run.latest();
  if (pointer !== undefined) {
    const pointerPath = run.layout.pointerPath;
    try {
      await loadCheckpoint(store, pointer, { verify: true });
      results.push({ path: pointerPath, target: pointer, ok: true });
    } catch (error) {
      results.push({
        path: pointerPath,
        target: pointer,
        ok: false,
        error: `the pointer names a checkpoint that does not load: ${(error as Error).message}`,
      });
    }
  }
  // Every checkpoint in it (a folder checkpoint without its manifest fails below).
  const scanned = (await run.scan()).checkpoints.map((c) => c.path);
  for (const target of scanned.length > 0 ? scanned : [path]) results.push(await verifyOne(run, target));
  return { results, ok: results.length > 0 && results.every((r) => r.ok) };
}
