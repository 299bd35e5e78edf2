// Copying a run, or one checkpoint of it, to any store, streaming with bounded memory.
// Names are built from the listing's own segments (never by cutting paths as text),
// so a source written `./a/./b` or `x/.` copies every name whole. A folder's shards
// land before its manifest, and the pointer last, rewritten to the bare name of its
// checkpoint when it names one of the source run by full path, so the copy resumes
// from its own files. The lease and the run marker belong to the source's writer and
// are not copied: the copy is a new run. One incremental checkpoint copied alone brings
// the objects it names.
import { objectFileBytes, readIncrementalManifest } from '../format/incremental.js';
import { MANIFEST_NAME } from '../format/sharded.js';
import type { ListEntry, SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError, NotFoundError } from '../store/errors.js';
import { transferObject } from '../store/transfer.js';
import type { RunFolder } from './folder.js';
import { LEASE_NAME, OBJECTS_DIR_NAME, objectName, objectPathNear, POINTER_NAME, RUN_MARKER_NAME } from './layout.js';
import { referencedObjects } from './objects.js';
import { formatPointer } from './pointer.js';

export interface CopyProgress {
  start(totalBytes: number): void;
  update(bytesDone: number): void;
  done(): void;
}

const silent: CopyProgress = { start() {}, update() {}, done() {} };

interface PlannedFile {
  from: string;
  /** Path segments below the copy's root. */
  segments: string[];
  size: number;
  /** Where it goes when that is not below the copy's root (an object of one incremental checkpoint). */
  to?: string;
}

/** Every file below `dir`, with its path as segments relative to `dir`, one listing level at a time. */
async function* walk(store: StorageBackend, dir: string, prefix: string[], options: SignalOptions): AsyncIterable<PlannedFile> {
  const entries: ListEntry[] = [];
  for await (const entry of store.list(dir, options)) entries.push(entry);
  for (const entry of entries) {
    const segments = [...prefix, entry.name];
    if (entry.type === 'dir') yield* walk(store, entry.path, segments, options);
    else yield { from: entry.path, segments, size: entry.size ?? 0 };
  }
}

/**
 * (ours) One incremental checkpoint copied alone: the objects its manifest names, each
 * going to the objects folder next to the copy, where a reader given the copy's path
 * looks (so the copy loads and verifies on its own). They land before the manifest.
 * Undefined for any other folder (a run, a sharded checkpoint, a foreign one).
 */
async function objectsOfOne(
  source: StorageBackend,
  from: string,
  target: { store: StorageBackend; path: string },
  options: SignalOptions,
): Promise<PlannedFile[] | undefined> {
  let manifest: Awaited<ReturnType<typeof readIncrementalManifest>>;
  try {
    manifest = await readIncrementalManifest(source, from, options);
  } catch (error) {
    if (error instanceof NotFoundError || error instanceof CorruptCheckpointError) return undefined;
    throw error;
  }
  if (!manifest) return undefined;
  const sourceObject = objectPathNear(source, from);
  const targetObject = objectPathNear(target.store, target.path);
  const planned = new Map<string, PlannedFile>();
  for (const tensor of manifest.tensors) {
    for (const chunk of tensor.chunks) {
      const name = objectName(tensor.dtype, chunk.sha256);
      if (planned.has(name)) continue;
      planned.set(name, {
        from: sourceObject(tensor.dtype, chunk.sha256),
        segments: [OBJECTS_DIR_NAME, name],
        size: objectFileBytes(tensor.dtype, chunk.sha256, chunk.bytes),
        to: targetObject(tensor.dtype, chunk.sha256),
      });
    }
  }
  return [...planned.values()];
}

export async function copyRun(
  run: RunFolder,
  from: string,
  target: { store: StorageBackend; path: string },
  progress: CopyProgress = silent,
  options: SignalOptions = {},
): Promise<{ files: number; bytes: number }> {
  const source = run.store;
  const files: PlannedFile[] = [];
  let pointerText: string | undefined;
  /** The bookkeeping the source's pointer carries (a best recorded after its checkpoint): the copy needs it to resume alike. */
  let runtimeInfo: Record<string, unknown> | undefined;
  /** (ours) The seal of the checkpoint it names: the copy's bytes are the same, so the seal holds for the copy. */
  let seal: string | undefined;
  if (await source.isFile(from, options)) {
    files.push({ from, segments: [], size: (await source.stat(from, options)).size });
  } else if (await source.isDir(from, options)) {
    // A folder with an incremental manifest is one checkpoint, even when the run was opened at it.
    const own = await objectsOfOne(run.store, from, target, options);
    const wholeRun = own === undefined && (from === run.outDir || from === run.workDir);
    // (ours) Of an incremental run's objects, exactly those its checkpoints name are copied.
    const referenced = wholeRun && from === run.outDir ? (await referencedObjects(run.layout, options)).objects : undefined;
    for await (const file of walk(source, from, [], options)) {
      const top = file.segments.length === 1 ? file.segments[0] : undefined;
      if (top === LEASE_NAME || top === RUN_MARKER_NAME) continue;
      if (file.segments[0] === OBJECTS_DIR_NAME && !referenced?.has(file.segments[1] ?? '')) continue;
      if (top === POINTER_NAME) continue; // written last, below
      files.push(file);
    }
    if (own) files.unshift(...own);
    if (wholeRun) {
      const resumable = await run.resumeTarget(options).catch(() => undefined);
      // The run's own checkpoint by its bare name; anything else (a foreign path) as it was written.
      pointerText = resumable ? resumable.name : await run.latest(options);
      runtimeInfo = resumable?.runtimeInfo;
      seal = resumable?.seal;
    }
    // The manifest makes a folder checkpoint complete: it must land after its shards.
    files.sort((a, b) => Number(a.segments.at(-1) === MANIFEST_NAME) - Number(b.segments.at(-1) === MANIFEST_NAME));
  } else {
    throw new NotFoundError(from, { backend: source.name, message: `nothing to copy at ${from}; check the path` });
  }
  const destination = (segments: string[]) =>
    segments.length === 0 ? target.path : target.store.joinPath(target.path, ...segments);
  const total = files.reduce((sum, f) => sum + f.size, 0);
  progress.start(total);
  let bytes = 0;
  for (const file of files) {
    // The library's one copy between stores: streaming, bounded memory, progress per chunk.
    const before = bytes;
    const copied = await transferObject(
      { store: source, path: file.from },
      { store: target.store, path: file.to ?? destination(file.segments) },
      {
        signal: options.signal,
        onProgress: ({ bytes: done }) => progress.update(before + done),
      },
    );
    bytes = before + copied.bytes;
  }
  // A new run: no fencing generation; the bookkeeping comes along.
  if (pointerText !== undefined) {
    await target.store.put(
      destination([POINTER_NAME]),
      formatPointer({ text: pointerText, generation: 0, runtimeInfo, seal }),
      options,
    );
  }
  progress.done();
  return { files: files.length + (pointerText !== undefined ? 1 : 0), bytes };
}
