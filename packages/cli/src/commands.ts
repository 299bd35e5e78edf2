// The CLI's commands as functions that return data: bin.ts prints them as text or
// JSON, and the tests call them directly.
import {
  ConfigError,
  checkpointShape,
  DATA_SHA256_KEY,
  DEFAULT_LEASE_TTL_MS,
  LEASE_NAME,
  loadCheckpoint,
  MANIFEST_NAME,
  NotFoundError,
  openCheckpoint,
  POINTER_NAME,
  publishCheckpoint,
  RunLease,
  readLastCheckpoint,
  readManifest,
  readPointerText,
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
  filenameTmpl?: string,
): Promise<{ dir: string; pointer: string | undefined; checkpoints: CheckpointInfo[] }> {
  if (!(await store.isDir(dir)))
    throw new NotFoundError(dir, { backend: store.name, message: `no run folder at ${dir}; check the path` });
  const { checkpoints, pointer } = await scanRunFolder(store, dir, filenameTmpl);
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
  /** What could not be checked (a file written before data hashes were recorded). */
  note?: string;
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
  if (shape !== 'file' && shape !== 'directory') {
    // A run folder: its pointer must name a checkpoint that exists and loads.
    const pointer = await readLastCheckpoint(store, path);
    if (pointer !== undefined) {
      const label = `${store.joinPath(path, POINTER_NAME)} -> ${pointer}`;
      try {
        await loadCheckpoint(store, pointer, { verify: true });
        results.push({ path: label, ok: true });
      } catch (error) {
        results.push({
          path: label,
          ok: false,
          error: `the pointer names a checkpoint that does not load: ${(error as Error).message}`,
        });
      }
    }
  }
  for (const target of targets) {
    try {
      // A full load checks the structure and the bytes: a file against the SHA-256 of its
      // data in its header, a folder's shards against the SHA-256s in its manifest.
      await loadCheckpoint(store, target, { verify: true });
      let note: string | undefined;
      if ((await checkpointShape(store, target)) === 'directory') {
        const manifest = await readManifest(store, target);
        for (const shard of manifest.shards) {
          const stat = await store.stat(store.joinPath(target, shard.file));
          if (stat.size !== shard.bytes) throw new Error(`${shard.file}: ${stat.size} bytes, manifest says ${shard.bytes}`);
        }
      } else if ((await openCheckpoint(store, target)).metadata[DATA_SHA256_KEY] === undefined) {
        note = 'structure checked; its bytes could not be: it records no data SHA-256 (written before savepoint recorded one)';
      }
      results.push(note ? { path: target, ok: true, note } : { path: target, ok: true });
    } catch (error) {
      results.push({ path: target, ok: false, error: (error as Error).message });
    }
  }
  return { results, ok: results.length > 0 && results.every((r) => r.ok) };
}

/**
 * Plans (and with `yes`, does) the deletion of all but the newest `keep` regular
 * checkpoints. Candidates are only names the run layout parses as this run's regular
 * checkpoints; the pointer's target, anything newer than it (a save whose pointer has
 * not moved yet), bests, published copies and files it cannot parse are never touched.
 * With `yes` it holds the run's lease, so it fails at once while a trainer is writing.
 */
export async function prune(
  store: StorageBackend,
  dir: string,
  keep: number,
  yes: boolean,
  options: { filenameTmpl?: string } = {},
): Promise<{ toDelete: string[]; kept: string[]; deleted: boolean }> {
  if (!Number.isInteger(keep) || keep < 1) {
    throw new ConfigError(
      `--keep got ${JSON.stringify(keep)}; accepted: an integer >= 1 (prune never deletes every checkpoint)`,
      {
        option: '--keep',
      },
    );
  }
  const lease = yes
    ? await RunLease.acquire(store, store.joinPath(dir, LEASE_NAME), { ttlMs: DEFAULT_LEASE_TTL_MS, purpose: 'prune' })
    : undefined;
  try {
    const { checkpoints } = await ls(store, dir, options.filenameTmpl);
    const regular = checkpoints
      .filter((c) => c.kind === 'regular' && c.shape !== 'incomplete')
      .sort((a, b) => (b.step ?? 0) - (a.step ?? 0));
    const keepSet = new Set(regular.slice(0, keep).map((c) => c.path));
    const target = checkpoints.find((c) => c.isPointerTarget);
    for (const c of checkpoints) {
      if (c.isPointerTarget || c.kind !== 'regular') keepSet.add(c.path);
      // Newer than the pointer's target: a save in progress, or one whose pointer a crash never moved.
      if (target?.step !== undefined && (c.step ?? 0) > target.step) keepSet.add(c.path);
    }
    const toDelete = regular.filter((c) => !keepSet.has(c.path)).map((c) => c.path);
    if (yes) for (const path of toDelete) await removeCheckpoint(store, path);
    return { toDelete, kept: [...keepSet], deleted: yes };
  } finally {
    await lease?.release();
  }
}

export async function publish(store: StorageBackend, path: string, keys: string[]) {
  // A key the checkpoint does not hold is a typo: publishing an empty checkpoint helps nobody.
  // The header says which keys there are; only the kept keys' tensors are then read.
  const held = (await openCheckpoint(store, path)).keys;
  const missing = keys.filter((key) => !held.includes(key));
  if (missing.length > 0) {
    throw new ConfigError(
      `--keys ${missing.map((k) => JSON.stringify(k)).join(', ')} not in ${path}; it holds: ${held.join(', ')}`,
      { option: '--keys' },
    );
  }
  return publishCheckpoint(store, path, keys);
}

/**
 * Copies a file or a checkpoint folder between any two stores, streaming; a folder's
 * manifests land before the pointer, and the pointer last. A pointer that names a
 * checkpoint of the source run by its full path (as earlier versions wrote) is
 * rewritten to the bare name, so the copy resumes from its own files.
 */
export async function cp(
  source: StorageBackend,
  src: string,
  target: StorageBackend,
  dst: string,
  progress: Progress = silentProgress,
): Promise<{ files: number; bytes: number }> {
  const files: { from: string; to: string; size: number; order: number }[] = [];
  let pointer: { to: string; text: string } | undefined;
  if (await source.isFile(src)) {
    files.push({ from: src, to: dst, size: (await source.stat(src)).size, order: 0 });
  } else if (await source.isDir(src)) {
    const base = src.replace(/\/+$/, '');
    for await (const entry of source.list(src, { recursive: true })) {
      const relative = entry.path.slice(base.length + 1);
      const to = target.joinPath(dst, ...relative.split('/'));
      if (relative === POINTER_NAME) {
        const text = (await readPointerText(source, src)) ?? '';
        const name = text.slice(Math.max(text.lastIndexOf('/'), text.lastIndexOf('\\')) + 1);
        const inSource = name.length > 0 && text !== name && source.joinPath(src, name) === text;
        pointer = { to, text: inSource ? name : text };
        continue;
      }
      if (relative === LEASE_NAME) continue; // the copy is a new run: the source's writer does not own it
      // The manifest makes a folder checkpoint complete: it must land after its shards.
      files.push({ from: entry.path, to, size: entry.size ?? 0, order: entry.name === MANIFEST_NAME ? 1 : 0 });
    }
    files.sort((a, b) => a.order - b.order);
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
  if (pointer) await target.put(pointer.to, pointer.text);
  progress.done();
  return { files: files.length + (pointer ? 1 : 0), bytes };
}
