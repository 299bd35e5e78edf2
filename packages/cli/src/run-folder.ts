// Reads a run folder through the store contract: which entries are checkpoints,
// of what kind, and which one the pointer names.
import {
  checkFilenameTemplate,
  checkpointShape,
  MANIFEST_NAME,
  type ParsedName,
  RunLayout,
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

/**
 * The run layouts the CLI recognises: the engine's default templates for epoch and
 * iteration mode, or the one given with --filename-tmpl. Names none of them parse
 * (pretrained weights, tokenizers, notes) are not checkpoints of the run.
 */
export function runLayouts(store: StorageBackend, dir: string, filenameTmpl?: string): RunLayout[] {
  const templates = filenameTmpl ? [checkFilenameTemplate(filenameTmpl)] : ['epoch_{}.safetensors', 'iter_{}.safetensors'];
  return templates.map((tmpl) => new RunLayout({ workDir: dir, outDir: dir, store, workDirStore: store, filenameTmpl: tmpl }));
}

function parseName(layouts: readonly RunLayout[], name: string): ParsedName | undefined {
  for (const layout of layouts) {
    const parsed = layout.parse(name);
    if (parsed) return parsed;
  }
  return undefined;
}

function describeParsed(parsed: ParsedName): { kind: CheckpointKind; metric?: string; step?: number } | undefined {
  if (parsed.kind === 'regular') return { kind: 'regular', step: parsed.step };
  if (parsed.kind === 'best') return { kind: 'best', metric: parsed.metric, step: parsed.step };
  if (parsed.kind === 'published') return { kind: 'published', step: parsed.of.step };
  return undefined;
}

export async function scanRunFolder(
  store: StorageBackend,
  dir: string,
  filenameTmpl?: string,
): Promise<{ checkpoints: CheckpointInfo[]; pointer: string | undefined }> {
  const pointer = await readLastCheckpoint(store, dir);
  const layouts = runLayouts(store, dir, filenameTmpl);
  const checkpoints: CheckpointInfo[] = [];
  for await (const entry of store.list(dir)) {
    const parsed = parseName(layouts, entry.name);
    const described = parsed ? describeParsed(parsed) : undefined;
    if (!described) continue;
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
      ...described,
      size,
      modified,
      shape,
      isPointerTarget: pointer !== undefined && pointer.replace(/[\\/]+$/, '') === entry.path.replace(/[\\/]+$/, ''),
    });
  }
  checkpoints.sort((a, b) =>
    a.kind === b.kind ? (a.step ?? 0) - (b.step ?? 0) || a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind),
  );
  return { checkpoints, pointer };
}
