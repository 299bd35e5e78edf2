// The CLI's commands as functions that return data: bin.ts prints them as text or
// JSON, and the tests call them directly.
import {
  checkpointShape,
  loadCheckpoint,
  MANIFEST_NAME,
  NotFoundError,
  publishCheckpoint,
  readLastCheckpoint,
  readManifest,
  removeCheckpoint,
  type StorageBackend,
} from '@savepoint/core';
import { type CheckpointHeader, readCheckpointHeader } from './header.js';
import { type Progress, silentProgress } from './progress.js';
import { type CheckpointInfo, scanRunFolder } from './run-folder.js';

/** A failed check or a missing thing: exit code 1. */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
}

export async function ls(
  store: StorageBackend,
  dir: string,
): Promise<{ dir: string; pointer: string | undefined; checkpoints: CheckpointInfo[] }> {
  if (!(await store.isDir(dir)))
    throw new NotFoundError(dir, { backend: store.name, message: `no run folder at ${dir}; check the path` });
  const { checkpoints, pointer } = await scanRunFolder(store, dir);
  return { dir, pointer, checkpoints };
}

export async function latest(store: StorageBackend, dir: string): Promise<{ pointer: string }> {
  const pointer = await readLastCheckpoint(store, dir);
  if (!pointer) throw new CheckFailed(`no last_checkpoint in ${dir}: nothing has been saved there yet`);
  return { pointer };
}

export async function inspect(store: StorageBackend, path: string): Promise<CheckpointHeader> {
  return readCheckpointHeader(store, path);
}

export interface VerifyResult {
  path: string;
  ok: boolean;
  error?: string;
}

/** Opens every checkpoint (one, or each in a run folder) and checks folders against their manifests. */
export async function verify(store: StorageBackend, path: string): Promise<{ results: VerifyResult[]; ok: boolean }> {
  const shape = await checkpointShape(store, path);
  let targets: string[];
  if (shape === 'file' || shape === 'directory') targets = [path];
  else if (await store.isDir(path)) {
    // A run folder (or a folder checkpoint without its manifest, which then fails below).
    const scanned = (await scanRunFolder(store, path)).checkpoints.map((c) => c.path);
    targets = scanned.length > 0 ? scanned : [path];
  } else throw new NotFoundError(path, { backend: store.name, message: `nothing at ${path}; check the path` });
  const results: VerifyResult[] = [];
  for (const target of targets) {
    try {
      await loadCheckpoint(store, target, { verify: true });
      if ((await checkpointShape(store, target)) === 'directory') {
        const manifest = await readManifest(store, target);
        for (const shard of manifest.shards) {
          const stat = await store.stat(store.joinPath(target, shard.file));
          if (stat.size !== shard.bytes) throw new Error(`${shard.file}: ${stat.size} bytes, manifest says ${shard.bytes}`);
        }
      }
      results.push({ path: target, ok: true });
    } catch (error) {
      results.push({ path: target, ok: false, error: (error as Error).message });
    }
  }
  return { results, ok: results.length > 0 && results.every((r) => r.ok) };
}

/** Plans (and with `yes`, does) the deletion of all but the newest `keep` regular checkpoints. */
export async function prune(
  store: StorageBackend,
  dir: string,
  keep: number,
  yes: boolean,
): Promise<{ toDelete: string[]; kept: string[]; deleted: boolean }> {
  const { checkpoints } = await ls(store, dir);
  const regular = checkpoints
    .filter((c) => c.kind === 'regular' && c.shape !== 'incomplete')
    .sort((a, b) => (b.step ?? 0) - (a.step ?? 0));
  const keepSet = new Set(regular.slice(0, keep).map((c) => c.path));
  // The pointer's target and every best survive whatever --keep says.
  for (const c of checkpoints) if (c.isPointerTarget || c.kind === 'best') keepSet.add(c.path);
  const toDelete = regular.filter((c) => !keepSet.has(c.path)).map((c) => c.path);
  if (yes) for (const path of toDelete) await removeCheckpoint(store, path);
  return { toDelete, kept: [...keepSet], deleted: yes };
}

export async function publish(store: StorageBackend, path: string, keys: string[]) {
  return publishCheckpoint(store, path, keys);
}

/** Copies a file or a checkpoint folder between any two stores, streaming; a folder's manifest goes last. */
export async function cp(
  source: StorageBackend,
  src: string,
  target: StorageBackend,
  dst: string,
  progress: Progress = silentProgress,
): Promise<{ files: number; bytes: number }> {
  const files: { from: string; to: string; size: number }[] = [];
  if (await source.isFile(src)) {
    files.push({ from: src, to: dst, size: (await source.stat(src)).size });
  } else if (await source.isDir(src)) {
    const base = src.replace(/\/+$/, '');
    for await (const entry of source.list(src, { recursive: true })) {
      const relative = entry.path.slice(base.length + 1);
      files.push({ from: entry.path, to: target.joinPath(dst, ...relative.split('/')), size: entry.size ?? 0 });
    }
    // The manifest makes a folder checkpoint complete: it must land last.
    files.sort((a, b) => Number(a.from.endsWith(`/${MANIFEST_NAME}`)) - Number(b.from.endsWith(`/${MANIFEST_NAME}`)));
  } else {
    throw new NotFoundError(src, { backend: source.name, message: `nothing to copy at ${src}; check the path` });
  }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  progress.start(total);
  let bytes = 0;
  for (const file of files) {
    const stream = await source.getStream(file.from);
    async function* counted() {
      for await (const chunk of stream) {
        bytes += chunk.byteLength;
        progress.update(bytes);
        yield chunk;
      }
    }
    await target.put(file.to, counted());
  }
  progress.done();
  return { files: files.length, bytes };
}
