// Reads a run folder through the store contract: which entries are checkpoints,
// of what kind, and which one the pointer names.
import {
  checkpointShape,
  type ListEntry,
  MANIFEST_NAME,
  POINTER_NAME,
  readLastCheckpoint,
  readManifest,
  type StorageBackend,
} from '@savepoint/core';

export type CheckpointKind = 'regular' | 'best' | 'published';

export interface CheckpointInfo {
  name: string;
  path: string;
  kind: CheckpointKind;
  /** The metric of a best checkpoint. */
  metric?: string | undefined;
  step?: number | undefined;
  size?: number | undefined;
  modified?: Date | undefined;
  shape: 'file' | 'directory' | 'incomplete';
  isPointerTarget: boolean;
}

const PUBLISHED = /-[0-9a-f]{8}(\.[A-Za-z0-9]+)?$/;
const CHECKPOINT_EXTENSIONS = ['.safetensors', '.pth', '.ckpt', '.bin'];

function stepOf(name: string): number | undefined {
  const match = /(\d+)(?!.*\d)/.exec(name.replace(PUBLISHED, ''));
  return match ? Number(match[1]) : undefined;
}

function kindOf(name: string): { kind: CheckpointKind; metric?: string } {
  if (PUBLISHED.test(name)) return { kind: 'published' };
  if (name.startsWith('best_')) {
    const metric = name
      .slice(5)
      .replace(/_(?:epoch|iter)_\d+.*$/, '')
      .replace(/_[^_]*\d+[^_]*$/, '');
    return { kind: 'best', metric };
  }
  return { kind: 'regular' };
}

function looksLikeCheckpoint(entry: ListEntry): boolean {
  if (entry.name === POINTER_NAME) return false;
  return entry.type === 'dir' || CHECKPOINT_EXTENSIONS.some((ext) => entry.name.endsWith(ext));
}

export async function scanRunFolder(
  store: StorageBackend,
  dir: string,
): Promise<{ checkpoints: CheckpointInfo[]; pointer: string | undefined }> {
  const pointer = await readLastCheckpoint(store, dir);
  const checkpoints: CheckpointInfo[] = [];
  for await (const entry of store.list(dir)) {
    if (!looksLikeCheckpoint(entry)) continue;
    let shape: CheckpointInfo['shape'] = 'file';
    let size = entry.size;
    let modified = entry.lastModified;
    if (entry.type === 'dir') {
      const found = await checkpointShape(store, entry.path);
      if (found === 'missing' || found === 'file') continue;
      if (found === 'incomplete') {
        // Only folders that hold shard files are incomplete checkpoints; other folders are not ours.
        let shards = false;
        for await (const child of store.list(entry.path)) if (child.name.startsWith('shard-')) shards = true;
        if (!shards) continue;
        shape = 'incomplete';
      } else {
        shape = 'directory';
        const manifest = await readManifest(store, entry.path);
        size = manifest.shards.reduce((sum, s) => sum + s.bytes, 0);
        modified = (await store.stat(store.joinPath(entry.path, MANIFEST_NAME))).lastModified;
      }
    }
    checkpoints.push({
      name: entry.name,
      path: entry.path,
      ...kindOf(entry.name),
      step: stepOf(entry.name),
      size,
      modified,
      shape,
      isPointerTarget:
        pointer !== undefined && (pointer === entry.path || pointer.replace(/\/+$/, '').endsWith(`/${entry.name}`)),
    });
  }
  checkpoints.sort((a, b) =>
    a.kind === b.kind ? (a.step ?? 0) - (b.step ?? 0) || a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind),
  );
  return { checkpoints, pointer };
}
