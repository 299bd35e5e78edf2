// What a run folder holds: which entries are this run's checkpoints, of what kind,
// their size and shape, and which one the pointer names. `savepoint ls`, `prune` and
// `verify` all read a folder through this one scan.
import { checkIncrementalManifest, isIncrementalManifest } from '../format/incremental.js';
import { checkShardManifest, MANIFEST_NAME, readManifestJson } from '../format/sharded.js';
import type { SignalOptions } from '../store/contract.js';
import { NotFoundError } from '../store/errors.js';
import { checkpointShape, isUnfinishedCheckpointFolder } from './checkpoint-files.js';
import type { CheckpointInfo, CheckpointKind, RunFolder, RunScan } from './folder.js';
import { type ParsedName, type RunLayout, recognisedLayouts } from './layout.js';

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

export async function scanRun(run: RunFolder, options: SignalOptions = {}): Promise<RunScan> {
  const { store, outDir } = run;
  if (!(await store.isDir(outDir, options))) {
    throw new NotFoundError(outDir, { backend: store.name, message: `no run folder at ${outDir}; check the path` });
  }
  const pointer = await run.latest(options);
  const layouts = recognisedLayouts(run.layout);
  const checkpoints: CheckpointInfo[] = [];
  for await (const entry of store.list(outDir, options)) {
    const parsed = parseName(layouts, entry.name);
    const described = parsed ? describeParsed(parsed) : undefined;
    if (!described) continue;
    let shape: CheckpointInfo['shape'] = 'file';
    let size = entry.size;
    let modified = entry.lastModified;
    if (entry.type === 'dir') {
      const found = await checkpointShape(store, entry.path, options);
      if (found === 'missing' || found === 'file') continue;
      if (found === 'incomplete') {
        // Only a folder holding nothing but shard files is an unfinished checkpoint; other folders are not ours.
        if (!(await isUnfinishedCheckpointFolder(store, entry.path, options))) continue;
        shape = 'incomplete';
      } else {
        const { path: manifestPath, json } = await readManifestJson(store, entry.path, options);
        if (isIncrementalManifest(json)) {
          shape = 'incremental';
          const manifest = checkIncrementalManifest(json, manifestPath, store.name);
          size = manifest.tensors.reduce((sum, t) => sum + t.chunks.reduce((n, c) => n + c.bytes, 0), 0);
        } else {
          shape = 'directory';
          size = checkShardManifest(json, manifestPath, store.name).shards.reduce((sum, s) => sum + s.bytes, 0);
        }
        modified = (await store.stat(store.joinPath(entry.path, MANIFEST_NAME), options)).lastModified;
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
  if (checkpoints.some((c) => c.shape === 'incremental')) {
    const usage = await run.objectUsage(options);
    for (const c of checkpoints) {
      const bytes = usage.byCheckpoint.get(c.name);
      if (c.shape === 'incremental') Object.assign(c, { sharedBytes: bytes?.shared ?? 0, exclusiveBytes: bytes?.exclusive ?? 0 });
    }
  }
  checkpoints.sort((a, b) =>
    a.kind === b.kind ? (a.step ?? 0) - (b.step ?? 0) || a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind),
  );
  return { dir: outDir, pointer, checkpoints };
}
